#!/usr/bin/env bash
# Installs the Debian 12 packages Michi needs to build, test and benchmark.
# Only what is missing is installed; safe to run repeatedly.
set -euo pipefail

build_pkgs=(g++ cmake ninja-build pkg-config git ca-certificates openssl
  libboost1.81-dev nlohmann-json3-dev libspdlog-dev libyaml-cpp-dev
  libssl-dev libsqlite3-dev libhiredis-dev)
test_pkgs=(libgtest-dev clang clang-format libclang-rt-14-dev chromium nodejs npm redis-server redis-tools
  podman runc conmon netavark aardvark-dns iptables catatonit podman-compose mmdebstrap)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # node/npm may come from outside Debian's packages; accept them when on PATH.
    if [[ "$p" == nodejs || "$p" == npm ]] && command -v "${p/nodejs/node}" >/dev/null; then
      continue
    fi
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
