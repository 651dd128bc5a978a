#!/usr/bin/env bash
# Installs what is missing, builds with AddressSanitizer + UndefinedBehaviorSanitizer,
# and runs every test: GoogleTest unit and integration suites (ctest), then the
# end-to-end suite driving the daemon with the official SDKs (npm).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --test
jobs=$(nproc)
cmake --preset debug >/dev/null
cmake --build --preset debug -j "$jobs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --preset debug -j "$jobs"

echo "== end-to-end (official SDKs)"
(
  cd tests/e2e
  if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules ]]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  MICHI_BIN="$PWD/../../build/debug/michi-gateway" npm test
)
