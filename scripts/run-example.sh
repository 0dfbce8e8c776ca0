#!/usr/bin/env bash
# Set up, then start Redis (embedded unless REDIS_URL is set), a worker pool, and an example workflow.
EXTRAS=http source "$(dirname "$0")/_venv.sh"
exec .venv/bin/orchestrator demo "$@"
