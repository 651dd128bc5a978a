#!/usr/bin/env bash
# Michi soak: hostile and normal traffic mixed against one gateway for a bounded time, under
# ASan + UBSan. Started by hand, never by scripts/test.sh or CI (about 6 minutes by default).
#
#   tests/soak/run.sh                        # 30 s quiet, then 300 s soak
#   SOAK_SECONDS=60 QUIET_SECONDS=15 tests/soak/run.sh
#
# It builds nothing: build the ASan + UBSan binary first
#   cmake --preset debug -DCMAKE_CXX_COMPILER_LAUNCHER=ccache && cmake --build --preset debug -j2
#
# What it does: starts a fake OpenAI/Anthropic-style upstream (tests/soak/fake_upstream.py) and
# the gateway (on 127.0.0.1, ports chosen by the OS, a temporary config: the echo provider,
# the fake upstream, an admin key, two keys with limits far above what the run reaches;
# sanitizer reports written under the run's temporary directory), then
#   1. a quiet phase: well-formed traffic only (chats and streams through the fake upstream,
#      echo chats and streams, /v1/models) at a fixed rate, its latencies measured;
#   2. the soak phase: the same traffic, measured the same way, plus one bounded loop per class
#      of hostile client (tests/soak/soak.py: deep JSON, oversized bodies and heads, request
#      smuggling, malformed chunked bodies, slowloris, hang-ups, big echo streams and
#      embeddings, random model names, bad auth, admin API junk, raw bytes) and a SIGHUP
#      reload every few seconds; the gateway's RSS sampled every 5 s;
#   3. checks the gateway is alive and /readyz answers, stops it with SIGTERM, and reports.
# Targets (the exit status is 1 when one is missed): no sanitizer report; no 5xx, connection
# error or broken stream for a well-formed request; normal p99 in the soak at most 2x the quiet
# phase's; RSS flat (the soak's last minute's median within 10 % of its first minute's); alive
# and ready at the end; nothing smuggled to the upstream; exit code 0 on SIGTERM.
#
# Knobs (environment):
#   MICHI_BIN      the gateway binary          (default: build/debug/michi-gateway, ASan+UBSan)
#   QUIET_SECONDS  quiet phase                 (default 30)
#   SOAK_SECONDS   soak phase                  (default 300)
#   SOAK_RATE      normal requests per second, both phases (default 20)
#   SOAK_THREADS   the gateway's server.threads (default: nproc)
#   OUT            the markdown report (default tests/soak/results/soak-<UTC date-time>.md);
#                  sanitizer logs, when there are any, are copied beside it
#   KEEP_TMP       1: keep the run's temporary directory (config, logs) and print its path
#   SOAK_NICE      a niceness for the whole run (gateway, upstream, clients alike), e.g. -10 on
#                  a machine other jobs keep busy (default: unchanged)
#   SOAK_INTENSITY how often the hostile clients try again, 1 = the default pace (see soak.py)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MICHI_BIN="$(readlink -f "${MICHI_BIN:-$ROOT/build/debug/michi-gateway}")"
QUIET_SECONDS="${QUIET_SECONDS:-30}"
SOAK_SECONDS="${SOAK_SECONDS:-300}"
SOAK_RATE="${SOAK_RATE:-20}"
SOAK_THREADS="${SOAK_THREADS:-$(nproc)}"
OUT="${OUT:-$HERE/results/soak-$(date -u +%Y%m%d-%H%M%S).md}"
KEEP_TMP="${KEEP_TMP:-0}"
MAX_BODY=4194304

die() { echo "soak: $*" >&2; exit 2; }
[[ -x "$MICHI_BIN" ]] || die "no gateway binary at $MICHI_BIN (build it first, see the head of $0)"
command -v python3 >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"

if [[ -n "${SOAK_NICE:-}" ]]; then
    renice -n "$SOAK_NICE" -p $$ >/dev/null || die "cannot renice to $SOAK_NICE"
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/michi-soak.XXXXXX")"
mkdir -p "$TMP/asan"
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    # Whatever has not stopped 10 s later is killed (a bound, not a synchronisation).
    ( sleep 10; for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done ) &
    local watchdog=$!
    wait "${PIDS[@]}" 2>/dev/null || true
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
    if [[ "$KEEP_TMP" == 1 ]]; then echo "soak: kept $TMP" >&2; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The fake upstream, on a port the OS chose (its first line of output).
python3 "$HERE/fake_upstream.py" >"$TMP/upstream.out" 2>"$TMP/upstream.err" &
UP_PID=$!; PIDS+=("$UP_PID")
for _ in $(seq 1 300); do
    [[ -s "$TMP/upstream.out" ]] && break
    kill -0 "$UP_PID" 2>/dev/null || die "the fake upstream did not start: $(cat "$TMP/upstream.err")"
    sleep 0.1
done
UP_PORT="$(head -n1 "$TMP/upstream.out")"
[[ "$UP_PORT" =~ ^[0-9]+$ ]] || die "the fake upstream printed no port"

keygen() {  # -> "secret digest"
    local out
    out="$("$MICHI_BIN" keygen --class application)"
    echo "$(awk '$1 == "secret:" {print $2}' <<<"$out") $(awk '$1 == "secret_sha256:" {print $2}' <<<"$out")"
}
read -r NORMAL_KEY NORMAL_SHA <<<"$(keygen)"
read -r HOSTILE_KEY HOSTILE_SHA <<<"$(keygen)"
[[ -n "$NORMAL_SHA" && -n "$HOSTILE_SHA" ]] || die "keygen output not understood"
ADMIN_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"

cat >"$TMP/michi.yaml" <<EOF
server:
  listen: "127.0.0.1:0"
  threads: $SOAK_THREADS
  max_body_bytes: $MAX_BODY
  idle_timeout: 60s
  drain_timeout: 10s
admin:
  key: "$ADMIN_KEY"
store:
  sqlite: $TMP/michi.db
log:
  level: info
  format: text
providers:
  up:   { type: openai,    base_url: "http://127.0.0.1:$UP_PORT/v1", api_key: "sk-soak-upstream" }
  anth: { type: anthropic, base_url: "http://127.0.0.1:$UP_PORT",    api_key: "sk-ant-soak-upstream" }
  echo: { type: echo }
models:
  up/gpt-soak:      { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  up/slow:          { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  up/late:          { input_per_mtok: 0.15, output_per_mtok: 0.6 }
  anth/claude-soak: { input_per_mtok: 1, output_per_mtok: 5 }
  echo/echo-1:      { input_per_mtok: 0, output_per_mtok: 0, context_window: 1000000 }
key_classes:
  # Limits far above what the run reaches: the guards run on every request, never refuse.
  application: { rpm: 1000000000, tpm: 1000000000000, daily_usd: 1000000, monthly_usd: 10000000 }
keys:
  - { id: normal,  class: application, secret_sha256: "$NORMAL_SHA" }
  - { id: hostile, class: application, secret_sha256: "$HOSTILE_SHA" }
EOF
"$MICHI_BIN" --check --config "$TMP/michi.yaml" >"$TMP/check.out" 2>&1 \
    || die "config refused: $(cat "$TMP/check.out")"

# Sanitizer reports go to files of their own under $TMP/asan (counted by the report; the build
# aborts on the first). A smaller quarantine than ASan's 256 MB fills within the first minute,
# so that RSS measures the gateway, not the quarantine filling up.
export ASAN_OPTIONS="log_path=$TMP/asan/asan:detect_leaks=1:quarantine_size_mb=64"
export UBSAN_OPTIONS="log_path=$TMP/asan/ubsan:print_stacktrace=1"
: >"$TMP/michi.log"  # there before the background job opens it: read at once below
"$MICHI_BIN" --config "$TMP/michi.yaml" >"$TMP/michi.log" 2>&1 &
MICHI_PID=$!; PIDS+=("$MICHI_PID")
PORT=""
for _ in $(seq 1 600); do
    PORT="$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$TMP/michi.log" | head -n1 || true)"
    [[ -n "$PORT" ]] && break
    kill -0 "$MICHI_PID" 2>/dev/null || die "the gateway exited: $(tail -n 20 "$TMP/michi.log")"
    sleep 0.1
done
[[ -n "$PORT" ]] || die "the gateway did not say where it listens: $(tail -n 20 "$TMP/michi.log")"
for _ in $(seq 1 600); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" == 200 ]] && break
    kill -0 "$MICHI_PID" 2>/dev/null || die "the gateway exited: $(tail -n 20 "$TMP/michi.log")"
    sleep 0.1
done
# A probe of each kind of normal request: the run measures nothing that does not work.
probe() {
    local code
    code="$(curl -s -o "$TMP/probe.out" -w '%{http_code}' -H "Authorization: Bearer $NORMAL_KEY" \
        -H 'Content-Type: application/json' "$@")"
    [[ "$code" == 200 ]] || die "probe $* answered $code: $(head -c 400 "$TMP/probe.out")"
}
CHAT="http://127.0.0.1:$PORT/v1/chat/completions"
probe --data '{"model":"up/gpt-soak","messages":[{"role":"user","content":"hi"}]}' "$CHAT"
probe --data '{"model":"up/gpt-soak","stream":true,"messages":[{"role":"user","content":"hi"}]}' "$CHAT"
grep -q '^data: \[DONE\]' "$TMP/probe.out" || die "the stream probe did not end with [DONE]"
probe --data '{"model":"echo/echo-1","messages":[{"role":"user","content":"hi"}]}' "$CHAT"
probe "http://127.0.0.1:$PORT/v1/models"

export SOAK_PORT="$PORT" SOAK_PID="$MICHI_PID" SOAK_UPSTREAM_PORT="$UP_PORT" SOAK_UPSTREAM_PID="$UP_PID"
export SOAK_TMP="$TMP"
export SOAK_NORMAL_KEY="$NORMAL_KEY" SOAK_HOSTILE_KEY="$HOSTILE_KEY" SOAK_ADMIN_KEY="$ADMIN_KEY"
export SOAK_MAX_BODY="$MAX_BODY" SOAK_RATE QUIET_SECONDS SOAK_SECONDS MICHI_BIN
export SOAK_ASAN_DIR="$TMP/asan" SOAK_DAEMON_LOG="$TMP/michi.log"
SOAK_COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || SOAK_COMMIT+=" (with local changes)"
export SOAK_COMMIT
echo "soak: gateway pid $MICHI_PID on port $PORT; ${QUIET_SECONDS}s quiet, then ${SOAK_SECONDS}s soak" >&2
python3 "$HERE/soak.py" drive "$TMP/drive.json"

# Stop it as an operator would; wait for it (bounded) and keep its exit code.
kill -TERM "$MICHI_PID" 2>/dev/null || true
( sleep 60; kill -KILL "$MICHI_PID" 2>/dev/null ) &
WATCHDOG=$!
set +e
wait "$MICHI_PID"; EXIT_CODE=$?
set -e
kill "$WATCHDOG" 2>/dev/null || true
wait "$WATCHDOG" 2>/dev/null || true
[[ "$EXIT_CODE" != 137 ]] || EXIT_CODE="137 (killed: no exit 60 s after SIGTERM)"
set +e
python3 "$HERE/soak.py" report "$TMP/drive.json" "$EXIT_CODE" "$OUT"
RC=$?
set -e
if compgen -G "$TMP/asan/*" >/dev/null; then
    mkdir -p "${OUT%.md}-sanitizer"
    cp "$TMP"/asan/* "${OUT%.md}-sanitizer/"
    grep -v ' INFO \| info ' "$TMP/michi.log" | tail -n 200 >"${OUT%.md}-sanitizer/michi-tail.log" || true
    echo "soak: sanitizer logs copied to ${OUT%.md}-sanitizer/" >&2
fi
echo "soak: report written to $OUT" >&2
exit "$RC"
