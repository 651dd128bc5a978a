#!/usr/bin/env bash
# Installs what is missing, checks the sources' format (.clang-format), builds with clang,
# AddressSanitizer + UndefinedBehaviorSanitizer and libFuzzer's coverage (the tests and the
# fuzzers share that one build), and runs every test: the GoogleTest unit, integration and
# hostile suites and the fuzzers' seed corpora (ctest), short fuzz runs, the end-to-end suite
# driving the daemon with the official SDKs (npm), then the container tests (the image, compose
# and Kubernetes manifests under podman; MICHI_SKIP_CONTAINERS=1 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --test

echo "== format (clang-format, the style in .clang-format)"
find src include tests bench -path tests/e2e/node_modules -prune -o \
  \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) -print0 | xargs -0 clang-format --dry-run --Werror
jobs=$(nproc)
cmake --preset debug >/dev/null
cmake --build --preset debug -j "$jobs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --preset debug -j "$jobs"

echo "== fuzz (short runs of the fuzzers the debug build made; see README for longer ones)"
fuzzers=(sse_parser_fuzz anthropic_fuzz gemini_fuzz responses_fuzz body_scan_fuzz http_parser_fuzz
  config_fuzz price_file_fuzz http_session_fuzz)
fuzz_secs=${MICHI_FUZZ_SECONDS:-10}
for target in "${fuzzers[@]}"; do
  corpus=$(mktemp -d)
  seeds=tests/fuzz/corpus/${target%_fuzz}
  [[ $target == sse_parser_fuzz ]] && seeds=tests/fuzz/corpus/sse
  # Inputs up to 1 MB: deep nesting and long values need room (the seeds hold some).
  build/debug/tests/fuzz/$target -max_total_time="$fuzz_secs" -max_len=1048576 \
    -print_final_stats=0 "$corpus" "$seeds" 2>&1 | tail -n 2
  rm -rf "$corpus"
done

echo "== end-to-end (official SDKs, dashboard in headless Chromium)"
(
  cd tests/e2e
  if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules ]]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  MICHI_BIN="$PWD/../../build/debug/michi-gateway" npm test
)

if [[ "${MICHI_SKIP_CONTAINERS:-}" != 1 ]]; then
  echo "== containers (docker/: the image, compose, Kubernetes manifests, under podman)"
  tests/container/run.sh
fi
