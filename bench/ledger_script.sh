#!/usr/bin/env bash
# The shared ledger's batch script driven directly, without a gateway: what Redis spends on one
# call of N admissions and N settlements, the figure that decides the ledger's cost in Redis.
# A redis-server of its own (free port, no persistence) loads the script from
# src/guard/redis_scripts.hpp (prelude + batch_lua), then redis-benchmark sends CALLS calls of
# the same batch over 2 connections (a gateway's two workers): every call settles the N holds
# the one before admitted and admits them again, so each call runs the common path (holds still
# held, limits far away). Prints, per N, Redis's µs per script call (INFO commandstats), the
# commands the script made, and redis-server's whole CPU per call and per request (/proc: the
# call's parsing and networking too).
#
#   bench/ledger_script.sh   env: SIZES ("1 6 20") CALLS (10000) SCRIPTS (the .hpp to read; e.g.
#                            another version's, from git show; its batch must take this version's
#                            arguments)
#                            needs redis-server, redis-benchmark, redis-cli, python3
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPTS="${SCRIPTS:-$HERE/../src/guard/redis_scripts.hpp}"
SIZES="${SIZES:-1 6 20}"
CALLS="${CALLS:-10000}"
for tool in redis-server redis-benchmark redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/michi-ledger-script.XXXXXX")"
REDIS_PID=
cleanup() {
    [[ -n "$REDIS_PID" ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

python3 - "$SCRIPTS" >"$TMP/batch.lua" <<'PY'
import re, sys
parts = dict(re.findall(r'constexpr const char\* (\w+) = R"lua\((.*?)\)lua";', open(sys.argv[1]).read(), re.S))
sys.stdout.write(parts['prelude'] + parts['batch_lua'])
PY

# The arguments of one batch of n settlements and n admissions, one a line (as
# redis_ledger::send lays them out).
batch_args() {
    python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
now_ms = 1796000000000; sec = now_ms // 1000
day, month = 'd:2026-12-05', 'm:2026-12'
cost, held, tokens, est = 11000, 12000, 25, 30
sums = [f's|{day}', cost * n, f's|{month}', cost * n, f'h|{day}', -held * n,
        f'h|{month}', -held * n, f't|{sec}', (tokens - est) * n]
args = [3, 'michi:{bench}', 'michi:{bench}:lease', 'michi:{bench}:lapsed', now_ms, day, month,
        now_ms + 900000, n, n, len(sums) // 2, 1] + sums
args += [10**17, 10**18, 10**9, 10**12, '', '']  # the limit set: far away, no loop guard
holds = [f'req_{i:016x} {held} {est} {sec} {day} {month}' for i in range(n)]
args += holds + [cost] * n + [tokens] * n
for h in holds:
    args += [h, held, est, 1, 0]
print('\n'.join(str(a) for a in args))
PY
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --logfile "$TMP/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done
sha=$(redis-cli -p "$port" -x SCRIPT LOAD <"$TMP/batch.lua")
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$REDIS_PID/stat"; }

printf '%-4s %14s %14s %16s  %s\n' N "µs/call (cmd)" "µs/call (all)" "µs/request (all)" \
    "commands per call (µs each)"
for n in $SIZES; do
    mapfile -t args < <(batch_args "$n")
    reply=$(redis-cli -p "$port" EVALSHA "$sha" "${args[@]}" | head -1)
    [[ "$reply" == ok ]] || { echo "bench: the script answered \"$reply\"" >&2; exit 1; }
    redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
    t0=$(ticks)
    redis-benchmark -p "$port" -n "$CALLS" -c 2 -q EVALSHA "$sha" "${args[@]}" >/dev/null
    t1=$(ticks)
    stats=$(redis-cli -p "$port" INFO commandstats | tr -d '\r')
    call=$(sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p' <<<"$stats")
    inner=$(grep -v -E '^cmdstat_(evalsha|config|script|ping)' <<<"$stats" | sed -n \
        's/^cmdstat_\([a-z]*\):calls=\([0-9]*\),.*usec_per_call=\([0-9.]*\).*/\1 \2 \3/p' |
        awk -v c="$CALLS" '{printf "%s%s %.2g (%.2f)", (NR > 1 ? ", " : ""), $1, $2 / c, $3}')
    awk -v n="$n" -v call="$call" -v t=$((t1 - t0)) -v hz="$hz" -v c="$CALLS" -v inner="$inner" \
        'BEGIN { all = t * 1e6 / hz / c
                 printf "%-4d %14.1f %14.1f %16.2f  %s\n", n, call, all, all / n, inner }'
done
