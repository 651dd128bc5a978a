# Sourced by bench/instructions.sh and bench/choice.sh (the callgrind benchmarks): checks that
# the tools they use are on PATH and that MICHI_BIN is built, makes the run's directory $TMP,
# and on exit stops the processes in PIDS and removes $TMP (KEEP=1 keeps it, with the dumps).
#   bench_workdir NAME TOOL...
bench_workdir() {
    local name=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
    done
    [[ -x "$MICHI_BIN" ]] || { echo "bench: no michi-gateway at $MICHI_BIN" >&2; exit 1; }
    TMP="$(mktemp -d "${TMPDIR:-/tmp}/michi-$name.XXXXXX")"
    PIDS=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ "${KEEP:-0}" == 1 ]]; then
        echo "bench: callgrind dumps kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
