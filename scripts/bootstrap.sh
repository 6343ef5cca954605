#!/usr/bin/env bash
# Set up a fresh checkout: a virtual environment with the pinned Python packages and
# Azurite from the npm lockfile. Idempotent: re-runs only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.requirements.sha
wanted=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "[setup] installing Python packages (requirements-dev.txt)" >&2
  .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
  echo "$wanted" > "$stamp"
fi

npm_stamp=node_modules/.lock.sha
npm_wanted=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_wanted" ]; then
  echo "[setup] installing Azurite (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$npm_wanted" > "$npm_stamp"
fi
