#!/usr/bin/env bash
# The first requests after a start, with and without a provider's `prewarm`: one Michi
# (THREADS workers) in front of an nginx mock over HTTPS (a CA and an RSA-2048 certificate
# made here, as bench/run.sh's TLS=1). Each round starts Michi afresh with `prewarm: 0` or
# `prewarm: PREWARM` (alternating), waits for /readyz (and, with prewarm, for the mock to
# hold the connections, read from its stub_status), then sends FIRST requests at once, each
# on a new client connection, and times each. Reported per mode: the median, p90, p99 and
# worst of every round's first requests, in ms.
#
#   bench/prewarm.sh   env: MICHI_BIN ROUNDS (10) FIRST (8) THREADS (2) PREWARM (4)
#                      needs nginx, openssl, python3, curl
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MICHI_BIN="${MICHI_BIN:-$HERE/../build/release/michi-gateway}"
ROUNDS="${ROUNDS:-10}"
FIRST="${FIRST:-8}"
THREADS="${THREADS:-2}"
PREWARM="${PREWARM:-4}"
# shellcheck source=bench/workdir.sh
source "$HERE/workdir.sh"
bench_workdir prewarm nginx openssl python3 curl
# shellcheck source=bench/test_ca.sh
source "$HERE/test_ca.sh"
# shellcheck source=bench/guard_keys.sh
source "$HERE/guard_keys.sh" # port

mkdir -p "$TMP/tls" "$TMP/mock"
make_test_ca "$TMP/tls" || { echo "bench: could not make the TLS certificates (openssl)" >&2; exit 1; }

MOCK=$(port)
STATUS=$(port)
cat >"$TMP/mock/nginx.conf" <<NGINX
worker_processes 1; pid $TMP/mock/pid; error_log $TMP/mock/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $TMP/mock; keepalive_requests 1000000;
  server { listen 127.0.0.1:$MOCK ssl; default_type application/json;
    ssl_certificate $TMP/tls/server.pem; ssl_certificate_key $TMP/tls/server-key.pem;
    location / { return 200 '{"id":"c","object":"chat.completion","created":1,"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}'; } }
  server { listen 127.0.0.1:$STATUS; location / { stub_status; } } }
NGINX
nginx -p "$TMP/mock" -c "$TMP/mock/nginx.conf" -g 'daemon off;' >"$TMP/mock/out.log" 2>&1 &
PIDS+=($!)

KEYGEN="$("$MICHI_BIN" keygen --class application)"
KEY="$(awk '$1 == "secret:" {print $2}' <<<"$KEYGEN")"
SHA="$(awk '$1 == "secret_sha256:" {print $2}' <<<"$KEYGEN")"

# The mock's open connections (stub_status counts its own request too).
active() { curl -s "http://127.0.0.1:$STATUS/" | awk '/^Active connections/ {print $3 - 1}'; }

# FIRST requests at once, each on its own connection: their times in ms, one a line.
cat >"$TMP/first.py" <<'PY'
import http.client, sys, threading, time
port, n, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
times, bad, go = [], [], threading.Barrier(n)
def one(i):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    body = '{"model":"up/gpt-bench","messages":[{"role":"user","content":"hello %d"}]}' % i
    go.wait()
    t = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body,
                 {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    times.append((time.perf_counter() - t) * 1000)
    if r.status != 200:
        bad.append(r.status)
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
if bad:
    sys.exit("%d of %d first requests failed, e.g. status %d" % (len(bad), n, bad[0]))
print("\n".join("%.3f" % x for x in times))
PY

: >"$TMP/times.0"
: >"$TMP/times.$PREWARM"
for round in $(seq "$ROUNDS"); do
    for warm in 0 "$PREWARM"; do
        PORT=$(port)
        cat >"$TMP/michi.yaml" <<YAML
server: { listen: "127.0.0.1:$PORT", threads: $THREADS }
log: { level: warn }
store: { sqlite: "$TMP/michi-$round-$warm.db" }
providers:
  up: { type: openai, base_url: "https://localhost:$MOCK/v1", api_key: "sk-bench", ca_file: "$TMP/tls/ca.pem", prewarm: $warm }
models:
  up/gpt-bench: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
keys:
  - { id: bench, class: application, secret_sha256: "$SHA" }
YAML
        before=$(active)
        "$MICHI_BIN" --config "$TMP/michi.yaml" >"$TMP/michi.log" 2>&1 &
        pid=$!
        ok=0
        for _ in $(seq 200); do
            if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz") == 200 ]]; then
                ok=1
                break
            fi
            sleep 0.05
        done
        [[ $ok == 1 ]] || { echo "bench: Michi not ready" >&2; cat "$TMP/michi.log" >&2; kill "$pid"; exit 1; }
        if [[ $warm != 0 ]]; then
            want=$((before + warm * THREADS))
            for _ in $(seq 200); do
                [[ $(active) -ge $want ]] && break
                sleep 0.05
            done
        fi
        python3 "$TMP/first.py" "$PORT" "$FIRST" "$KEY" >>"$TMP/times.$warm"
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
    done
done

echo "first $FIRST requests after a start ($ROUNDS rounds, $THREADS workers, HTTPS upstream), ms"
printf '  %-10s %7s %7s %7s %7s %7s\n' prewarm requests p50 p90 p99 max
for warm in 0 "$PREWARM"; do
    python3 - "$TMP/times.$warm" "$warm" <<'PY'
import sys
v = sorted(float(x) for x in open(sys.argv[1]) if x.strip())
q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
print("  %-10s %7d %7.2f %7.2f %7.2f %7.2f" % (sys.argv[2], len(v), q(0.5), q(0.9), q(0.99), v[-1]))
PY
done
