#!/usr/bin/env bash
# The guards: ruff (style, bugs, complexity), mypy (strict on the core) and the import contracts
# (layers point inward; the core stays pure). Configured in pyproject.toml; run by .ci/run before the tests.
source "$(dirname "$0")/_venv.sh"
set -x
.venv/bin/ruff check orchestrator workers tests bench
.venv/bin/mypy
PYTHONPATH=. .venv/bin/lint-imports
