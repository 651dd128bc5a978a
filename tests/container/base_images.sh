#!/usr/bin/env bash
# Makes the Debian base images docker/Dockerfile and the stand-in images start from, under the
# official names (debian:bookworm, debian:bookworm-slim), from Debian's own packages with
# mmdebstrap, for machines that reach Debian's mirror but no container registry. One download:
# the slim image is the same tree made slim the way Docker's is (documentation, manuals and
# locales removed, and excluded from every later install). An image already present under a
# name (pulled, or made by an earlier run) is kept as it is.
set -euo pipefail

have() { podman image exists "docker.io/library/debian:$1"; }
if have bookworm && have bookworm-slim; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
echo "base images debian:bookworm and debian:bookworm-slim from Debian's packages (mmdebstrap)"
mmdebstrap --quiet --variant=minbase bookworm "$root" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"

import() { # name: the tree under the official name
  tar -C "$root" --numeric-owner -cf - . |
    podman import --quiet --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "docker.io/library/debian:$1" >/dev/null
}
have bookworm || import bookworm

cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{man,groff,info,lintian,linda,locale}/*
have bookworm-slim || import bookworm-slim
