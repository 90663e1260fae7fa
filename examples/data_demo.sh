#!/usr/bin/env bash
# Data tracking without a pipeline: add, status, checkout, remove, gc, on generated files.
#   examples/data_demo.sh [DIR]     # DIR: a new or empty directory (default: a temp dir)
set -euo pipefail
command -v pipe >/dev/null || { echo "data_demo.sh: 'pipe' is not on PATH ('pip install .')" >&2; exit 1; }
python="$(command -v python || command -v python3)"
work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/pipe-data-demo.XXXXXX")}"
mkdir -p "$work" && cd "$work"
echo "data demo in $work"
step() { printf '\n$ %s\n' "$*"; "$@"; }

step git init -q
git config user.email >/dev/null || git config user.email "demo@example.invalid"
git config user.name >/dev/null || git config user.name "pipe demo"
step pipe init
# 1,000 small "images" and one 20 MiB binary, deterministic.
"$python" - <<'PY'
import os, random
rnd = random.Random(1)
os.makedirs("data/images", exist_ok=True)
for i in range(1000):
    with open(f"data/images/{i:04}.jpg", "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 4096)))
with open("data/big.bin", "wb") as f:
    f.write(rnd.randbytes(20 << 20))
PY
step pipe add data/images data/big.bin
step git add -A
git commit -q -m "data"
step pipe status
echo x >> data/images/0001.jpg && rm data/images/0002.jpg && touch data/images/new.jpg
step pipe -v status
step pipe add data/images
git commit -q -am "data v2"
step rm -rf data/images data/big.bin    # the data; the .pipe pointers stay
step pipe checkout
step pipe status --exit-code
step pipe remove data/big.bin.pipe
step pipe gc --workspace --dry
step pipe gc --workspace --force
step pipe cache verify
echo
echo "data demo finished in $work"
