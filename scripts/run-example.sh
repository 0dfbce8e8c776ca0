#!/usr/bin/env bash
# Run the demo workflow in the repo's own venv, creating it if needed.
# Extra arguments are passed to `orchestrator demo`.
set -euo pipefail

cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
exec .venv/bin/orchestrator demo "$@"
