#!/usr/bin/env bash
# `make requirements-check`: a fresh venv with requirements.txt and nothing else, then
# scripts/requirements_check.py in it. The venv is cached under a key made of
# requirements.txt and the Python version, so an unchanged file costs seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
cache=${REQUIREMENTS_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/billing-service/requirements-venv}
key=$({ cat requirements.txt; "$PYTHON" -VV; } | sha256sum | cut -c1-16)
venv=$cache/$key

if [[ -f $venv/.complete ]]; then
  echo "requirements-check: venv of this requirements.txt (cached): $venv"
else
  echo "requirements-check: fresh venv with requirements.txt only: $venv"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r requirements.txt
  touch "$venv/.complete"
  # Venvs of older requirements.txt versions, unused for a week.
  find "$cache" -mindepth 2 -maxdepth 2 -name .complete -mtime +7 -printf '%h\0' \
    | xargs -0r rm -rf
fi
touch "$venv/.complete"
# -I: no PYTHONPATH, no user site-packages, not the current directory: only the venv.
exec "$venv/bin/python" -I scripts/requirements_check.py
