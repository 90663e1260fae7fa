#!/usr/bin/env bash
# Set up a virtualenv with the test dependencies and run the whole test suite.
#   bash scripts/test.sh [pytest args...]
# Needs only python3 (>= 3.10) and git. The virtualenv lives in .venv/ and is reused.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

echo "== import layers (import-linter)"
.venv/bin/lint-imports
echo "== types (mypy --strict)"
.venv/bin/mypy
echo "== tests"
exec .venv/bin/python -m pytest -n 2 "$@"
