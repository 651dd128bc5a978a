#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: a figure that does not move with
# the load on a shared machine, where req/s does by tens of percent.
#
#   nginx-proxy  the same nginx reverse proxy as bench/run.sh (1 worker, pooled keep-alive)
#   michi/free   Michi, a key with no limits
#   michi/guard  Michi, a key with every guard set (daily and monthly budgets, RPM, TPM, the
#                agent loop guard), limits far above what the run reaches
#   beast-floor  a bare proxy on Asio and Beast alone (bench/floor/, one worker), when its
#                binary is built (cmake --build --preset release --target michi-bench-floor)
#
# All three proxy the same mock upstream (nginx, not counted). Each target gets WARMUP
# requests (by default enough to fill the loop guard's table of 4096 recent bodies, so the
# guarded key is measured as a long-running gateway serves it, not while its tables grow),
# then its counters are zeroed, REQUESTS requests are sent over CONNECTIONS
# keep-alive connections, and the counters are dumped: instructions / REQUESTS, all threads
# of the process (Michi's request-log writer included). Every request body differs, as a
# real agent's do, so the loop guard sees a new fingerprint each time.
#
# REDIS=1 adds michi-redis/guard: a second Michi (one worker, under callgrind too) with the
# ledger in a redis-server started here (store.redis), the guarded key; and Redis's own figures
# over those requests from `INFO commandstats` (µs per call, calls per request), since
# redis-server's instructions are not counted.
#
# CACHE=1 adds michi/cache-hit: a key with the response cache on (`cache: { ttl: 1h }`), every
# request the same body, so that each one after the first is a hit answered from memory: what a
# hit costs against michi/free's proxied request.
#
# STREAM=1 makes every answer a stream: the mock serves bench/bodies/chat-stream.sse
# (text/event-stream: two content chunks, the finish chunk, the usage chunk, [DONE]), each
# request asks for it ("stream": true, stream_options.include_usage: bench/stream.lua's body),
# nginx-proxy relays it unbuffered (proxy_buffering off, as one configures nginx for SSE):
# what a stream costs against a plain answer.
#
# TLS=1 puts the mock behind HTTPS (a CA and an RSA-2048 certificate for localhost made here,
# as bench/run.sh's TLS=1): nginx-proxy verifies it and reuses sessions, Michi's provider names
# the CA as its ca_file; the floor, which speaks plain HTTP only, is left out.
#
#   bench/instructions.sh   env: MICHI_BIN FLOOR_BIN REQUESTS (2000) CONNECTIONS (4) WARMUP (5000)
#                           REDIS (0) TLS (0) CACHE (0) STREAM (0) KEEP (0; 1: keep the dumps)
#                           needs valgrind, nginx, python3, curl (REDIS=1: redis-server, redis-cli)
set -euo pipefail
shopt -s inherit_errexit # a failed load in $(measure ...) stops the script
HERE="$(cd "$(dirname "$0")" && pwd)"
MICHI_BIN="${MICHI_BIN:-$HERE/../build/release/michi-gateway}"
REQUESTS="${REQUESTS:-2000}"
CONNECTIONS="${CONNECTIONS:-4}"
WARMUP="${WARMUP:-5000}"
FLOOR_BIN="${FLOOR_BIN:-$HERE/../build/release/michi-bench-floor}"
REDIS="${REDIS:-0}"
TLS="${TLS:-0}"
CACHE="${CACHE:-0}"
STREAM="${STREAM:-0}"
# shellcheck source=bench/workdir.sh
source "$HERE/workdir.sh"
bench_workdir instr valgrind callgrind_control nginx python3 curl
# shellcheck source=bench/test_ca.sh
source "$HERE/test_ca.sh"
# shellcheck source=bench/guard_keys.sh
source "$HERE/guard_keys.sh"

MOCK=$(port)
PROXY=$(port)
MICHI=$(port)
FLOOR=$(port)
mkdir -p "$TMP/mock" "$TMP/proxy"
common() { # dir -> nginx main/http preamble
    cat <<NGINX
worker_processes 1; pid $1/pid; error_log $1/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $1; proxy_temp_path $1;
  keepalive_requests 1000000;
NGINX
}
UP=http
MOCK_SSL=""
MOCK_SSL_CONF=""
PROXY_SSL=""
if [[ "$TLS" == 1 ]]; then
    FLOOR_BIN=/nonexistent # plain HTTP only
    make_test_ca "$TMP" || { echo "bench: could not make the TLS certificates (openssl)" >&2; exit 1; }
    UP=https
    MOCK_SSL=" ssl"
    MOCK_SSL_CONF="ssl_certificate $TMP/server.pem; ssl_certificate_key $TMP/server-key.pem;
  ssl_session_cache shared:mock:1m;"
    PROXY_SSL="proxy_ssl_verify on; proxy_ssl_trusted_certificate $TMP/ca.pem;
    proxy_ssl_name localhost; proxy_ssl_server_name on; proxy_ssl_session_reuse on;"
fi
ANSWER_TYPE=application/json
ANSWER='{"id":"c","object":"chat.completion","created":1,"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}'
PROXY_BUFFERING=""
if [[ "$STREAM" == 1 ]]; then # bench/bodies/chat-stream.sse, as bench/run.sh serves it
    ANSWER_TYPE=text/event-stream
    ANSWER="$(cat "$HERE/bodies/chat-stream.sse"; printf x)" # (x: keeps the closing blank line)
    ANSWER="${ANSWER%x}"
    PROXY_BUFFERING="proxy_buffering off;"
fi
{
    common "$TMP/mock"
    cat <<NGINX
  $MOCK_SSL_CONF
  server { listen 127.0.0.1:$MOCK$MOCK_SSL; default_type $ANSWER_TYPE;
    location / { return 200 '$ANSWER'; } } }
NGINX
} >"$TMP/mock/nginx.conf"
{
    common "$TMP/proxy"
    cat <<NGINX
  upstream mock { server 127.0.0.1:$MOCK; keepalive 64; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$PROXY;
    location / { proxy_pass $UP://mock; proxy_http_version 1.1; proxy_set_header Connection "";
    $PROXY_BUFFERING $PROXY_SSL } } }
NGINX
} >"$TMP/proxy/nginx.conf"

guard_keys_config "$MICHI" "$MOCK" 1
if [[ "$CACHE" == 1 ]]; then
    keygen application cached
    echo "  - { id: cached, class: application, secret_sha256: \"$(field secret_sha256 cached)\"," \
        "cache: { ttl: 1h } }" >>"$TMP/michi.yaml"
fi
if [[ "$TLS" == 1 ]]; then
    sed -i "s|base_url: \"http://127.0.0.1:$MOCK/v1\"|base_url: \"https://localhost:$MOCK/v1\", ca_file: \"$TMP/ca.pem\"|" \
        "$TMP/michi.yaml"
    grep -q "ca_file" "$TMP/michi.yaml" || { echo "bench: TLS config not written" >&2; exit 1; }
fi

nginx -p "$TMP/mock" -c "$TMP/mock/nginx.conf" -g 'daemon off;' >"$TMP/mock/out.log" 2>&1 &
PIDS+=($!)
# Under callgrind: nginx as one process (no master), Michi with one worker.
valgrind --tool=callgrind --callgrind-out-file="$TMP/proxy.cg" \
    nginx -p "$TMP/proxy" -c "$TMP/proxy/nginx.conf" -g 'daemon off; master_process off;' \
    >"$TMP/proxy/out.log" 2>&1 &
PROXY_PID=$!
PIDS+=($PROXY_PID)
valgrind --tool=callgrind --callgrind-out-file="$TMP/michi.cg" \
    "$MICHI_BIN" --config "$TMP/michi.yaml" >"$TMP/michi.log" 2>&1 &
MICHI_PID=$!
PIDS+=($MICHI_PID)
REDIS_MICHI_PID=""
if [[ "$REDIS" == 1 ]]; then
    REDIS_PORT=$(port)
    REDIS_MICHI=$(port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --logfile "$TMP/redis.log" &
    PIDS+=($!)
    sed -e "s/127.0.0.1:$MICHI\"/127.0.0.1:$REDIS_MICHI\"/" \
        -e "s|^store: { sqlite: \"\(.*\)\" }|store: { sqlite: \"\1-redis\", redis: \"redis://127.0.0.1:$REDIS_PORT\" }|" \
        "$TMP/michi.yaml" >"$TMP/michi-redis.yaml"
    valgrind --tool=callgrind --callgrind-out-file="$TMP/michi-redis.cg" \
        "$MICHI_BIN" --config "$TMP/michi-redis.yaml" >"$TMP/michi-redis.log" 2>&1 &
    REDIS_MICHI_PID=$!
    PIDS+=($REDIS_MICHI_PID)
fi
FLOOR_PID=""
if [[ -x "$FLOOR_BIN" ]]; then
    valgrind --tool=callgrind --callgrind-out-file="$TMP/floor.cg" \
        "$FLOOR_BIN" "$FLOOR" "$MOCK" 1 >"$TMP/floor.log" 2>&1 &
    FLOOR_PID=$!
    PIDS+=($FLOOR_PID)
fi

# N requests over C keep-alive connections, each body distinct; fails on any non-200.
cat >"$TMP/load.py" <<'PY'
import http.client, sys, threading
port, n, c, key, tag = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
stream = sys.argv[6] == "1"
# A stream asks for its usage chunk too, as bench/stream.lua's body does.
extra = '"stream":true,"stream_options":{"include_usage":true},' if stream else ''
bad = []
def run(t, count):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for i in range(count):
        # "same": one body throughout (the response cache's hits), else each one differs.
        body = ('{"model":"mock/gpt-bench","max_tokens":16,%s"messages":[{"role":"user",'
                '"content":"hello %s %d %d"}]}'
                % ((extra, tag, 0, 0) if tag == "same" else (extra, tag, t, i)))
        conn.request("POST", "/v1/chat/completions", body,
                     {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        r = conn.getresponse()
        answer = r.read()
        if r.status != 200:
            bad.append("status %d" % r.status)
        elif stream and not answer.endswith(b"data: [DONE]\n\n"):
            bad.append("200 without data: [DONE] at its end")
threads = [threading.Thread(target=run, args=(t, n // c + (t < n % c))) for t in range(c)]
for t in threads: t.start()
for t in threads: t.join()
if bad:
    sys.exit("%d of %d requests failed, e.g. %s" % (len(bad), n, bad[0]))
PY

ready() { # port key -> waits for a 200 (valgrind starts slowly)
    local code=""
    for _ in $(seq 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $2" \
            -d '{"model":"mock/gpt-bench","messages":[{"role":"user","content":"x"}]}' \
            "http://127.0.0.1:$1/v1/chat/completions" || true)
        [[ $code == 200 ]] && return 0
        sleep 0.2
    done
    echo "bench: port $1 not answering 200 (last: ${code:-none})" >&2
    cat "$TMP/michi.log" >&2
    exit 1
}
ready "$PROXY" none
ready "$MICHI" "$(field secret free)"
[[ -z "$FLOOR_PID" ]] || ready "$FLOOR" none
[[ -z "$REDIS_MICHI_PID" ]] || ready "$REDIS_MICHI" "$(field secret free)"

measure() { # name pid port key dump-prefix -> instructions per request
    local name=$1 pid=$2 port=$3 key=$4 prefix=$5
    python3 "$TMP/load.py" "$port" "$WARMUP" "$CONNECTIONS" "$key" "warm-$name" "$STREAM"
    callgrind_control -z "$pid" >/dev/null 2>&1
    python3 "$TMP/load.py" "$port" "$REQUESTS" "$CONNECTIONS" "$key" "$name" "$STREAM"
    callgrind_control --dump="$name" "$pid" >/dev/null 2>&1
    local dump
    dump=$(ls -t "$prefix".* | head -1)
    awk -v n="$REQUESTS" '$1 == "totals:" {printf "%.0f\n", $2 / n}' "$dump"
}

PROXY_I=$(measure proxy "$PROXY_PID" "$PROXY" none "$TMP/proxy.cg")
FREE_I=$(measure free "$MICHI_PID" "$MICHI" "$(field secret free)" "$TMP/michi.cg")
GUARD_I=$(measure guarded "$MICHI_PID" "$MICHI" "$(field secret guarded)" "$TMP/michi.cg")
CACHE_I=""
[[ "$CACHE" != 1 ]] || CACHE_I=$(measure same "$MICHI_PID" "$MICHI" "$(field secret cached)" "$TMP/michi.cg")
FLOOR_I=""
[[ -z "$FLOOR_PID" ]] || FLOOR_I=$(measure floor "$FLOOR_PID" "$FLOOR" none "$TMP/floor.cg")
REDIS_I=""
if [[ -n "$REDIS_MICHI_PID" ]]; then
    redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
    REDIS_I=$(measure guarded-redis "$REDIS_MICHI_PID" "$REDIS_MICHI" "$(field secret guarded)" \
        "$TMP/michi-redis.cg")
    REDIS_STATS=$(redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' | grep '^cmdstat_')
fi

echo "instructions per request ($REQUESTS requests over $CONNECTIONS connections, after $WARMUP warm-up;" \
    "upstream $([[ "$TLS" == 1 ]] && echo HTTPS || echo plain HTTP)$([[ "$STREAM" == 1 ]] && echo ", streamed answers"))"
printf '  %-12s %8s\n' nginx-proxy "$PROXY_I" michi/free "$FREE_I" michi/guard "$GUARD_I"
awk -v p="$PROXY_I" -v f="$FREE_I" -v g="$GUARD_I" 'BEGIN {
    printf "  michi/free / nginx-proxy: %.2fx\n", f / p
    printf "  guards cost: %+.1f%% instructions (michi/guard / michi/free = %.3f)\n", 100 * (g - f) / f, g / f }'
if [[ -n "$CACHE_I" ]]; then
    printf '  %-12s %8s\n' michi/cache-hit "$CACHE_I"
    awk -v f="$FREE_I" -v c="$CACHE_I" 'BEGIN {
        printf "  michi/free / michi/cache-hit: %.2fx (a proxied request against a hit)\n", f / c }'
fi
if [[ -n "$REDIS_I" ]]; then
    printf '  %-12s %8s\n' michi-redis/guard "$REDIS_I"
    awk -v g="$GUARD_I" -v r="$REDIS_I" 'BEGIN {
        printf "  michi-redis/guard / michi/guard: %.2fx (Michi only; redis-server not counted)\n", r / g }'
    echo "  Redis over the $((WARMUP + REQUESTS)) requests of the warm-up and the measure (INFO"
    echo "  commandstats; Michi under callgrind is slow, so its batches are small here):"
    echo "$REDIS_STATS" | awk -F'[:,=]' -v n="$((WARMUP + REQUESTS))" '{
        printf "    %-18s %6d calls (%.3f per request), %6.2f µs per call, %6.2f µs per request\n",
            $1, $3, $3 / n, $7, $5 / n }'
fi
if [[ -n "$FLOOR_I" ]]; then
    printf '  %-12s %8s\n' beast-floor "$FLOOR_I"
    awk -v p="$PROXY_I" -v f="$FREE_I" -v b="$FLOOR_I" 'BEGIN {
        printf "  beast-floor / nginx-proxy: %.2fx; michi/free / beast-floor: %.2fx\n", b / p, f / b }'
fi
