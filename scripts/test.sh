#!/usr/bin/env bash
# Install everything the test suite needs (Debian packages + Python extras) and run it all.
# The README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x scripts/install-system-deps.sh ]; then scripts/install-system-deps.sh; fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m pytest "$@"
