#!/usr/bin/env bash
# Run the get-started example end to end with the `pipe` on PATH, in a fresh directory.
#
#   examples/run_get_started.sh [DIR]     # DIR: an empty or new directory (default: a temp dir)
#
# Steps: git init, pipe init, generate the raw data, pipe add it, pipe repro (all four stages),
# pipe repro again (nothing to do: checked), change train.lr, pipe status, pipe repro (train and
# evaluate only), pipe status, and print the metrics.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pipe_exe="$(command -v pipe)" || {
    echo "run_get_started.sh: 'pipe' is not on PATH; install it first ('pip install .')" >&2
    exit 1
}
# The stage commands call `python`: use the interpreter pipe is installed with when there is one,
# since it has numpy, pandas and pyyaml.
bindir="$(dirname "$pipe_exe")"
if [ -x "$bindir/python" ]; then
    export PATH="$bindir:$PATH"
fi
python="$(command -v python || command -v python3)"

work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/pipe-get-started.XXXXXX")}"
mkdir -p "$work"
if [ -n "$(ls -A "$work")" ]; then
    echo "run_get_started.sh: '$work' is not empty; give a new or empty directory" >&2
    exit 1
fi
cp -R "$here/get-started/." "$work/"
cd "$work"
echo "get-started example in $work"

step() {
    printf '\n$ %s\n' "$*"
    "$@"
}

step git init -q
git config user.email >/dev/null || git config user.email "demo@example.invalid"
git config user.name >/dev/null || git config user.name "pipe demo"
step pipe init
step "$python" src/generate.py
step pipe add data/raw.csv
step pipe repro
step git add -A
git commit -q -m "get-started baseline"

lock_before="$(mktemp)"
cp pipeline.lock "$lock_before"
step pipe repro
if ! cmp -s pipeline.lock "$lock_before"; then
    rm -f "$lock_before"
    echo "run_get_started.sh: the second 'pipe repro' changed pipeline.lock; it should run nothing" >&2
    exit 1
fi
rm -f "$lock_before"

printf '\n$ # set train.lr to 0.3 in params.yaml\n'
"$python" - <<'PY'
import pathlib
import re

path = pathlib.Path("params.yaml")
text, count = re.subn(r"(?m)^(  lr:)\s*[0-9.eE+-]+", r"\1 0.3", path.read_text())
if count != 1:
    raise SystemExit("run_get_started.sh: could not find train.lr in params.yaml")
path.write_text(text)
PY
step pipe status
step pipe repro
step pipe status
step cat metrics.json
printf '\nDone: the example project is in %s\n' "$work"
