#!/usr/bin/env bash
# `make image-test`: prepares this machine as ../shared/CONTAINERS.md describes, then runs
# scripts/image_test.py (build the image, run its processes, check them from outside).
#
# There is no Docker engine and no registry here, so, once per machine:
#   1. podman, runc and debootstrap from Debian (and redis-server for the private Redis);
#   2. a containers.conf without default ulimits or a pids limit, with cgroupfs (the
#      sandbox refuses setrlimit and hybrid cgroups); podman runs with Debian's runc;
#   3. a Debian bookworm base image with Python made by debootstrap, standing in for
#      python:3.12-slim, cached as a tarball under $IMAGE_TEST_CACHE and as a podman image.
# Must run as root (podman with runc and cgroupfs as set up here).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${IMAGE_TEST_CACHE:-/var/cache/billing-service/image-test}
SUITE=bookworm
MIRROR=${IMAGE_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
INCLUDE=python3,python3-venv,python-is-python3,ca-certificates

say() { printf '\n==> %s\n' "$*"; }

if [[ $(id -u) != 0 ]]; then
  echo "image-test: run as root (podman with runc and cgroupfs, see ../shared/CONTAINERS.md)" >&2
  exit 1
fi
mkdir -p "$CACHE"

# 1. Packages, only those missing.
missing=()
for package in podman runc debootstrap redis-server; do
  command -v "$package" >/dev/null || missing+=("$package")
done
if ((${#missing[@]})); then
  say "Installing ${missing[*]} (apt-get)"
  started=$SECONDS
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } \
      >"$CACHE/apt-get.log" 2>&1; then
    tail -n 30 "$CACHE/apt-get.log" >&2
    echo "image-test: apt-get failed (whole log: $CACHE/apt-get.log)" >&2
    exit 1
  fi
  echo "installed in $((SECONDS - started)) s"
fi

# 2. containers.conf and the runtime.
cat >"$CACHE/containers.conf" <<'CONF'
[containers]
default_ulimits = []
pids_limit = 0
[engine]
cgroup_manager = "cgroupfs"
CONF
export CONTAINERS_CONF=$CACHE/containers.conf
IMAGE_TEST_RUNTIME=$(command -v runc)
export IMAGE_TEST_RUNTIME
podman() { command podman --runtime "$IMAGE_TEST_RUNTIME" "$@"; }

# 3. The base image, keyed by what debootstrap is asked for. One run makes it at a time.
key=$(printf '%s\n' "$SUITE" minbase "$INCLUDE" "$MIRROR" | sha256sum | cut -c1-12)
IMAGE_TEST_BASE_IMAGE=localhost/bookworm-python:base-$key
export IMAGE_TEST_BASE_IMAGE
tarball=$CACHE/bookworm-python-$key.tar
exec 9>"$CACHE/base.lock"
flock 9
if podman image exists "$IMAGE_TEST_BASE_IMAGE"; then
  say "Base image $IMAGE_TEST_BASE_IMAGE (cached)"
else
  if [[ ! -s $tarball ]]; then
    say "Base image: debootstrap $SUITE with $INCLUDE (once per machine)"
    started=$SECONDS
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs" "$MIRROR" \
        >"$CACHE/debootstrap.log" 2>&1; then
      tail -n 30 "$CACHE/debootstrap.log" >&2
      echo "image-test: debootstrap failed (whole log: $CACHE/debootstrap.log)" >&2
      exit 1
    fi
    # Downloaded packages and package lists: the image's own apt-get update fetches lists.
    rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . >"$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
    echo "debootstrap and tar: $((SECONDS - started)) s, $(du -h "$tarball" | cut -f1) in $tarball"
  else
    say "Base image from the cached tarball $tarball"
  fi
  if ! podman import - "$IMAGE_TEST_BASE_IMAGE" <"$tarball" >"$CACHE/import.log" 2>&1; then
    cat "$CACHE/import.log" >&2
    exit 1
  fi
  echo "imported as $IMAGE_TEST_BASE_IMAGE"
fi
flock -u 9
exec 9>&-

exec .venv/bin/python scripts/image_test.py "$@"
