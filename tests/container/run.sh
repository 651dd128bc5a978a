#!/usr/bin/env bash
# The container tests (README, "Testing"): builds the image of docker/Dockerfile with podman once,
# and runs against it the image alone (image.test.mjs), docker/compose.yaml under podman-compose
# (compose.test.mjs) and the Kubernetes manifests under `podman kube play` (kube.test.mjs).
# Needs root, podman, podman-compose, mmdebstrap (scripts/install-deps.sh --test installs them).
# Every container, pod, volume, network and image made here is removed by name at the end,
# also on failure; the Debian base images are kept for the next run.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ $(id -u) -ne 0 ]]; then
  echo "the container tests need root (podman as root, as CI runs them);" \
    "MICHI_SKIP_CONTAINERS=1 ./scripts/test.sh skips them" >&2
  exit 1
fi
start=$SECONDS

work=$(mktemp -d)
# podman's defaults need two changes on machines like CI's: runc, and no default ulimits.
if [[ -z "${CONTAINERS_CONF:-}" ]]; then
  printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' >"$work/containers.conf"
  export CONTAINERS_CONF=$work/containers.conf
fi

export MICHI_CT_PREFIX=michi-ct-$$
export MICHI_CT_IMAGE=localhost/$MICHI_CT_PREFIX:test
made_images=("$MICHI_CT_IMAGE")
standin_images=(docker.io/library/redis:7-bookworm docker.io/library/nginx:stable-bookworm)

cleanup() {
  local rc=$?
  # What the test files left (they remove their own; this catches a crash or an interrupt).
  for c in $(podman ps -a --format '{{.Names}}' | grep "^$MICHI_CT_PREFIX" || true); do
    podman rm -f -v -t 0 "$c" >/dev/null 2>&1 || true
  done
  for p in $(podman pod ps --format '{{.Name}}' | grep "^$MICHI_CT_PREFIX" || true); do
    podman pod rm -f -t 0 "$p" >/dev/null 2>&1 || true
  done
  for v in $(podman volume ls --format '{{.Name}}' | grep "^$MICHI_CT_PREFIX" || true); do
    podman volume rm -f "$v" >/dev/null 2>&1 || true
  done
  for n in $(podman network ls --format '{{.Name}}' | grep "^$MICHI_CT_PREFIX" || true); do
    podman network rm -f "$n" >/dev/null 2>&1 || true
  done
  for s in $(podman secret ls --format '{{.Name}}' | grep "^$MICHI_CT_PREFIX" || true); do
    podman secret rm "$s" >/dev/null 2>&1 || true
  done
  for i in "${made_images[@]}"; do
    podman rmi -f "$i" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
  echo "== container tests: $((SECONDS - start)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The openai SDK, from the end-to-end suite's lock file.
if [[ ! -d tests/e2e/node_modules/openai ]]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

tests/container/base_images.sh

# Stand-ins for the official redis and nginx images, built from Debian's packages, under the
# official names, only where no such image is present; removed at the end. Built while the
# gateway compiles (they wait on the network, the compile on the CPU).
standin_pids=()
for image in "${standin_images[@]}"; do
  if ! podman image exists "$image"; then
    made_images+=("$image")
    name=${image#docker.io/library/}
    podman build --isolation chroot --layers=false -q -t "$image" \
      -f "tests/container/standins/${name%%:*}.Containerfile" tests/container/standins \
      >"$work/${name%%:*}.log" 2>&1 &
    standin_pids+=($!)
  fi
done

echo "== image build (docker/Dockerfile, release compile inside)"
build_start=$SECONDS
podman build --isolation chroot --format docker --layers=false -f docker/Dockerfile \
  -t "$MICHI_CT_IMAGE" . >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; exit 1; }
echo "built in $((SECONDS - build_start)) s"
for pid in "${standin_pids[@]}"; do
  wait "$pid" || { cat "$work"/redis.log "$work"/nginx.log; exit 1; }
done

# What the image adds to its base, layer by layer.
base_id=$(podman image inspect --format '{{.Id}}' docker.io/library/debian:bookworm-slim)
image_bytes=$(podman image inspect --format '{{.Size}}' "$MICHI_CT_IMAGE")
base_bytes=$(podman image inspect --format '{{.Size}}' "$base_id")
echo "image adds $(((image_bytes - base_bytes) / 1000000)) MB to debian:bookworm-slim"
if ((image_bytes - base_bytes > 30000000)); then
  echo "the image adds more than 30 MB to its base" >&2
  exit 1
fi

export MICHI_CT_WORK=$work
for t in image compose kube; do
  echo "== container: $t"
  node --test "tests/container/$t.test.mjs"
done
