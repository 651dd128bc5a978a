#!/usr/bin/env bash
# Installs what is missing, builds the release binary, makes a local developer key on
# first run, and starts the gateway on config/michi.yaml (Ctrl-C stops it cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target michi-gateway
bin=build/release/michi-gateway

mkdir -p data
chmod 700 data
if [[ ! -s data/dev-key ]]; then
  "$bin" keygen --class developer > data/dev-key
  chmod 600 data/dev-key
fi
secret=$(sed -n 's/^secret: //p' data/dev-key)
export MICHI_DEV_KEY_SHA256=$(sed -n 's/^secret_sha256: //p' data/dev-key)
listen=${MICHI_LISTEN:-0.0.0.0:8080}
port=${listen##*:}

cat <<MSG

  Michi is starting on port $port with config/michi.yaml.
  Your local developer key (kept in data/dev-key):

    export MICHI_KEY=$secret

  Try it:
    curl -s localhost:$port/v1/chat/completions -H "Authorization: Bearer \$MICHI_KEY" \\
      -H 'content-type: application/json' \\
      -d '{"model":"echo/echo-1","messages":[{"role":"user","content":"hello"}]}'

MSG
exec "$bin" --config config/michi.yaml
