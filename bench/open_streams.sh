#!/usr/bin/env bash
# Memory per open stream: Michi and an nginx reverse proxy (proxy_buffering off, as for SSE) in
# front of a slow SSE upstream (bench/open_streams.py) that keeps every stream open, one event
# every 2 s. Opens STEPS streams through each proxy in turn and prints the proxy's resident
# memory at each step and per stream (the growth over its idle size, divided by the streams).
#
# Knobs (environment):
#   MICHI_BIN   michi-gateway binary (default: build/release/michi-gateway)
#   STEPS       stream counts, comma separated (default 1000,5000; capped by `ulimit -n`)
#   WORKERS     Michi server.threads = nginx worker_processes (default: nproc)
#   BODY_FILE   a chat request body whose messages each stream sends (default: one "hi"), e.g.
#               bench/bodies/conversation-11k.json
#   NGINX       nginx binary (default: from PATH)
#   PROCESSES   Michi processes sharing the port (SO_REUSEPORT, as replicas do: one config, one
#               SQLite file), each with WORKERS/PROCESSES threads (default 1). nginx's workers
#               are processes, each under its own descriptor limit; PROCESSES=2 lets Michi hold
#               10,000 streams where the hard limit is 20,000 (about 5,000 streams a process).
#
# Descriptors: each stream takes two in the proxy, one in the client and one in the upstream
# (all under this shell's limit), so STEPS up to N need `ulimit -n` >= 2N + 100: 10,000
# streams need 20,100. The script raises the soft limit to the hard one; where the hard limit
# is lower, raise it first, as root (CAP_SYS_RESOURCE), e.g.
#   prlimit --pid $$ --nofile=65536:65536        # this shell, then run the script from it
#   sudo bash -c 'ulimit -Hn 65536 && ulimit -n 65536 && STEPS=1000,5000,10000 bench/open_streams.sh'
# or where the limit is set for you: `docker run --ulimit nofile=65536:65536 ...`, systemd
# `LimitNOFILE=65536`, /etc/security/limits.conf `nofile`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
MICHI_BIN="${MICHI_BIN:-$ROOT/build/release/michi-gateway}"
STEPS="${STEPS:-1000,5000}"
if [[ -n "${BODY_FILE:-}" ]]; then export BODY_FILE="$(readlink -f "$BODY_FILE")"; fi
WORKERS="${WORKERS:-$(nproc)}"
PROCESSES="${PROCESSES:-1}"
NGINX="${NGINX:-nginx}"

die() { echo "open_streams: $*" >&2; exit 1; }
[[ -x "$MICHI_BIN" ]] || die "no michi-gateway at $MICHI_BIN (cmake --build --preset release)"
command -v "$NGINX" >/dev/null || die "nginx not found"
command -v python3 >/dev/null || die "python3 not found"

# Each stream holds a descriptor in the client, two in the proxy and one in the upstream.
# With PROCESSES, the kernel spreads the streams over the processes (by a hash of each
# connection: some 2% apart at 5,000 each); a process needs room for its share and a margin.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
most="${STEPS##*,}"
need=$(( most * 2 / PROCESSES * 105 / 100 + 100 ))
(( need <= $(ulimit -n) )) ||
    die "STEPS up to $most needs ulimit -n >= $need (hard limit $(ulimit -Hn): see this script's header)"

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
listeners() { # port -> the count of TCP sockets listening on it (/proc/net/tcp: state 0A)
    awk -v p="$(printf ':%04X' "$1")" '$2 ~ p"$" && $4 == "0A"' /proc/net/tcp | wc -l
}
wait_port() { # port
    for _ in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null &&
            return 0
        sleep 0.1
    done
    die "nothing listens on port $1"
}

python3 "$HERE/open_streams.py" upstream > "$TMP/upstream.port" &
PIDS+=($!)
for _ in $(seq 1 100); do [[ -s "$TMP/upstream.port" ]] && break; sleep 0.1; done
UP_PORT="$(head -1 "$TMP/upstream.port")"

# Michi
KEYGEN="$("$MICHI_BIN" keygen --class application)"
export MICHI_BENCH_KEY="$(awk '$1=="secret:"{print $2}' <<<"$KEYGEN")"
KEY_SHA="$(awk '$1=="secret_sha256:"{print $2}' <<<"$KEYGEN")"
MICHI_PORT="$(free_port)"
MICHI_THREADS=$(( WORKERS / PROCESSES > 0 ? WORKERS / PROCESSES : 1 ))
cat > "$TMP/michi.yaml" <<EOF
server: { listen: "127.0.0.1:$MICHI_PORT", threads: $MICHI_THREADS, idle_timeout: 600s }
log: { level: warn }
store: { sqlite: $TMP/michi.db }
providers:
  slow: { type: openai, base_url: "http://127.0.0.1:$UP_PORT/v1", max_connections: 100000,
          timeout: 600s }
models:
  slow/m: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
keys:
  - { id: bench, class: application, secret_sha256: "$KEY_SHA", rpm: 1000000000,
      tpm: 1000000000000 }
EOF
MICHI_PIDS=""
for i in $(seq 1 "$PROCESSES"); do
    "$MICHI_BIN" --config "$TMP/michi.yaml" > "$TMP/michi-$i.log" 2>&1 &
    PIDS+=($!)
    MICHI_PIDS="$MICHI_PIDS${MICHI_PIDS:+,}$!"
    # Its own listeners up (the port may already answer through the one before): each
    # worker listens on the port, so it has PROCESSES x threads listening sockets in the end.
    for _ in $(seq 1 100); do
        (( $(listeners "$MICHI_PORT") >= i * MICHI_THREADS )) && break
        sleep 0.1
    done
done

# nginx reverse proxy, unbuffered as for SSE, pooled keep-alive upstream connections
NGINX_PORT="$(free_port)"
mkdir -p "$TMP/nginx/tmp"
cat > "$TMP/nginx/nginx.conf" <<EOF
worker_processes $WORKERS; worker_rlimit_nofile $(( most * 3 + 100 ));
daemon off; pid $TMP/nginx/nginx.pid; error_log $TMP/nginx/error.log warn;
events { worker_connections $(( most * 3 + 100 )); }
http {
  access_log off; client_body_buffer_size 1m;
  client_body_temp_path $TMP/nginx/tmp/b; proxy_temp_path $TMP/nginx/tmp/p;
  fastcgi_temp_path $TMP/nginx/tmp/f; uwsgi_temp_path $TMP/nginx/tmp/u;
  scgi_temp_path $TMP/nginx/tmp/s;
  upstream slow { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=16384;
    location / { proxy_pass http://slow; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_buffering off; proxy_read_timeout 600s; }
  }
}
EOF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

wait_port "$MICHI_PORT"
wait_port "$NGINX_PORT"
sleep 0.3 # nginx's workers start after its listener
NGINX_PIDS="$(echo "$NGINX_PID" $(ps -o pid= --ppid "$NGINX_PID") | tr -s ' ' ',')"

declare -A KB_PER_STREAM
for target in michi nginx-proxy; do
    port=$NGINX_PORT pids=$NGINX_PIDS
    if [[ $target == michi ]]; then port=$MICHI_PORT pids=$MICHI_PIDS; fi
    echo "== $target"
    out="$(python3 "$HERE/open_streams.py" client "$port" "$pids" "$STEPS")" ||
        die "$target: the client failed"
    idle="$(awk -F'[= ]' 'NR==1{print $4}' <<<"$out")"
    while read -r line; do
        n="$(awk -F'[= ]' '{print $2}' <<<"$line")"
        kb="$(awk -F'[= ]' '{print $4}' <<<"$line")"
        if (( n > 0 )); then
            per="$(awk -v a="$kb" -v b="$idle" -v n="$n" 'BEGIN{printf "%.1f", (a-b)/n}')"
            printf '%-12s %6d streams: RSS %7.1f MB, %s KB a stream\n' "$target" "$n" \
                "$(awk -v k="$kb" 'BEGIN{print k/1024}')" "$per"
            KB_PER_STREAM[$target]="$per"
        else
            printf '%-12s %6d streams: RSS %7.1f MB (idle)\n' "$target" 0 \
                "$(awk -v k="$kb" 'BEGIN{print k/1024}')"
        fi
    done <<<"$out"
done
awk -v m="${KB_PER_STREAM[michi]}" -v n="${KB_PER_STREAM[nginx-proxy]}" \
    'BEGIN{printf "memory a stream, Michi / nginx-proxy: %.2fx\n", m/n}'
