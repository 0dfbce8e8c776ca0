#!/usr/bin/env bash
# Set up (venv, package, a redis-server binary) and run the whole test suite. Extra args go to pytest.
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python -m pytest -q "$@"
