"""Data-tracking workloads: add, status, checkout (copy and hardlink) of 10,000 small files, one big file.

Run:  python bench/bench_core.py [--files 10000] [--big-mib 512] [--repeat 3] [--only ...]
The workloads of bench_scale.py without the remote ones, at 10,000 files: each row prints pipe
and dvc (when found; see bench/common.py) medians, peak RSS, pipe/dvc, and the ratio to the limit
measured in the same rounds (cp -r of the tree, find | wc -l, cat of the big file).
Benchmark a normal install (`pip install .`), not an editable one.
"""

from __future__ import annotations

from bench_scale import measure_all, parse_args
from common import print_rows


def main() -> None:
    args = parse_args(files=10_000, only="add,status,status-changed,checkout,gc,checkout-hardlink,big",
                      remotes="", big_mib=512)
    print_rows(f"pipe data tracking at {args.files} files (medians of {args.repeat})", measure_all(args))


if __name__ == "__main__":
    main()
