#!/usr/bin/env bash
# Install everything the test suite needs (Debian packages + Python extras) and run it all.
# The README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh
scripts/install-deeplake3.sh
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m pytest "$@"
