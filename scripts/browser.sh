#!/usr/bin/env bash
# The browser the admin's browser tests drive (tests/browser/): Debian's chromium, since
# no browser can be downloaded by Playwright here. Installed when missing.
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "No chromium at $CHROMIUM: install Debian's chromium package (apt-get install chromium)," \
       "or point CHROMIUM at a Chromium binary." >&2
  exit 1
fi
echo "Installing chromium for the browser tests (a few minutes, once)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
