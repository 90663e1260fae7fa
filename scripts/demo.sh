#!/usr/bin/env bash
# Set up a virtualenv with pipe installed and run the examples on generated data.
#   bash scripts/demo.sh
# Needs only python3 (>= 3.10) and git. The virtualenv lives in .venv-demo/ and is reused;
# the example projects are built in fresh temporary directories.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 -m venv .venv-demo
.venv-demo/bin/python -m pip install --quiet --upgrade pip
.venv-demo/bin/python -m pip install --quiet .
export PATH="$PWD/.venv-demo/bin:$PATH"

bash examples/data_demo.sh
bash examples/run_get_started.sh
