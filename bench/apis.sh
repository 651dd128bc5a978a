#!/usr/bin/env bash
# What the client APIs beyond chat cost, against chat itself, in one run (paired rounds):
#
#   chat              POST /v1/chat/completions, passed through to an OpenAI-type mock
#   responses         POST /v1/responses, passed through to the same mock (apis: [chat,
#                     responses]); admitted by the byte scan, no parse
#   chat-stream       a chat stream relayed from a chat SSE mock (bench/bodies/chat-stream.sse:
#                     4 chunks with the usage chunk, then [DONE]: 5 upstream events)
#   responses-stream  a Responses API stream translated from the same chat SSE mock (the
#                     provider speaks chat only): the same 5 upstream events become 10
#                     Responses events
#
# Each round runs the four loads back to back (wrk, CONNECTIONS connections, DURATION each,
# the order rotated every round), and reads Michi's CPU time (utime + stime, all threads)
# around each run. The report gives req/s, CPU µs per request and, for the streams, CPU µs per
# relayed upstream event, each as the median over the rounds, and the ratios against chat as
# the mean of the per-round ratios with its standard error.
#
#   bench/apis.sh    env: MICHI_BIN (build/release/michi-gateway) DURATION (5s) ROUNDS (6)
#                    CONNECTIONS (64) THREADS (2) WORKERS (nproc) WARMUP (1s) OUT
#                    needs nginx, wrk, curl, python3
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MICHI_BIN="${MICHI_BIN:-$HERE/../build/release/michi-gateway}"
DURATION="${DURATION:-5s}"
ROUNDS="${ROUNDS:-6}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
WORKERS="${WORKERS:-$(nproc)}"
WARMUP="${WARMUP:-1s}"
OUT="${OUT:-$HERE/results/apis.md}"
NGINX="${NGINX:-nginx}"
WRK="${WRK:-wrk}"

die() { echo "bench: $*" >&2; exit 1; }
[[ -x "$MICHI_BIN" ]] || die "no michi-gateway at $MICHI_BIN (build it, or set MICHI_BIN)"
for tool in "$NGINX" "$WRK" curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/michi-apis.XXXXXX")"
PIDS=()
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# utime + stime (clock ticks, all threads) of a pid, by shell built-ins (no fork).
cpu_ticks() {
    local line f
    read -r line <"/proc/$1/stat"
    read -ra f <<<"${line##*) }"
    REPLY=$((f[11] + f[12]))
}

KEYGEN="$("$MICHI_BIN" keygen --class application)"
KEY="$(awk '$1 == "secret:" {print $2}' <<<"$KEYGEN")"
KEY_SHA="$(awk '$1 == "secret_sha256:" {print $2}' <<<"$KEYGEN")"
[[ -n "$KEY" && -n "$KEY_SHA" ]] || die "keygen output not understood"

MOCK_PORT=$(free_port)
SSE_PORT=$(free_port)
MICHI_PORT=$(free_port)

CHAT_JSON='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}'
RESPONSE_JSON='{"id":"resp_bench","object":"response","created_at":1700000000,"status":"completed","model":"gpt-bench","output":[{"id":"msg_bench","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello! How can I help you today?","annotations":[]}]}],"usage":{"input_tokens":9,"input_tokens_details":{"cached_tokens":0},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":18}}'
CHAT_SSE="$(cat "$HERE/bodies/chat-stream.sse"; printf x)" # (x: keeps the closing blank line)
CHAT_SSE="${CHAT_SSE%x}"
UPSTREAM_EVENTS=5

mkdir -p "$TMP/mock/tmp" "$TMP/michi"
cat >"$TMP/mock/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/mock/nginx.pid;
error_log $TMP/mock/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/mock/tmp/body;
    proxy_temp_path $TMP/mock/tmp/proxy;
    fastcgi_temp_path $TMP/mock/tmp/fastcgi;
    uwsgi_temp_path $TMP/mock/tmp/uwsgi;
    scgi_temp_path $TMP/mock/tmp/scgi;
    keepalive_requests 1000000;
    client_body_buffer_size 1m;
    server {
        listen 127.0.0.1:$MOCK_PORT;
        location = /v1/chat/completions { default_type application/json; return 200 '$CHAT_JSON'; }
        location = /v1/responses { default_type application/json; return 200 '$RESPONSE_JSON'; }
        location / { return 404; }
    }
    server {
        listen 127.0.0.1:$SSE_PORT;
        location = /v1/chat/completions { default_type text/event-stream; return 200 '$CHAT_SSE'; }
        location / { return 404; }
    }
}
EOF
cat >"$TMP/michi/michi.yaml" <<EOF
server:
  listen: "127.0.0.1:$MICHI_PORT"
  threads: $WORKERS
log:
  level: warn
store:
  sqlite: $TMP/michi/bench.db
providers:
  mock: { type: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1", apis: [chat, responses] }
  mocksse: { type: openai, base_url: "http://127.0.0.1:$SSE_PORT/v1" }
models:
  mock/gpt-bench: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  mocksse/gpt-bench: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
keys:
  - id: bench
    class: application
    secret_sha256: "$KEY_SHA"
    rpm: 1000000000
    tpm: 1000000000000
EOF
"$NGINX" -p "$TMP/mock" -c "$TMP/mock/nginx.conf" -e "$TMP/mock/error.log" \
    >"$TMP/mock/out.log" 2>&1 &
PIDS+=("$!")
"$MICHI_BIN" --config "$TMP/michi/michi.yaml" >"$TMP/michi/out.log" 2>&1 &
MICHI_PID=$!
PIDS+=("$MICHI_PID")

declare -A PATH_OF=([chat]=/v1/chat/completions [responses]=/v1/responses
    [chat-stream]=/v1/chat/completions [responses-stream]=/v1/responses)
declare -A BODY_OF=(
    [chat]='{"model":"mock/gpt-bench","messages":[{"role":"user","content":"hello"}]}'
    [responses]='{"model":"mock/gpt-bench","input":"hello"}'
    [chat-stream]='{"model":"mocksse/gpt-bench","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]}'
    [responses-stream]='{"model":"mocksse/gpt-bench","stream":true,"input":"hello"}')
LOADS=(chat responses chat-stream responses-stream)

for load in "${LOADS[@]}"; do
    ok=0
    for _ in $(seq 1 100); do
        kill -0 "$MICHI_PID" 2>/dev/null || { cat "$TMP/michi/out.log" >&2; die "michi exited"; }
        body="$(curl -s --max-time 2 -X POST -H "Authorization: Bearer $KEY" \
            -H 'Content-Type: application/json' --data "${BODY_OF[$load]}" \
            "http://127.0.0.1:$MICHI_PORT${PATH_OF[$load]}" || true)"
        case $load in
        responses) [[ "$body" == "$RESPONSE_JSON" ]] && ok=1 ;;
        responses-stream) [[ "$body" == *response.completed* ]] && ok=1 ;;
        chat-stream) [[ "$body" == *'[DONE]'* ]] && ok=1 ;;
        *) [[ "$body" == "$CHAT_JSON" ]] && ok=1 ;;
        esac
        [[ $ok == 1 ]] && break
        sleep 0.1
    done
    [[ $ok == 1 ]] || die "$load: unexpected answer: ${body:0:300}"
done

# One wrk script per load (method, body, key; one BENCH line at the end).
for load in "${LOADS[@]}"; do
    cat >"$TMP/$load.lua" <<EOF
wrk.method = "POST"
wrk.body = [[${BODY_OF[$load]}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
function done(summary, latency, requests)
  io.write(string.format("BENCH requests=%d rps=%.1f non2xx=%d errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF
done

TICK=$(getconf CLK_TCK)
: >"$TMP/runs.txt"
for ((round = 0; round < ROUNDS; round++)); do
    for ((k = 0; k < ${#LOADS[@]}; k++)); do
        load=${LOADS[$(((k + round) % ${#LOADS[@]}))]}
        url="http://127.0.0.1:$MICHI_PORT${PATH_OF[$load]}"
        if [[ "$WARMUP" != 0 ]]; then
            "$WRK" -t "$THREADS" -c "$CONNECTIONS" -d "$WARMUP" -s "$TMP/$load.lua" "$url" >/dev/null
        fi
        cpu_ticks "$MICHI_PID"; before=$REPLY
        line="$("$WRK" -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -s "$TMP/$load.lua" "$url" \
            | grep '^BENCH')"
        cpu_ticks "$MICHI_PID"; after=$REPLY
        echo "round=$round load=$load cpu_ticks=$((after - before)) tick=$TICK ${line#BENCH }" \
            | tee -a "$TMP/runs.txt"
    done
done

mkdir -p "$(dirname "$OUT")"
UPSTREAM_EVENTS=$UPSTREAM_EVENTS ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS \
WORKERS=$WORKERS REV="$(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null || echo '?')" \
python3 - "$TMP/runs.txt" <<'PY' | tee "$OUT"
import os, statistics as st, sys
runs = {}
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split())
    r = runs.setdefault(int(f["round"]), {})
    n = int(f["requests"])
    r[f["load"]] = {"rps": float(f["rps"]), "bad": int(f["non2xx"]) + int(f["errors"]),
                    "us": int(f["cpu_ticks"]) / int(f["tick"]) * 1e6 / max(n, 1)}
E = os.environ
ev = int(E["UPSTREAM_EVENTS"])
loads = ["chat", "responses", "chat-stream", "responses-stream"]
med = lambda load, k: st.median(r[load][k] for r in runs.values())
def ratio(a, b, k):
    xs = [r[a][k] / r[b][k] for r in runs.values() if r[b][k] > 0]
    se = st.stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else 0.0
    return st.mean(xs), se
print(f"# Client APIs against chat ({E['REV']}; {E['ROUNDS']} rounds of {E['DURATION']}, "
      f"{E['CONNECTIONS']} connections, {E['WORKERS']} workers)\n")
print("| load | req/s | CPU µs/request | CPU µs/upstream event | errors |")
print("|---|---:|---:|---:|---:|")
for load in loads:
    per_event = f"{med(load, 'us') / ev:.2f}" if load.endswith("stream") else ""
    bad = sum(r[load]["bad"] for r in runs.values())
    print(f"| {load} | {med(load, 'rps'):.0f} | {med(load, 'us'):.1f} | {per_event} | {bad} |")
m, se = ratio("responses", "chat", "rps")
print(f"\n- responses passthrough / chat passthrough, req/s: **{m:.3f}×** (±{se:.3f}); "
      f"target ≥ 0.95×: {'met' if m >= 0.95 else 'NOT met'}")
m, se = ratio("responses", "chat", "us")
print(f"- responses passthrough / chat passthrough, CPU per request: {m:.3f}× (±{se:.3f})")
m, se = ratio("responses-stream", "chat-stream", "us")
d = [(r["responses-stream"]["us"] - r["chat-stream"]["us"]) / ev for r in runs.values()]
print(f"- responses→chat stream / raw chat relay, CPU per stream: {m:.3f}× (±{se:.3f}); "
      f"the translation adds {st.mean(d):.2f} µs per upstream event "
      f"({ev} upstream events a stream, 10 Responses events out)")
m, se = ratio("responses-stream", "chat-stream", "rps")
print(f"- responses→chat stream / raw chat relay, req/s: {m:.3f}× (±{se:.3f})")
PY
