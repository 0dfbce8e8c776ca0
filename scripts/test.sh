#!/usr/bin/env bash
# Run the test suite in the repo's own venv, creating it if needed.
# Extra arguments are passed to pytest.
set -euo pipefail

cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest -q "$@"
