#!/usr/bin/env bash
# Guard overhead: the same wrk load through one Michi, alternating between a key with no
# limits and a key with every guard set (daily and monthly budgets, RPM, TPM, and the agent
# loop guard), limits far above what the run reaches so nothing is refused. Reports req/s
# and p50/p99 of each, Michi's CPU time per request, and the ratios guarded/free (target:
# guards cost <= 5% of throughput).
#   bench/guards.sh            env: MICHI_BIN DURATION (8s) CONNECTIONS (64) ROUNDS (3) WORKERS
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MICHI_BIN="${MICHI_BIN:-$HERE/../build/release/michi-gateway}"
DURATION="${DURATION:-8s}"
CONNECTIONS="${CONNECTIONS:-64}"
ROUNDS="${ROUNDS:-3}"
WORKERS="${WORKERS:-$(nproc)}"
[[ -x "$MICHI_BIN" ]] || { echo "no michi-gateway at $MICHI_BIN" >&2; exit 1; }

TMP="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT
# shellcheck source=bench/guard_keys.sh
source "$HERE/guard_keys.sh"

# The mock upstream: nginx answering a static chat completion.
MOCK=$(port)
mkdir -p "$TMP/nginx"
cat > "$TMP/nginx/nginx.conf" <<NGINX
daemon off; worker_processes 1; pid $TMP/nginx/pid; error_log $TMP/nginx/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $TMP/nginx;
  server { listen 127.0.0.1:$MOCK; default_type application/json;
    location / { return 200 '{"id":"c","object":"chat.completion","created":1,"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}'; } } }
NGINX
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" & PIDS+=($!)

MICHI=$(port)
guard_keys_config "$MICHI" "$MOCK" "$WORKERS"
"$MICHI_BIN" --config "$TMP/michi.yaml" > "$TMP/michi.log" 2>&1 & MICHI_PID=$!; PIDS+=($MICHI_PID)
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(field secret free)" \
    -d '{"model":"mock/gpt-bench","messages":[{"role":"user","content":"x"}]}' \
    "http://127.0.0.1:$MICHI/v1/chat/completions" || true)
  [[ $code == 200 ]] && break
  sleep 0.1
done
[[ $code == 200 ]] || { cat "$TMP/michi.log"; exit 1; }

TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_ticks() { # utime + stime of Michi, all threads, in clock ticks
  local line f; read -r line <"/proc/$MICHI_PID/stat"; read -ra f <<<"${line##*) }"
  echo $((f[11] + f[12]))
}
run() { # key -> "rps p50 p99 cpu_us_per_request"
  local before out; before=$(cpu_ticks)
  out=$(MICHI_BENCH_KEY="$(field secret "$1")" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" \
    -s "$HERE/guards.lua" "http://127.0.0.1:$MICHI")
  awk -v ticks=$(($(cpu_ticks) - before)) -v tick_us="$TICK_US" '/^BENCH/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      if (v["non2xx"] + v["errors"] > 0) { print "errors: " $0 > "/dev/stderr"; exit 1 }
      printf "%s %s %s %.2f\n", v["rps"], v["p50_us"], v["p99_us"], ticks * tick_us / v["requests"] }' <<<"$out"
}
declare -a FREE GUARDED
for r in $(seq "$ROUNDS"); do
  # Alternate the order so neither key always runs first.
  if (( r % 2 )); then FREE+=("$(run free)"); GUARDED+=("$(run guarded)");
  else GUARDED+=("$(run guarded)"); FREE+=("$(run free)"); fi
  echo "round $r: free ${FREE[-1]} | guarded ${GUARDED[-1]}  (req/s p50_us p99_us cpu_us/req)"
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { printf '%s\n' "${@:2}" | awk -v c="$1" '{print $c}' | median; }
f_rps=$(col 1 "${FREE[@]}"); g_rps=$(col 1 "${GUARDED[@]}")
printf '\n| key | req/s | p50 | p99 |\n|---|---|---|---|\n'
printf '| no guards | %.0f | %.2f ms | %.2f ms |\n' "$f_rps" "$(col 2 "${FREE[@]}")e-3" "$(col 3 "${FREE[@]}")e-3"
printf '| every guard | %.0f | %.2f ms | %.2f ms |\n' "$g_rps" "$(col 2 "${GUARDED[@]}")e-3" "$(col 3 "${GUARDED[@]}")e-3"
awk -v g="$g_rps" -v f="$f_rps" 'BEGIN { printf "\nguarded/free throughput, ratio of the medians: %.3f (guards cost %.1f%%; target <= 5%%)\n", g/f, (1-g/f)*100 }'
# The two keys of one round run back to back, so their ratio is the least touched by the
# machine's load drifting during the run: the median of those ratios.
paired() { # column -> median over rounds of guarded/free
  for i in "${!FREE[@]}"; do
    awk -v g="${GUARDED[$i]}" -v f="${FREE[$i]}" -v c="$1" \
      'BEGIN { split(g, G, " "); split(f, F, " "); printf "%.4f\n", G[c] / F[c] }'
  done | median
}
awk -v r="$(paired 1)" 'BEGIN { printf "guarded/free throughput, median of the per-round ratios: %.3f (guards cost %.1f%%)\n", r, (1-r)*100 }'
awk -v r="$(paired 4)" -v f="$(col 4 "${FREE[@]}")" -v g="$(col 4 "${GUARDED[@]}")" 'BEGIN {
  printf "Michi CPU per request, median: free %.2f us, guarded %.2f us; median of the per-round ratios: %.3f (guards cost %+.1f%% CPU)\n", f, g, r, (r-1)*100 }'
