#!/usr/bin/env bash
# Michi benchmark: the same load against
#   (a) direct      — a static mock upstream (nginx `return 200 '<chat.completion JSON>'`),
#   (b) nginx-proxy — nginx reverse proxy in front of the mock (pooled keep-alive upstream),
#   (c) michi       — michi-gateway in front of the mock (openai provider, auth + guards),
# all in one run, interleaved over several rounds (FLOOR=1 adds (d) beast-floor, below). Prints
# a table and the Michi/nginx-proxy ratios, and writes bench/results/latest.md. Everything
# listens on 127.0.0.1, on free ephemeral ports, and every process started here is stopped on
# exit.
#
# Knobs (environment):
#   MICHI_BIN        michi-gateway binary        (default: build/release/michi-gateway)
#   DURATION         wrk duration per target, throughput phase   (default 10s)
#   CONNECTIONS      wrk connections, throughput phase            (default 64)
#   THREADS          wrk threads, throughput phase                (default 2)
#   LAT_DURATION     wrk duration per target, latency phase       (default 5s; 0 = skip phase)
#   LAT_CONNECTIONS  wrk connections (1 thread), latency phase    (default 1)
#   WARMUP           untimed wrk run before each throughput run   (default 2s; 0 = none)
#   ROUNDS           rounds; each runs all targets, order rotated (default 3)
#   WORKERS          Michi server.threads = nginx-proxy worker_processes (default: nproc)
#   MOCK_WORKERS     worker_processes of the mock upstream        (default 1)
#   STREAM           1: add streaming (SSE) phases: the throughput phase's load and, unless
#                    LAT_DURATION is 0, the latency phase's (default 0)
#   FLOOR            1: add a fourth target, beast-floor: a bare proxy on Asio and Beast alone
#                    (bench/floor/beast_proxy.cpp; no auth, routing, JSON, guards or log), in the
#                    throughput and latency phases, to tell the stack's own cost from Michi's
#                    (default 0; build it with --target michi-bench-floor)
#   FLOOR_BIN        its binary (default: build/release/michi-bench-floor)
#   REDIS            1: add a target michi-redis: a second Michi, the same config but with the
#                    ledger in Redis (store.redis, a redis-server started here; its CPU and RSS
#                    are counted with that target's), to measure what the shared ledger costs
#                    (default 0)
#   CACHE            1: add a target michi-cache: the same config with the response cache on the
#                    bench key (`cache: { ttl: 1h }`), so every request after the first is a
#                    hit: what a hit costs against a proxied request (default 0)
#   BASE_BIN         another michi-gateway build (e.g. the one before a change): adds a target
#                    michi-base, the same config, in every phase; the report then compares the
#                    two builds round by round (the mean of the per-round ratios and its
#                    standard error: pairs run back to back share the machine's state)
#   TLS              1: the mock upstream speaks HTTPS only (a CA and an RSA-2048 server
#                    certificate for localhost made here at run time); nginx-proxy verifies it
#                    (proxy_ssl_verify, proxy_ssl_trusted_certificate, proxy_ssl_session_reuse)
#                    and Michi's providers name the CA as their ca_file (default 0)
#   BODY_FILE        the chat request body of the throughput and latency phases (default: a
#                    one-line "hello"; bench/bodies/conversation-11k.json is a 40-message one)
#   NGINX, WRK       binaries (default: from PATH)
#   OUT              results file (default bench/results/latest.md)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

MICHI_BIN="${MICHI_BIN:-$ROOT/build/release/michi-gateway}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
LAT_DURATION="${LAT_DURATION:-5s}"
LAT_CONNECTIONS="${LAT_CONNECTIONS:-1}"
WARMUP="${WARMUP:-2s}"
ROUNDS="${ROUNDS:-3}"
WORKERS="${WORKERS:-$(nproc)}"
MOCK_WORKERS="${MOCK_WORKERS:-1}"
STREAM="${STREAM:-0}"
FLOOR="${FLOOR:-0}"
FLOOR_BIN="${FLOOR_BIN:-$ROOT/build/release/michi-bench-floor}"
REDIS="${REDIS:-0}"
BASE_BIN="${BASE_BIN:-}"
CACHE="${CACHE:-0}"
TLS="${TLS:-0}"
NGINX="${NGINX:-nginx}"
WRK="${WRK:-wrk}"
OUT="${OUT:-$HERE/results/latest.md}"
LUA="$HERE/chat.lua"
STREAM_LUA="$HERE/stream.lua"
CHAT_BODY='{"model":"mock/gpt-bench","messages":[{"role":"user","content":"hello"}]}'
BODY_FILE="${BODY_FILE:-}"
if [[ -n "$BODY_FILE" ]]; then
    [[ -r "$BODY_FILE" ]] || { echo "bench: cannot read BODY_FILE $BODY_FILE" >&2; exit 1; }
    BODY_FILE="$(readlink -f "$BODY_FILE")"
    CHAT_BODY="$(cat "$BODY_FILE")"
fi
export MICHI_BENCH_BODY_FILE="$BODY_FILE"
STREAM_BODY='{"model":"mocksse/gpt-bench","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]}'

die() { echo "bench: $*" >&2; exit 1; }
# shellcheck source=bench/test_ca.sh
source "$HERE/test_ca.sh"

[[ -x "$MICHI_BIN" ]] || die "no michi-gateway at $MICHI_BIN (build it, or set MICHI_BIN)"
MICHI_BIN="$(readlink -f "$MICHI_BIN")"
if [[ "$FLOOR" == 1 ]]; then
    [[ -x "$FLOOR_BIN" ]] || die "no michi-bench-floor at $FLOOR_BIN" \
        "(cmake --build --preset release --target michi-bench-floor, or set FLOOR_BIN)"
fi
command -v "$NGINX" >/dev/null || die "nginx not found ($NGINX)"
if [[ -n "$BASE_BIN" ]]; then
    [[ -x "$BASE_BIN" ]] || die "no michi-gateway at BASE_BIN=$BASE_BIN"
    BASE_BIN="$(readlink -f "$BASE_BIN")"
fi
if [[ "$REDIS" == 1 ]]; then
    command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
fi
command -v "$WRK" >/dev/null || die "wrk not found ($WRK)"
if [[ "$TLS" == 1 ]]; then
    [[ "$FLOOR" != 1 ]] || die "FLOOR=1 has no TLS upstream: run it without TLS=1"
    command -v openssl >/dev/null || die "openssl not found (TLS=1 makes its certificates with it)"
fi
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/michi-bench.XXXXXX")"
PIDS=()
SAMPLER_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$SAMPLER_PID" ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    # Give them a moment to stop (nginx fast shutdown, Michi drain), then insist.
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

# The readers below use bash builtins only (no fork), so that sampling during a run costs
# next to nothing on a 2-core machine. They take a list of pids and set REPLY.

# Sum of VmRSS (kB) of the pids; a pid that is gone counts 0.
rss_kb() {
    local total=0 pid k v _
    for pid in "$@"; do
        [[ -r /proc/$pid/status ]] || continue
        while read -r k v _; do
            [[ $k == VmRSS: ]] && total=$((total + v)) && break
        done <"/proc/$pid/status"
    done
    REPLY=$total
}

# Sum of utime + stime (clock ticks, all threads) of the pids.
cpu_ticks() {
    local total=0 pid line f
    for pid in "$@"; do
        { read -r line <"/proc/$pid/stat"; } 2>/dev/null || continue
        read -ra f <<<"${line##*) }"
        total=$((total + f[11] + f[12]))
    done
    REPLY=$total
}

# Wait until a POST of BODY to the target answers 200 (max ~20 s).
wait_ready() {
    local name=$1 url=$2 pid=$3 log=$4 body=$5
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2 || true; die "$name exited during startup"; }
        local code
        code=$(curl -s "${CURL_TLS[@]}" -o /dev/null -w '%{http_code}' --max-time 2 -X POST \
            -H 'Content-Type: application/json' -H "Authorization: Bearer $MICHI_BENCH_KEY" \
            --data "$body" "$url" || true)
        [[ "$code" == 200 ]] && return 0
        sleep 0.1
    done
    cat "$log" >&2 || true
    die "$name not answering 200 at $url (last status: ${code:-none})"
}

# ---------------------------------------------------------------- setup

KEYGEN="$("$MICHI_BIN" keygen --class application)"
MICHI_BENCH_KEY="$(awk '$1 == "secret:" {print $2}' <<<"$KEYGEN")"
KEY_SHA="$(awk '$1 == "secret_sha256:" {print $2}' <<<"$KEYGEN")"
[[ -n "$MICHI_BENCH_KEY" && -n "$KEY_SHA" ]] || die "keygen output not understood: $KEYGEN"
export MICHI_BENCH_KEY

MOCK_PORT=$(free_port)
PROXY_PORT=$(free_port)
MICHI_PORT=$(free_port)
MOCK_SSE_PORT=$(free_port)
PROXY_SSE_PORT=$(free_port)
FLOOR_PORT=$(free_port)
REDIS_PORT=$(free_port)
MICHI_REDIS_PORT=$(free_port)
MICHI_BASE_PORT=$(free_port)
MICHI_CACHE_PORT=$(free_port)
MOCK_STATUS_PORT=$(free_port)

# TLS=1: the mock's upstream scheme and server settings, made here: a throwaway CA and an
# RSA-2048 server certificate for localhost (and 127.0.0.1) signed by it.
UP_SCHEME=http
UP_HOST=127.0.0.1
CURL_TLS=()
MOCK_SSL=""
PROXY_SSL=""
if [[ "$TLS" == 1 ]]; then
    mkdir -p "$TMP/tls"
    make_test_ca "$TMP/tls" || die "could not make the TLS certificates (openssl)"
    UP_SCHEME=https
    UP_HOST=localhost
    CURL_TLS=(--cacert "$TMP/tls/ca.pem")
    MOCK_SSL=" ssl"
    # Tickets (nginx's default) and a session cache: resumption by either kind works.
    MOCK_SSL_CONF="ssl_certificate $TMP/tls/server.pem;
    ssl_certificate_key $TMP/tls/server-key.pem;
    ssl_session_cache shared:mock:1m;"
    PROXY_SSL="proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $TMP/tls/ca.pem;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;"
fi

MOCK_JSON='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18},"system_fingerprint":"fp_bench"}'

# The streaming answer (bench/bodies/chat-stream.sse, which bench/apis.sh and
# bench/instructions.sh serve too): OpenAI chunks, the usage chunk (include_usage), [DONE].
MOCK_SSE="$(cat "$HERE/bodies/chat-stream.sse"; printf x)" # (x: keeps the closing blank line)
MOCK_SSE="${MOCK_SSE%x}"

# nginx config common to both instances: everything inside the instance's own directory.
nginx_head() {
    local dir=$1 workers=$2
    mkdir -p "$dir/tmp"
    cat <<EOF
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_buffer_size 1m;  # bodies stay in memory, as in Michi (no temp files)
EOF
}

mkdir -p "$TMP/mock" "$TMP/proxy" "$TMP/michi"
{
    nginx_head "$TMP/mock" "$MOCK_WORKERS"
    cat <<EOF
    ${MOCK_SSL_CONF:-}
    server {
        listen 127.0.0.1:$MOCK_PORT$MOCK_SSL;
        location = /v1/chat/completions {
            default_type application/json;
            return 200 '$MOCK_JSON';
        }
        location / { return 404; }
    }
    server {
        listen 127.0.0.1:$MOCK_SSE_PORT$MOCK_SSL;
        location = /v1/chat/completions {
            default_type text/event-stream;
            return 200 '$MOCK_SSE';
        }
        location / { return 404; }
    }
    # The mock's connection counters (plain HTTP): its accepts during a run are the upstream
    # connections the target opened (the pool's churn).
    server {
        listen 127.0.0.1:$MOCK_STATUS_PORT;
        location = /status { stub_status; }
    }
}
EOF
} >"$TMP/mock/nginx.conf"

{
    nginx_head "$TMP/proxy" "$WORKERS"
    cat <<EOF
    upstream mock {
        server 127.0.0.1:$MOCK_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / {
            proxy_pass $UP_SCHEME://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            $PROXY_SSL
        }
    }
    upstream mocksse {
        server 127.0.0.1:$MOCK_SSE_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PROXY_SSE_PORT;
        location / {
            proxy_pass $UP_SCHEME://mocksse;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;       # as one configures nginx for SSE
            $PROXY_SSL
        }
    }
}
EOF
} >"$TMP/proxy/nginx.conf"

MICHI_CA=""
[[ "$TLS" != 1 ]] || MICHI_CA=", ca_file: \"$TMP/tls/ca.pem\""
cat >"$TMP/michi/michi.yaml" <<EOF
server:
  listen: "127.0.0.1:$MICHI_PORT"
  threads: $WORKERS
log:
  level: warn            # access-log lines are info-level: not written during the benchmark
store:
  sqlite: $TMP/michi/bench.db
providers:
  mock: { type: openai, base_url: "$UP_SCHEME://$UP_HOST:$MOCK_PORT/v1"$MICHI_CA }
  mocksse: { type: openai, base_url: "$UP_SCHEME://$UP_HOST:$MOCK_SSE_PORT/v1"$MICHI_CA }
models:
  mock/gpt-bench: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  mocksse/gpt-bench: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
keys:
  # Limits far above what the run can reach: the guards run on every request, never refuse.
  - id: bench
    class: application
    secret_sha256: "$KEY_SHA"
    rpm: 1000000000
    tpm: 1000000000000
EOF

"$NGINX" -t -q -p "$TMP/mock" -c "$TMP/mock/nginx.conf" -e "$TMP/mock/error.log" \
    || die "mock nginx config rejected"
"$NGINX" -t -q -p "$TMP/proxy" -c "$TMP/proxy/nginx.conf" -e "$TMP/proxy/error.log" \
    || die "proxy nginx config rejected"

"$NGINX" -p "$TMP/mock" -c "$TMP/mock/nginx.conf" -e "$TMP/mock/error.log" \
    >"$TMP/mock/out.log" 2>&1 &
MOCK_PID=$!; PIDS+=("$MOCK_PID")
"$NGINX" -p "$TMP/proxy" -c "$TMP/proxy/nginx.conf" -e "$TMP/proxy/error.log" \
    >"$TMP/proxy/out.log" 2>&1 &
PROXY_PID=$!; PIDS+=("$PROXY_PID")
"$MICHI_BIN" --config "$TMP/michi/michi.yaml" >"$TMP/michi/out.log" 2>&1 &
MICHI_PID=$!; PIDS+=("$MICHI_PID")

declare -A URL=(
    [direct]="$UP_SCHEME://127.0.0.1:$MOCK_PORT/v1/chat/completions"
    [nginx-proxy]="http://127.0.0.1:$PROXY_PORT/v1/chat/completions"
    [michi]="http://127.0.0.1:$MICHI_PORT/v1/chat/completions"
)
declare -A SSE_URL=(
    [direct]="$UP_SCHEME://127.0.0.1:$MOCK_SSE_PORT/v1/chat/completions"
    [nginx-proxy]="http://127.0.0.1:$PROXY_SSE_PORT/v1/chat/completions"
    [michi]="http://127.0.0.1:$MICHI_PORT/v1/chat/completions"
)
declare -A PID_OF=([direct]=$MOCK_PID [nginx-proxy]=$PROXY_PID [michi]=$MICHI_PID)
declare -A LOG_OF=([direct]="$TMP/mock/error.log" [nginx-proxy]="$TMP/proxy/error.log" [michi]="$TMP/michi/out.log")
TARGETS=(direct nginx-proxy michi)
if [[ "$FLOOR" == 1 ]]; then
    "$FLOOR_BIN" "$FLOOR_PORT" "$MOCK_PORT" "$WORKERS" >"$TMP/floor.log" 2>&1 &
    PID_OF[beast-floor]=$!; PIDS+=("$!")
    URL[beast-floor]="http://127.0.0.1:$FLOOR_PORT/v1/chat/completions"
    LOG_OF[beast-floor]="$TMP/floor.log"
    TARGETS+=(beast-floor)
fi
# Another Michi target: NAME BINARY PORT [STORE_LINES [SED]] — Michi's config on its own port
# and database (STORE_LINES, when given, replace the store's sqlite line; SED edits it more).
start_michi_target() {
    local name=$1 bin=$2 port=$3 store=${4:-"  sqlite: $TMP/$1/bench.db"} more=${5:-}
    mkdir -p "$TMP/$name"
    sed -e "s/127.0.0.1:$MICHI_PORT/127.0.0.1:$port/" -e "s|^  sqlite: .*|$store|" -e "$more" \
        "$TMP/michi/michi.yaml" >"$TMP/$name/michi.yaml"
    "$bin" --config "$TMP/$name/michi.yaml" >"$TMP/$name/out.log" 2>&1 &
    PID_OF[$name]=$!; PIDS+=("$!")
    URL[$name]="http://127.0.0.1:$port/v1/chat/completions"
    SSE_URL[$name]=${URL[$name]}
    LOG_OF[$name]="$TMP/$name/out.log"
    TARGETS+=("$name")
}
if [[ "$REDIS" == 1 ]]; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --logfile "$TMP/redis.log" &
    REDIS_PID=$!; PIDS+=("$REDIS_PID")
    start_michi_target michi-redis "$MICHI_BIN" "$MICHI_REDIS_PORT" \
        "  sqlite: $TMP/michi-redis/bench.db\n  redis: \"redis://127.0.0.1:$REDIS_PORT\""
fi
[[ -z "$BASE_BIN" ]] || start_michi_target michi-base "$BASE_BIN" "$MICHI_BASE_PORT"
if [[ "$CACHE" == 1 ]]; then
    start_michi_target michi-cache "$MICHI_BIN" "$MICHI_CACHE_PORT" "" \
        's|^    tpm: 1000000000000$|&\n    cache: { ttl: 1h }|'
fi

for t in "${TARGETS[@]}"; do wait_ready "$t" "${URL[$t]}" "${PID_OF[$t]}" "${LOG_OF[$t]}" "$CHAT_BODY"; done

# The processes of each target: Michi's one (and the floor's); nginx's master and its workers
# (looked up once, now that they are up).
declare -A PROCS_OF
for t in "${TARGETS[@]}"; do
    PROCS_OF[$t]="${PID_OF[$t]}"
    if [[ $t == direct || $t == nginx-proxy ]]; then
        PROCS_OF[$t]+=" $(ps -o pid= --ppid "${PID_OF[$t]}" | tr '\n' ' ')"
    fi
    [[ $t == michi-redis ]] && PROCS_OF[$t]+=" $REDIS_PID"
done
# shellcheck disable=SC2086  # the pid lists are meant to split
rss_of() { rss_kb ${PROCS_OF[$1]}; }  # target -> REPLY (kB)
# shellcheck disable=SC2086
cpu_of() { cpu_ticks ${PROCS_OF[$1]}; }  # target -> REPLY (clock ticks used so far)
# (Michi's "listening on" line is info-level, so not printed at log level warn: the
# readiness check above is the POST answering 200.)

# The three answer the same body; Michi must really have gone through the mock.
MICHI_HDRS=$(curl -s "${CURL_TLS[@]}" -D - -o "$TMP/michi/probe.json" -X POST -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $MICHI_BENCH_KEY" \
    --data "$CHAT_BODY" "${URL[michi]}")
grep -q '"chat.completion"' "$TMP/michi/probe.json" || die "Michi answer is not the mock's: $(cat "$TMP/michi/probe.json")"
grep -qi '^x-michi-model: mock/gpt-bench' <<<"$MICHI_HDRS" \
    || echo "bench: note: Michi answered without 'x-michi-model: mock/gpt-bench'" >&2
if [[ "$STREAM" == 1 ]]; then
    for t in "${TARGETS[@]}"; do
        [[ -n "${SSE_URL[$t]:-}" ]] || continue  # beast-floor has no streaming upstream
        wait_ready "$t (stream)" "${SSE_URL[$t]}" "${PID_OF[$t]}" "${LOG_OF[$t]}" "$STREAM_BODY"
        curl -s "${CURL_TLS[@]}" -X POST -H 'Content-Type: application/json' \
            -H "Authorization: Bearer $MICHI_BENCH_KEY" --data "$STREAM_BODY" "${SSE_URL[$t]}" >"$TMP/probe.sse"
        { grep -q '^data: \[DONE\]' "$TMP/probe.sse" && grep -q '"usage"' "$TMP/probe.sse"; } \
            || die "$t streaming answer lacks the usage chunk or [DONE]: $(head -c 600 "$TMP/probe.sse")"
    done
fi

sleep 1
declare -A RSS_IDLE
for t in "${TARGETS[@]}"; do rss_of "$t"; RSS_IDLE[$t]=$REPLY; done

# ---------------------------------------------------------------- load

RESULTS="$TMP/results.tsv"
: >"$RESULTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# The mock's accepted connections so far (its stub_status; this request counts itself).
mock_accepts() {
    REPLY=$(curl -s --max-time 2 "http://127.0.0.1:$MOCK_STATUS_PORT/status" |
        awk 'NR == 3 { print $1 }')
    [[ -n "$REPLY" ]] || REPLY=0
}

# Peak RSS of a target while wrk runs, sampled every 0.25 s into $1.
sample_rss() {
    local file=$1 target=$2 peak=0
    while :; do
        rss_of "$target"
        ((REPLY > peak)) && peak=$REPLY && echo "$peak" >"$file"
        sleep 0.25
    done
}

# run_wrk PHASE TARGET ROUND  (appends a line to $RESULTS)
run_wrk() {
    local phase=$1 t=$2 r=$3 c th d
    local lua=$LUA url=${URL[$2]}
    if [[ $phase == latency || $phase == stream-latency ]]; then
        c=$LAT_CONNECTIONS; th=1; d=$LAT_DURATION
    else c=$CONNECTIONS; th=$THREADS; d=$DURATION; fi
    [[ $phase == stream* ]] && lua=$STREAM_LUA && url=${SSE_URL[$t]}
    ((th > c)) && th=$c
    if [[ $phase != *latency && "$WARMUP" != 0 && "$WARMUP" != 0s ]]; then
        "$WRK" -t "$th" -c "$c" -d "$WARMUP" -s "$lua" "$url" >/dev/null
    fi
    local peak_file="$TMP/peak.$t"
    echo 0 >"$peak_file"
    sample_rss "$peak_file" "$t" &
    SAMPLER_PID=$!
    local out cpu0 cpu1 acc0 acc1
    mock_accepts; acc0=$REPLY
    cpu_of "$t"; cpu0=$REPLY
    out=$("$WRK" -t "$th" -c "$c" -d "$d" --timeout 5s -s "$lua" "$url")
    cpu_of "$t"; cpu1=$REPLY
    mock_accepts; acc1=$REPLY
    kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
    local after; rss_of "$t"; after=$REPLY
    local line; line=$(grep '^BENCH ' <<<"$out") || { echo "$out" >&2; die "wrk gave no result for $t"; }
    kill -0 "${PID_OF[$t]}" 2>/dev/null || { cat "${LOG_OF[$t]}" >&2; die "$t died under load"; }
    # (upconn: the mock's accepts during the run, less the second reading's own connection:
    # for a proxy, the upstream connections it opened; for `direct`, wrk's.)
    printf '%s\t%s\t%s\t%s\tpeak_kb=%s\tafter_kb=%s\tcpu_ticks=%s\tupconn=%s\n' "$phase" "$t" "$r" \
        "${line#BENCH }" "$(cat "$peak_file")" "$after" "$((cpu1 - cpu0))" "$((acc1 - acc0 - 1))" \
        >>"$RESULTS"
    printf '  %-10s round %d  %-11s %s\n' "$phase" "$r" "$t" "${line#BENCH }"
}

echo "bench: Michi $("$MICHI_BIN" --version 2>/dev/null | head -1) ($MICHI_BIN)"
[[ -z "$BASE_BIN" ]] || echo "bench: michi-base: $BASE_BIN"
echo "bench: ${ROUNDS} rounds; throughput: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP);" \
     "latency: wrk -t1 -c$LAT_CONNECTIONS -d$LAT_DURATION; Michi threads = nginx-proxy workers = $WORKERS"
for r in $(seq 1 "$ROUNDS"); do
    # Rotate the order each round so no target always runs first or last.
    order=()
    n=${#TARGETS[@]}
    for ((i = 0; i < n; i++)); do order+=("${TARGETS[$(((i + r - 1) % n))]}"); done
    for t in "${order[@]}"; do run_wrk throughput "$t" "$r"; done
    if [[ "$LAT_DURATION" != 0 && "$LAT_DURATION" != 0s ]]; then
        for t in "${order[@]}"; do run_wrk latency "$t" "$r"; done
    fi
    if [[ "$STREAM" == 1 ]]; then
        for t in "${order[@]}"; do [[ -z "${SSE_URL[$t]:-}" ]] || run_wrk stream "$t" "$r"; done
        if [[ "$LAT_DURATION" != 0 && "$LAT_DURATION" != 0s ]]; then
            for t in "${order[@]}"; do
                [[ -z "${SSE_URL[$t]:-}" ]] || run_wrk stream-latency "$t" "$r"
            done
        fi
    fi
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report

mkdir -p "$(dirname "$OUT")"
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
case "$MICHI_BIN" in
    */build/release/*) BUILD_TYPE=release ;;
    */build/dev/*) BUILD_TYPE="dev (-O0 debug; not representative)" ;;
    *) BUILD_TYPE="unknown ($MICHI_BIN)" ;;
esac

CLK_TCK="$(getconf CLK_TCK)"
MICHI_VERSION="$("$MICHI_BIN" --version 2>/dev/null | head -1 || true)"
NGINX_VERSION="$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
WRK_VERSION="$("$WRK" -v 2>&1 | head -1 | awk '{print $1, $2}' || true)"  # wrk -v exits 1
export CLK_TCK MICHI_VERSION NGINX_VERSION WRK_VERSION
export RESULTS OUT CPU_MODEL BUILD_TYPE LOAD_START LOAD_END DURATION CONNECTIONS THREADS \
    LAT_DURATION LAT_CONNECTIONS WARMUP ROUNDS WORKERS MOCK_WORKERS
export RSS_IDLE_DIRECT=${RSS_IDLE[direct]} RSS_IDLE_PROXY=${RSS_IDLE[nginx-proxy]} RSS_IDLE_MICHI=${RSS_IDLE[michi]}
export RSS_IDLE_FLOOR=${RSS_IDLE[beast-floor]:-0} RSS_IDLE_REDIS=${RSS_IDLE[michi-redis]:-0}
export RSS_IDLE_BASE=${RSS_IDLE[michi-base]:-0} BASE_BIN TLS
export RSS_IDLE_CACHE=${RSS_IDLE[michi-cache]:-0}

python3 - <<'PY'
import os, statistics, datetime

E = os.environ
rows = []
for line in open(E["RESULTS"]):
    phase, target, rnd, *kv = line.rstrip("\n").split("\t")
    fields = {}
    for part in kv:
        for item in part.split():
            k, v = item.split("=")
            fields[k] = float(v)
    fields.update(phase=phase, target=target, round=int(rnd))
    rows.append(fields)

targets = ["direct", "nginx-proxy", "michi", "beast-floor", "michi-redis", "michi-base",
           "michi-cache"]
idle = {"direct": int(E["RSS_IDLE_DIRECT"]), "nginx-proxy": int(E["RSS_IDLE_PROXY"]),
        "michi": int(E["RSS_IDLE_MICHI"]), "beast-floor": int(E["RSS_IDLE_FLOOR"]),
        "michi-redis": int(E["RSS_IDLE_REDIS"]), "michi-base": int(E["RSS_IDLE_BASE"]),
        "michi-cache": int(E["RSS_IDLE_CACHE"])}
med = statistics.median

def sel(phase, target):
    return [r for r in rows if r["phase"] == phase and r["target"] == target]

def summary(phase):
    out = {}
    for t in targets:
        rs = sel(phase, t)
        if not rs:
            continue
        out[t] = dict(
            rps=med(r["rps"] for r in rs),
            p50=med(r["p50_us"] for r in rs) / 1000,
            p99=med(r["p99_us"] for r in rs) / 1000,
            errors=sum(r["non2xx"] + r["connect_err"] + r["read_err"] + r["write_err"] + r["timeouts"] for r in rs),
            peak=max(r["peak_kb"] for r in rs) / 1024,
            after=rs[-1]["after_kb"] / 1024,
            # CPU time the target's processes used per request (µs): robust to noise from
            # other processes, unlike req/s.
            cpu_us=med(cpu_us(r) for r in rs),
            upconn=med(r.get("upconn", 0) for r in rs),
        )
    return out

def cpu_us(r):
    return r["cpu_ticks"] / int(E["CLK_TCK"]) * 1e6 / max(r["requests"], 1)

def pairs(phase, a, b):
    """The rounds' (a, b) runs of a phase, round by round."""
    out = []
    for rnd in sorted({r["round"] for r in rows}):
        m = [r for r in rows if r["phase"] == phase and r["round"] == rnd and r["target"] == a]
        n = [r for r in rows if r["phase"] == phase and r["round"] == rnd and r["target"] == b]
        if m and n and n[0]["rps"] > 0:
            out.append((m[0], n[0]))
    return out

def per_round_ratio(phase, a="michi", b="nginx-proxy"):
    return [m["rps"] / n["rps"] for m, n in pairs(phase, a, b)]

def mean_se(xs):
    """Mean, and its standard error as text ("standard error 0.012; ", empty for one value)."""
    m = statistics.mean(xs)
    se = f"standard error {statistics.stdev(xs) / len(xs) ** 0.5:.3f}; " if len(xs) > 1 else ""
    return m, se

lines = []
def emit(s=""):
    lines.append(s)

def table(phase, title):
    s = summary(phase)
    if not s:
        return s
    emit(f"### {title}")
    emit()
    emit("| target | req/s | p50 ms | p99 ms | CPU µs/req | RSS idle MB | RSS peak under load MB | errors | upstream conn. opened |")
    emit("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in targets:
        if t in s:
            v = s[t]
            opened = "(wrk's)" if t == "direct" else f"{v['upconn']:.0f}"
            emit(f"| {t} | {v['rps']:.0f} | {v['p50']:.3f} | {v['p99']:.3f} | {v['cpu_us']:.1f} | "
                 f"{idle[t]/1024:.1f} | {v['peak']:.1f} | {v['errors']:.0f} | {opened} |")
    emit()
    return s

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
emit(f"# Michi benchmark — {now}")
emit()
emit(f"- machine: {os.cpu_count()} CPUs (nproc), {E['CPU_MODEL']}; load average before/after: "
     f"{E['LOAD_START']} / {E['LOAD_END']}")
emit(f"- Michi: {E['MICHI_VERSION'] or '?'}, build: {E['BUILD_TYPE']}, server.threads {E['WORKERS']}, log level warn")
emit(f"- nginx {E['NGINX_VERSION']} (mock: {E['MOCK_WORKERS']} worker; proxy: {E['WORKERS']} workers, "
     f"upstream keepalive 64), {E['WRK_VERSION']}")
emit(f"- {E['ROUNDS']} rounds, target order rotated each round; figures are medians over rounds "
     f"(RSS peak: max over rounds)")
emit(f"- throughput phase: wrk -t{E['THREADS']} -c{E['CONNECTIONS']} -d{E['DURATION']} after a {E['WARMUP']} warm-up; "
     f"latency phase: wrk -t1 -c{E['LAT_CONNECTIONS']} -d{E['LAT_DURATION']}")
emit(f"- upstream: {'HTTPS (TLS=1: a CA and an RSA-2048 certificate made at run time; nginx-proxy with proxy_ssl_verify and proxy_ssl_session_reuse, Michi with the provider ca_file)' if E['TLS'] == '1' else 'plain HTTP'}")
emit(f"- request body: {os.path.basename(E['MICHI_BENCH_BODY_FILE']) if E['MICHI_BENCH_BODY_FILE'] else 'one short message'}")
emit()
tp = table("throughput", f"Throughput phase ({E['CONNECTIONS']} connections)")
lt = table("latency", f"Latency phase ({E['LAT_CONNECTIONS']} connection(s), closed loop)")
st = table("stream", f"Streaming phase (SSE, {E['CONNECTIONS']} connections)")
sl = table("stream-latency", f"Streaming latency phase (SSE, {E['LAT_CONNECTIONS']} connection(s), closed loop)")

emit("### Michi vs nginx-proxy")
emit()
verdict = lambda ok: "met" if ok else "NOT met"
# The p99 targets: within 0.2 ms of nginx-proxy's with a plain upstream; with a TLS one within
# 0.5 ms at the throughput load and 0.1 ms at one connection, streams as the throughput phase.
tls = E["TLS"] == "1"
P99_LOAD, P99_ONE = (0.5, 0.1) if tls else (0.2, 0.2)
if "michi" in tp and "nginx-proxy" in tp:
    ratio = tp["michi"]["rps"] / tp["nginx-proxy"]["rps"]
    rr = per_round_ratio("throughput")
    pm, pse = mean_se(rr)
    emit(f"- throughput ratio Michi/nginx-proxy: **{ratio:.2f}x** "
         f"(per round: {', '.join(f'{x:.2f}' for x in rr)}; mean of the rounds {pm:.3f}, "
         f"{pse.rstrip('; ') or 'one round'}) "
         f"— target >= 0.90x: {verdict(ratio >= 0.9)}")
    d99 = tp["michi"]["p99"] - tp["nginx-proxy"]["p99"]
    d50 = tp["michi"]["p50"] - tp["nginx-proxy"]["p50"]
    emit(f"- CPU per request, Michi/nginx-proxy: **{tp['michi']['cpu_us'] / max(tp['nginx-proxy']['cpu_us'], 1e-9):.2f}x** "
         f"({tp['michi']['cpu_us']:.1f} vs {tp['nginx-proxy']['cpu_us']:.1f} µs; the mock's own: {tp.get('direct', {}).get('cpu_us', 0):.1f} µs)")
    emit(f"- throughput phase: p50 Michi - nginx-proxy = {d50:+.3f} ms, p99 = **{d99:+.3f} ms** "
         f"— target p99 within {P99_LOAD} ms: {verdict(d99 <= P99_LOAD)}")
if "michi" in lt and "nginx-proxy" in lt:
    d99 = lt["michi"]["p99"] - lt["nginx-proxy"]["p99"]
    d50 = lt["michi"]["p50"] - lt["nginx-proxy"]["p50"]
    emit(f"- latency phase: p50 Michi - nginx-proxy = {d50:+.3f} ms, p99 = **{d99:+.3f} ms** "
         f"— target p99 within {P99_ONE} ms: {verdict(d99 <= P99_ONE)}")
if "michi" in st and "nginx-proxy" in st:
    ratio = st["michi"]["rps"] / st["nginx-proxy"]["rps"]
    rr = per_round_ratio("stream")
    d99 = st["michi"]["p99"] - st["nginx-proxy"]["p99"]
    emit(f"- streaming: ratio Michi/nginx-proxy **{ratio:.2f}x** (per round: {', '.join(f'{x:.2f}' for x in rr)}), "
         f"p99 Michi - nginx-proxy = {d99:+.3f} ms, CPU per request {st['michi']['cpu_us']:.1f} vs {st['nginx-proxy']['cpu_us']:.1f} µs "
         f"({st['michi']['cpu_us'] / max(st['nginx-proxy']['cpu_us'], 1e-9):.2f}x)"
         + (f" — targets (TLS) >= 0.90x: {verdict(ratio >= 0.9)}, p99 within {P99_LOAD} ms: "
            f"{verdict(d99 <= P99_LOAD)}" if tls else ""))
if "michi" in sl and "nginx-proxy" in sl:
    d99 = sl["michi"]["p99"] - sl["nginx-proxy"]["p99"]
    d50 = sl["michi"]["p50"] - sl["nginx-proxy"]["p50"]
    emit(f"- streaming latency phase: p50 Michi - nginx-proxy = {d50:+.3f} ms, p99 = **{d99:+.3f} ms** "
         f"— target p99 within {P99_ONE} ms: {verdict(d99 <= P99_ONE)}")
if "beast-floor" in tp and "nginx-proxy" in tp:
    fl, ng, mc = tp["beast-floor"], tp["nginx-proxy"], tp["michi"]
    rr = per_round_ratio("throughput", "beast-floor")
    emit(f"- the stack's floor (beast-floor, a bare Asio/Beast proxy): beast-floor/nginx-proxy "
         f"**{fl['rps'] / ng['rps']:.2f}x** (per round: {', '.join(f'{x:.2f}' for x in rr)}), CPU per "
         f"request {fl['cpu_us'] / max(ng['cpu_us'], 1e-9):.2f}x; Michi/beast-floor "
         f"**{mc['rps'] / fl['rps']:.2f}x**, CPU per request {mc['cpu_us'] / max(fl['cpu_us'], 1e-9):.2f}x")
for phase, s in (("throughput", tp), ("latency", lt), ("stream", st), ("stream-latency", sl)):
    if "michi-redis" in s and "michi" in s:
        rd, mc = s["michi-redis"], s["michi"]
        rr = per_round_ratio(phase, "michi-redis", "michi")
        emit(f"- the ledger in Redis, {phase} phase (michi-redis: store.redis; CPU includes "
             f"redis-server): michi-redis/michi **{rd['rps'] / mc['rps']:.2f}x** (per round: "
             f"{', '.join(f'{x:.2f}' for x in rr)}), p99 {rd['p99'] - mc['p99']:+.3f} ms, CPU per "
             f"request {rd['cpu_us'] / max(mc['cpu_us'], 1e-9):.2f}x")
for phase in ("throughput", "latency"):
    pp = pairs(phase, "michi-cache", "michi")
    if not pp:
        continue
    rr = [m["rps"] / n["rps"] for m, n in pp]
    qm, qse = mean_se(rr)
    cm, cse = mean_se([cpu_us(m) / max(cpu_us(n), 1e-9) for m, n in pp])
    emit(f"- response-cache hits against proxied requests, {phase} phase, means of the rounds: "
         f"michi-cache/michi req/s **{qm:.2f}x** ({qse}per round: "
         f"{', '.join(f'{x:.2f}' for x in rr)}) — target >= 2x: "
         f"{verdict(qm >= 2)}; CPU per request {cm:.2f}x ({cse.rstrip('; ') or 'one round'})")
for phase in ("throughput", "latency", "stream", "stream-latency"):
    pp = pairs(phase, "michi", "michi-base")
    if not pp:
        continue
    rr = [m["rps"] / n["rps"] for m, n in pp]
    cm, cse = mean_se([cpu_us(m) / max(cpu_us(n), 1e-9) for m, n in pp])
    qm, qse = mean_se(rr)
    dm, dse = mean_se([(m["p99_us"] - n["p99_us"]) / 1000 for m, n in pp])
    emit(f"- this build against michi-base ({E['BASE_BIN']}), {phase} phase, means of the "
         f"rounds: req/s ratio **{qm:.3f}** ({qse}per round: {', '.join(f'{x:.2f}' for x in rr)}), "
         f"CPU per request ratio {cm:.3f} ({cse.rstrip('; ') or 'one round'}), "
         f"p99 difference {dm:+.3f} ms ({dse.rstrip('; ') or 'one round'})")
mi = idle["michi"] / 1024
emit(f"- Michi RSS: idle **{mi:.1f} MB** — target <= 20 MB: {verdict(mi <= 20)}; "
     f"peak under load {max(s.get('michi', {}).get('peak', 0) for s in (tp, lt, st, sl)):.1f} MB; "
     f"nginx-proxy (master + workers): idle {idle['nginx-proxy']/1024:.1f} MB")
errs = sum(s[t]["errors"] for s in (tp, lt, st, sl) for t in s)
if errs:
    emit(f"- WARNING: {errs:.0f} failed or non-2xx responses during the run (see the errors column)")

def seconds(d):
    unit = {"s": 1, "m": 60, "h": 3600}.get(d[-1:], None)
    return float(d[:-1]) * unit if unit else float(d)

# A run that took much longer than asked (wrk's own clock) means the machine stalled during it:
# its req/s is not a figure to compare.
asked = {"throughput": seconds(E["DURATION"]), "stream": seconds(E["DURATION"]),
         "latency": seconds(E["LAT_DURATION"]) if E["LAT_DURATION"] not in ("0", "0s") else 0}
asked["stream-latency"] = asked["latency"]
for r in rows:
    took = r["requests"] / r["rps"] if r["rps"] > 0 else 0
    if asked.get(r["phase"]) and took > 1.5 * asked[r["phase"]]:
        emit(f"- WARNING: {r['phase']} round {r['round']}, {r['target']}: wrk ran {took:.1f} s for a "
             f"{asked[r['phase']]:g} s run (the machine stalled); that round's req/s is not comparable")
emit()
emit(f"Per run (phase, target, round, wrk figures in µs, RSS in kB, CPU in ticks of 1/{E['CLK_TCK']} s):")
emit()
emit("```")
for line in open(E["RESULTS"]):
    emit(line.rstrip("\n").replace("\t", "  "))
emit("```")

text = "\n".join(lines) + "\n"
open(E["OUT"], "w").write(text)
print()
print(text, end="")
print(f"(written to {E['OUT']})")
PY

# The shared ledger's Redis side, over the whole run (warm-ups included): redis-server's own CPU
# per request Michi served through it, and its commands as `INFO commandstats` counts them
# (script calls per request: how well admissions and settlements are batched).
if [[ "$REDIS" == 1 ]]; then
    served=$(curl -s "http://127.0.0.1:$MICHI_REDIS_PORT/metrics" |
        awk '/^michi_requests_total/ { n += $NF } END { printf "%d", n }')
    cpu_ticks "$REDIS_PID"; redis_ticks=$REPLY
    stats=$(redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' | grep -E '^cmdstat_(evalsha|eval|hset|hgetall|get|smembers):')
    {
        echo
        echo "Redis (the michi-redis target's, whole run): $served requests served by michi-redis;"
        awk -v t="$redis_ticks" -v n="$served" -v hz="$CLK_TCK" 'BEGIN {
            printf "redis-server CPU %.1f µs per request (%d ticks)\n", n ? t * 1e6 / hz / n : 0, t }'
        echo "$stats" | awk -F'[:,=]' -v n="$served" '{
            printf "%s: %d calls (%.3f per request), %.2f µs per call, %.2f µs per request\n",
                $1, $3, n ? $3 / n : 0, $7, n ? $5 / n : 0 }'
    } | tee -a "$OUT"
fi
