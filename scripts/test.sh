#!/usr/bin/env bash
# Run pallet's checks and tests: ruff, mypy (strict), the import-linter layer
# contract, then pytest (unit and, as root, integration). Installs what it
# needs first (scripts/install.sh --no-demo --dev: the peers and the dev
# packages too), so it works on a fresh machine.
# Extra arguments go to pytest.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/install.sh --no-demo --dev
v=.venv/bin
echo "== ruff";          "$v/ruff" check src tests && "$v/ruff" format --check -q src tests
echo "== mypy";          "$v/mypy"
echo "== import-linter"; "$v/lint-imports" --no-cache
echo "== pytest";        "$v/pytest" "$@"
