#!/usr/bin/env bash
# A separate virtualenv with Deep Lake 3.9.52 (the last 3.x), for the interoperability
# tests: real Deep Lake processes against dlock's locks. Idempotent; ~30 s the first time.
set -euo pipefail
venv="${DLOCK_DEEPLAKE_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.cache/deeplake3-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import deeplake" 2>/dev/null; then
  python3 -m venv "$venv"
  # numpy 2 breaks Deep Lake 3.9's appends (NEP 50 casting rules).
  "$venv/bin/pip" install --quiet --disable-pip-version-check "deeplake==3.9.52" "numpy<2"
fi
