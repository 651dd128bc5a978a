#!/usr/bin/env bash
# What the choice of target costs a request, counted by valgrind's callgrind: one Michi (one
# worker) in front of an nginx mock, with routes of three deployments of one model (three
# providers on the same mock) under each strategy that draws an order per request — weighted,
# least_busy, latency — and a route of one target (fallback) for comparison. Each route gets
# WARMUP requests, then the counters are zeroed, REQUESTS requests are sent over CONNECTIONS
# keep-alive connections, and the counters are dumped. Reported per route: all instructions
# per request, and those of the choice — routing::choose_order (the strategy's draw, the
# cool-downs, the order, the x-michi-route-reason text), routing::signals_of and the time to
# first byte's sample (routing::target_signals::observe) — inclusive, per request, and as a
# share of the whole request's.
#
#   bench/choice.sh   env: MICHI_BIN REQUESTS (2000) CONNECTIONS (4) WARMUP (500) KEEP (0; 1:
#                     keep the dumps)
#                     needs valgrind, callgrind_annotate, nginx, python3, curl
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MICHI_BIN="${MICHI_BIN:-$HERE/../build/release/michi-gateway}"
REQUESTS="${REQUESTS:-2000}"
CONNECTIONS="${CONNECTIONS:-4}"
WARMUP="${WARMUP:-500}"
# shellcheck source=bench/workdir.sh
source "$HERE/workdir.sh"
bench_workdir choice valgrind callgrind_control callgrind_annotate nginx python3 curl
# shellcheck source=bench/guard_keys.sh
source "$HERE/guard_keys.sh" # port

MOCK=$(port)
MICHI=$(port)
mkdir -p "$TMP/mock"
cat >"$TMP/mock/nginx.conf" <<NGINX
worker_processes 1; pid $TMP/mock/pid; error_log $TMP/mock/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $TMP/mock; keepalive_requests 1000000;
  server { listen 127.0.0.1:$MOCK; default_type application/json;
    location / { return 200 '{"id":"c","object":"chat.completion","created":1,"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}'; } } }
NGINX

KEYGEN="$("$MICHI_BIN" keygen --class application)"
KEY="$(awk '$1 == "secret:" {print $2}' <<<"$KEYGEN")"
SHA="$(awk '$1 == "secret_sha256:" {print $2}' <<<"$KEYGEN")"
UP="http://127.0.0.1:$MOCK/v1"
cat >"$TMP/michi.yaml" <<YAML
server: { listen: "127.0.0.1:$MICHI", threads: 1 }
log: { level: warn }
store: { sqlite: "$TMP/michi.db" }
providers:
  a: { type: openai, base_url: "$UP" }
  b: { type: openai, base_url: "$UP" }
  c: { type: openai, base_url: "$UP" }
models:
  a/gpt-bench: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  b/gpt-bench: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  c/gpt-bench: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
routes:
  single: { targets: [a/gpt-bench] }
  weighted: { strategy: weighted, targets: [a/gpt-bench, b/gpt-bench, c/gpt-bench], weights: [1, 2, 7] }
  least_busy: { strategy: least_busy, targets: [a/gpt-bench, b/gpt-bench, c/gpt-bench] }
  latency: { strategy: latency, targets: [a/gpt-bench, b/gpt-bench, c/gpt-bench] }
keys:
  - { id: bench, class: application, secret_sha256: "$SHA" }
YAML

nginx -p "$TMP/mock" -c "$TMP/mock/nginx.conf" -g 'daemon off;' >"$TMP/mock/out.log" 2>&1 &
PIDS+=($!)
valgrind --tool=callgrind --callgrind-out-file="$TMP/michi.cg" \
    "$MICHI_BIN" --config "$TMP/michi.yaml" >"$TMP/michi.log" 2>&1 &
MICHI_PID=$!
PIDS+=($MICHI_PID)

# N requests to a route over C keep-alive connections, each body distinct; fails on any non-200.
cat >"$TMP/load.py" <<'PY'
import http.client, sys, threading
port, n, c, key, route = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
bad = []
def run(t, count):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for i in range(count):
        body = ('{"model":"%s","max_tokens":16,"messages":[{"role":"user",'
                '"content":"hello %d %d"}]}' % (route, t, i))
        conn.request("POST", "/v1/chat/completions", body,
                     {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            bad.append(r.status)
threads = [threading.Thread(target=run, args=(t, n // c + (t < n % c))) for t in range(c)]
for t in threads: t.start()
for t in threads: t.join()
if bad:
    sys.exit("%d of %d requests failed, e.g. status %d" % (len(bad), n, bad[0]))
PY

for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $KEY" \
        -d '{"model":"single","messages":[{"role":"user","content":"x"}]}' \
        "http://127.0.0.1:$MICHI/v1/chat/completions" || true)
    [[ $code == 200 ]] && break
    sleep 0.2
done
[[ $code == 200 ]] || { echo "bench: Michi not answering 200 (last: ${code:-none})" >&2; cat "$TMP/michi.log" >&2; exit 1; }

echo "instructions per request ($REQUESTS requests over $CONNECTIONS connections, after $WARMUP warm-up)"
printf '  %-11s %9s %9s %8s\n' route request choice share
for route in single weighted least_busy latency; do
    python3 "$TMP/load.py" "$MICHI" "$WARMUP" "$CONNECTIONS" "$KEY" "$route"
    callgrind_control -z "$MICHI_PID" >/dev/null 2>&1
    python3 "$TMP/load.py" "$MICHI" "$REQUESTS" "$CONNECTIONS" "$KEY" "$route"
    callgrind_control --dump="$route" "$MICHI_PID" >/dev/null 2>&1
    dump=$(ls -t "$TMP"/michi.cg.* | head -1)
    total=$(awk '$1 == "totals:" {print $2}' "$dump")
    # Inclusive costs of the choice's functions (callgrind_annotate prints "12,345 (..%) file:fn").
    choice=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
        awk '/routing::choose_order|routing::signals_of|routing::target_signals::observe/ {
                 gsub(",", "", $1); s += $1 } END { printf "%d", s }')
    awk -v r="$route" -v t="$total" -v c="$choice" -v n="$REQUESTS" 'BEGIN {
        printf "  %-11s %9.0f %9.0f %7.2f%%\n", r, t / n, c / n, 100 * c / t }'
done
