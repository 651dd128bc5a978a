#!/usr/bin/env bash
# What each client API costs in Michi, against chat passthrough, in one run (one Michi process,
# one nginx mock answering every upstream API with a static body):
#
#   chat             POST /v1/chat/completions to an openai-type provider: passthrough
#   messages         POST /v1/messages to an anthropic-type provider: passthrough
#   raw-N            a chat stream of N text deltas from an openai-type provider: the raw relay
#   translated-N     a chat stream from an anthropic-type provider, its N text_delta events
#                    translated into chat chunks (chat -> Anthropic)
#   messages-raw-N   a /v1/messages stream of N text_delta events from an anthropic-type
#                    provider: the raw relay of Anthropic's events
#
# for N = SMALL and BIG. Each round runs every case once (chat and messages back to back, the
# streams in a rotated order); the report gives
# the per-round ratio messages/chat of req/s and of CPU per request (mean and standard error:
# both run back to back, sharing the machine's state), the CPU per streamed request of each
# case, and the CPU per relayed event: the slope (CPU at BIG - CPU at SMALL) / (BIG - SMALL), the
# cost of one more event with the request's own cost taken out. INSTR=1 runs Michi under
# valgrind's callgrind and counts instructions instead of CPU time: figures that do not move
# with the machine's load (fewer connections and rounds by default: callgrind is slow).
#
#   bench/messages.sh    env: MICHI_BIN (build/release/michi-gateway) DURATION (5s) WARMUP (1s)
#                    CONNECTIONS (64) THREADS (2) ROUNDS (6) WORKERS (nproc) SMALL (4) BIG (64)
#                    STREAMS (1; 0: chat and messages only) INSTR (0) OUT (bench/results/apis.md)
#                    needs nginx, wrk, curl, python3 (INSTR=1: valgrind)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
MICHI_BIN="${MICHI_BIN:-$ROOT/build/release/michi-gateway}"
INSTR="${INSTR:-0}"
if [[ $INSTR == 1 ]]; then
    DURATION="${DURATION:-5s}" WARMUP="${WARMUP:-2s}" CONNECTIONS="${CONNECTIONS:-4}"
    THREADS="${THREADS:-1}" ROUNDS="${ROUNDS:-1}"
fi
DURATION="${DURATION:-5s}"
WARMUP="${WARMUP:-1s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-6}"
STREAMS="${STREAMS:-1}"
WORKERS="${WORKERS:-$(nproc)}"
SMALL="${SMALL:-4}"
BIG="${BIG:-64}"
OUT="${OUT:-$HERE/results/apis.md}"
LUA="$HERE/apis.lua"

die() { echo "bench: $*" >&2; exit 1; }
[[ -x "$MICHI_BIN" ]] || die "no michi-gateway at $MICHI_BIN (build it, or set MICHI_BIN)"
[[ $INSTR != 1 ]] || for tool in valgrind callgrind_control; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
for tool in nginx wrk curl python3; do command -v "$tool" >/dev/null || die "$tool not found"; done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ "$SMALL" =~ ^[0-9]+$ && "$BIG" =~ ^[0-9]+$ && "$BIG" -gt "$SMALL" ]] || die "need SMALL < BIG"

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
# utime + stime (clock ticks, all threads) of a pid, with bash built-ins only (no fork).
cpu_ticks() {
    local line f
    read -r line <"/proc/$1/stat"
    read -ra f <<<"${line##*) }"
    REPLY=$((f[11] + f[12]))
}

KEYGEN="$("$MICHI_BIN" keygen --class application)"
MICHI_BENCH_KEY="$(awk '$1 == "secret:" {print $2}' <<<"$KEYGEN")"
KEY_SHA="$(awk '$1 == "secret_sha256:" {print $2}' <<<"$KEYGEN")"
[[ -n "$MICHI_BENCH_KEY" && -n "$KEY_SHA" ]] || die "keygen output not understood: $KEYGEN"
export MICHI_BENCH_KEY
MOCK_PORT=$(free_port)
MICHI_PORT=$(free_port)

# ---------------------------------------------------------------- the mock's bodies

CHAT_JSON='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}'
MESSAGE_JSON='{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"Hello! How can I help you today?"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":9}}'

# An OpenAI chat stream of $1 text deltas (role chunk, deltas, finish, usage, [DONE]).
openai_sse() {
    local head='"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bench"'
    printf 'data: {%s,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n' "$head"
    for ((i = 0; i < $1; i++)); do
        printf 'data: {%s,"choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}\n\n' "$head"
    done
    printf 'data: {%s,"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n' "$head"
    printf 'data: {%s,"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":%d,"total_tokens":%d}}\n\n' \
        "$head" "$1" "$((9 + $1))"
    printf 'data: [DONE]\n\n'
}
# Anthropic's stream of one text block in $1 text_delta events.
anthropic_sse() {
    printf 'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}\n\n'
    printf 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    for ((i = 0; i < $1; i++)); do
        printf 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"word "}}\n\n'
    done
    printf 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    printf 'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}\n\n' "$1"
    printf 'event: message_stop\ndata: {"type":"message_stop"}\n\n'
}

mkdir -p "$TMP/mock/tmp" "$TMP/michi"
{
    cat <<EOF
worker_processes 1;
daemon off;
pid $TMP/mock/nginx.pid;
error_log $TMP/mock/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/mock/tmp;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_buffer_size 1m;
    server {
        listen 127.0.0.1:$MOCK_PORT;
        location = /v1/chat/completions { default_type application/json; return 200 '$CHAT_JSON'; }
        location = /v1/messages { default_type application/json; return 200 '$MESSAGE_JSON'; }
EOF
    # Streams outgrow a config string: files, served to a POST (405 turned into the file).
    for n in "$SMALL" "$BIG"; do
        mkdir -p "$TMP/mock/files/s$n/v1/chat"
        openai_sse "$n" >"$TMP/mock/files/s$n/v1/chat/completions"
        anthropic_sse "$n" >"$TMP/mock/files/s$n/v1/messages"
        for api in chat/completions messages; do
            echo "        location = /s$n/v1/$api { root $TMP/mock/files; default_type text/event-stream; error_page 405 =200 \$uri; }"
        done
    done
    chmod a+x "$TMP" "$TMP/mock" && chmod -R a+rX "$TMP/mock/files" # (nginx's workers' user)
    echo "        location / { return 404; }"
    echo "    }"
    echo "}"
} >"$TMP/mock/nginx.conf"

cat >"$TMP/michi/michi.yaml" <<EOF
server:
  listen: "127.0.0.1:$MICHI_PORT"
  threads: $WORKERS
log:
  level: warn
store:
  sqlite: $TMP/michi/bench.db
providers:
  mock:   { type: openai,    base_url: "http://127.0.0.1:$MOCK_PORT/v1" }
  claude: { type: anthropic, base_url: "http://127.0.0.1:$MOCK_PORT", api_key: "sk-ant-bench" }
  osmall: { type: openai,    base_url: "http://127.0.0.1:$MOCK_PORT/s$SMALL/v1" }
  obig:   { type: openai,    base_url: "http://127.0.0.1:$MOCK_PORT/s$BIG/v1" }
  asmall: { type: anthropic, base_url: "http://127.0.0.1:$MOCK_PORT/s$SMALL", api_key: "sk-ant-bench" }
  abig:   { type: anthropic, base_url: "http://127.0.0.1:$MOCK_PORT/s$BIG", api_key: "sk-ant-bench" }
models:
  mock/gpt-bench:        { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  claude/claude-bench:   { input_per_mtok: 3, output_per_mtok: 15, cache_read_per_mtok: 0.3 }
  osmall/gpt-bench:      { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  obig/gpt-bench:        { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  asmall/claude-bench:   { input_per_mtok: 3, output_per_mtok: 15 }
  abig/claude-bench:     { input_per_mtok: 3, output_per_mtok: 15 }
keys:
  - id: bench
    class: application
    secret_sha256: "$KEY_SHA"
    rpm: 1000000000
    tpm: 1000000000000
EOF

nginx -t -q -p "$TMP/mock" -c "$TMP/mock/nginx.conf" -e "$TMP/mock/error.log" || die "mock config rejected"
nginx -p "$TMP/mock" -c "$TMP/mock/nginx.conf" -e "$TMP/mock/error.log" >"$TMP/mock/out.log" 2>&1 &
PIDS+=("$!")
UNDER=()
[[ $INSTR != 1 ]] || UNDER=(valgrind --tool=callgrind --callgrind-out-file="$TMP/michi.cg")
"${UNDER[@]}" "$MICHI_BIN" --config "$TMP/michi/michi.yaml" >"$TMP/michi/out.log" 2>&1 &
MICHI_PID=$!; PIDS+=("$MICHI_PID")

# ---------------------------------------------------------------- the cases

USER_TURN='"messages":[{"role":"user","content":"hello"}]'
CHAT_STREAM='"stream":true,"stream_options":{"include_usage":true}'
declare -A PATH_OF BODY_OF CHECK_OF
add_case() { PATH_OF[$1]=$2; BODY_OF[$1]=$3; CHECK_OF[$1]=$4; CASES+=("$1"); }
CASES=()
add_case chat /v1/chat/completions "{\"model\":\"mock/gpt-bench\",$USER_TURN}" '"chat.completion"'
add_case messages /v1/messages "{\"model\":\"claude/claude-bench\",\"max_tokens\":64,$USER_TURN}" \
    '"type":"message"'
for size in small big; do
    [[ $STREAMS == 1 ]] || break
    n=$SMALL; [[ $size == big ]] && n=$BIG
    add_case "raw-$n" /v1/chat/completions "{\"model\":\"o$size/gpt-bench\",$CHAT_STREAM,$USER_TURN}" \
        'data: [DONE]'
    add_case "translated-$n" /v1/chat/completions \
        "{\"model\":\"a$size/claude-bench\",$CHAT_STREAM,$USER_TURN}" 'data: [DONE]'
    add_case "messages-raw-$n" /v1/messages \
        "{\"model\":\"a$size/claude-bench\",\"stream\":true,\"max_tokens\":64,$USER_TURN}" \
        'event: message_stop'
done

# Ready, and each case answers what its mock sent (through the API it names).
for _ in $(seq 1 600); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$MICHI_PORT/readyz" || true)
    [[ $code == 200 ]] && break
    kill -0 "$MICHI_PID" 2>/dev/null || { cat "$TMP/michi/out.log" >&2; die "michi exited"; }
    sleep 0.1
done
for c in "${CASES[@]}"; do
    out=$(curl -s -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $MICHI_BENCH_KEY" \
        -H 'anthropic-version: 2023-06-01' --data "${BODY_OF[$c]}" "http://127.0.0.1:$MICHI_PORT${PATH_OF[$c]}")
    grep -qF "${CHECK_OF[$c]}" <<<"$out" || die "case $c: unexpected answer: ${out:0:400}"
done
[[ $STREAMS == 1 ]] && deltas=$(curl -s -X POST -H "Authorization: Bearer $MICHI_BENCH_KEY" --data "${BODY_OF[translated-$BIG]}" \
    "http://127.0.0.1:$MICHI_PORT/v1/chat/completions" | grep -c '"content":"word "' || true)
[[ $STREAMS != 1 || $deltas == "$BIG" ]] || die "translated-$BIG: $deltas text chunks, expected $BIG"

# ---------------------------------------------------------------- load

RESULTS="$TMP/results.tsv"
: >"$RESULTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: $("$MICHI_BIN" --version | head -1); $ROUNDS rounds of ${#CASES[@]} cases," \
     "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP); Michi threads $WORKERS"
for r in $(seq 1 "$ROUNDS"); do
    # chat and messages back to back (their order alternating), then the streams, rotated.
    order=(chat messages)
    ((r % 2)) || order=(messages chat)
    streams=("${CASES[@]:2}")
    n=${#streams[@]}
    for ((i = 0; i < n; i++)); do order+=("${streams[$(((i + r - 1) % n))]}"); done
    for c in "${order[@]}"; do
        url="http://127.0.0.1:$MICHI_PORT${PATH_OF[$c]}"
        export MICHI_APIS_BODY="${BODY_OF[$c]}"
        [[ $WARMUP == 0 || $WARMUP == 0s ]] || wrk -t "$THREADS" -c "$CONNECTIONS" -d "$WARMUP" -s "$LUA" "$url" >/dev/null
        if [[ $INSTR == 1 ]]; then
            callgrind_control -z "$MICHI_PID" >/dev/null
        else
            cpu_ticks "$MICHI_PID"; cpu0=$REPLY
        fi
        out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --timeout 5s -s "$LUA" "$url")
        if [[ $INSTR == 1 ]]; then
            callgrind_control --dump="$c-$r" "$MICHI_PID" >/dev/null
            cost="instr=$(awk '$1 == "totals:" {print $2}' "$(ls -t "$TMP"/michi.cg.* | head -1)")"
        else
            cpu_ticks "$MICHI_PID"; cost="cpu_ticks=$((REPLY - cpu0))"
        fi
        line=$(grep '^BENCH ' <<<"$out") || { echo "$out" >&2; die "wrk gave no result for $c"; }
        kill -0 "$MICHI_PID" 2>/dev/null || { cat "$TMP/michi/out.log" >&2; die "michi died under load"; }
        printf '%s\t%s\t%s\t%s\n' "$c" "$r" "${line#BENCH }" "$cost" >>"$RESULTS"
        printf '  round %d  %-18s %s %s\n' "$r" "$c" "${line#BENCH }" "$cost"
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report

mkdir -p "$(dirname "$OUT")"
RESULTS="$RESULTS" OUT="$OUT" SMALL="$SMALL" BIG="$BIG" CLK_TCK="$(getconf CLK_TCK)" \
LOAD="$LOAD_START / $LOAD_END" VERSION="$("$MICHI_BIN" --version | head -1)" \
SETUP="$ROUNDS rounds, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, Michi threads $WORKERS" \
python3 - <<'PY'
import datetime, os, statistics
E = os.environ
hz = float(E["CLK_TCK"]); small, big = int(E["SMALL"]), int(E["BIG"])
rows = {}
for line in open(E["RESULTS"]):
    case, rnd, *kv = line.split()
    d = {k: float(v) for k, v in (x.split("=") for x in kv)}
    n = max(d["requests"], 1)
    # What a request costs: CPU µs, or instructions under callgrind (INSTR=1).
    d["cost"] = d["instr"] / n if "instr" in d else d["cpu_ticks"] / hz * 1e6 / n
    rows.setdefault(case, {})[int(rnd)] = d
instr = any("instr" in d for r in rows.values() for d in r.values())
unit, what = ("instructions", "Instructions") if instr else ("µs", "CPU")

def med(case, key):
    return statistics.median(r[key] for r in rows[case].values())

def paired(a, b, f):
    xs = [f(rows[a][r], rows[b][r]) for r in rows[a] if r in rows[b]]
    m = statistics.mean(xs)
    se = statistics.stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else 0.0
    return m, se, xs

def num(x):
    return f"{x:,.0f}" if instr else f"{x:.2f}"

out = []
emit = out.append
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
emit(f"# Michi client APIs benchmark — {now}")
emit("")
emit(f"- {E['VERSION']}; {E['SETUP']}{' (under callgrind)' if instr else ''}; "
     f"load average before/after: {E['LOAD']}")
emit("")
emit(f"| case | req/s | p50 ms | p99 ms | {what} per request | errors |")
emit("|---|---:|---:|---:|---:|---:|")
for case in rows:
    emit(f"| {case} | {med(case, 'rps'):.0f} | {med(case, 'p50_us') / 1000:.2f} | "
         f"{med(case, 'p99_us') / 1000:.2f} | {num(med(case, 'cost'))} | "
         f"{sum(r['non2xx'] + r['errors'] for r in rows[case].values()):.0f} |")
emit("")
m, se, xs = paired("messages", "chat", lambda a, b: a["rps"] / b["rps"])
if not instr:
    verdict = "met" if m >= 0.95 else "NOT met"
    emit(f"- /v1/messages passthrough / chat passthrough, req/s: **{m:.3f}** (standard error "
         f"{se:.3f}; per round {', '.join(f'{x:.2f}' for x in xs)}) — target >= 0.95: {verdict}")
m, se, _ = paired("messages", "chat", lambda a, b: a["cost"] / b["cost"])
emit(f"- {what} per request, messages / chat: **{m:.3f}** (standard error {se:.3f}); "
     f"{num(med('messages', 'cost'))} vs {num(med('chat', 'cost'))} {unit}")
slope = {}
streamed = f"raw-{big}" in rows
for kind in ("raw", "translated", "messages-raw") if streamed else ():
    a, b = f"{kind}-{big}", f"{kind}-{small}"
    m, se, _ = paired(a, b, lambda x, y: (x["cost"] - y["cost"]) / (big - small))
    slope[kind] = m
    emit(f"- {kind}: {what} per streamed request {num(med(b, 'cost'))} {unit} ({small} deltas), "
         f"{num(med(a, 'cost'))} {unit} ({big} deltas); per relayed event (slope) "
         f"**{num(m)} {unit}** (standard error {num(se)})")
if streamed:
    m, se, _ = paired(f"translated-{big}", f"raw-{big}", lambda a, b: a["cost"] / b["cost"])
    emit(f"- chat -> Anthropic translated stream / raw chat relay: per event (slopes) "
         f"**{slope['translated'] / slope['raw']:.2f}x**; per {big}-delta request {m:.2f}x "
         f"(standard error {se:.2f})")
emit("")
emit("Per run:")
emit("")
emit("```")
emit(open(E["RESULTS"]).read().rstrip("\n").replace("\t", "  "))
emit("```")
text = "\n".join(out) + "\n"
open(E["OUT"], "w").write(text)
print()
print(text, end="")
print(f"(written to {E['OUT']})")
PY
