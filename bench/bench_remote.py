"""Remote workloads: push, no-op push and pull of 10,000 small files to a local dir and to moto S3.

Run:  python bench/bench_remote.py [--files 10000] [--repeat 3] [--remotes local,s3]
The remote workloads of bench_scale.py: each row prints pipe and dvc (with dvc-s3 for the S3
rows; see bench/common.py) medians, peak RSS, the S3 requests counted in moto's request log,
pipe/dvc, and the ratio to `tar cf` / `tar xf` of the tree for the local remote.
moto's server (`moto[server]`, from the test extra) is started on a free loopback port and
stopped at the end. Benchmark a normal install (`pip install .`), not an editable one.
"""

from __future__ import annotations

from bench_scale import measure_all, parse_args
from common import print_rows


def main() -> None:
    args = parse_args(files=10_000, only="push,pull", remotes="local,s3")
    print_rows(f"pipe remote transfers at {args.files} files (medians of {args.repeat})", measure_all(args))


if __name__ == "__main__":
    main()
