"""Issue 13 at scale: every data command on 10,000 to 1,000,000 small files, time, peak RSS, limit ratio.

Run:  python bench/bench_scale.py [--files 100000] [--repeat 3] [--tools pipe,dvc] [--timeout 1800]
                                  [--remotes local,s3] [--only add,status,...] [--big-mib 0]
                                  [--base DIR] [--keep] [--tidy] [--healthy-us 75]

Generates a deterministic tree of `--files` files of 1-4 KiB (bench/datasets.py), then measures,
in interleaved rounds (bench/workloads.py): add; no-op status; status after one change; checkout
after the tree was moved away; gc; push to each remote in `--remotes` (S3 is a moto server on
loopback whose requests are counted), a no-op push, pull into a fresh clone; checkout with
cache.type hardlink; and, with --big-mib, add of one big file. Each row prints median seconds,
the largest peak RSS and S3 requests per tool, pipe/dvc, and (time - start-up) / the physical
limit measured in the same rounds (cp -r, find | wc -l, tar cf, tar xf, cat), marked `?` when
the disk was unhealthy (bench/limits.py). A tool passing --timeout is dropped from later rows.
The data lives under --base (default: a new directory in $TMPDIR), deleted at the end unless
--keep. 1,000,000 files take ~4 GB per copy of the tree and every round keeps several (references,
clones, moved trees): at that size use --repeat 1 --tidy (and --tools pipe); not for CI.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import Row, available_tools, print_rows
from limits import Disk
from remotes import MotoServer, RemoteTarget
from workloads import Bench

WORKLOADS = ("add", "status", "status-changed", "checkout", "gc", "push", "pull", "checkout-hardlink", "big")


def parse_args(argv: list[str] | None = None, *, files: int = 100_000, only: str = ",".join(WORKLOADS),
               remotes: str = "local", big_mib: int = 0) -> argparse.Namespace:
    """The options of every data benchmark; bench_core and bench_remote change the defaults."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=files)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tools", default="pipe,dvc", help="comma-separated subset of pipe,dvc")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per command before it is killed")
    parser.add_argument("--remotes", default=remotes, help="comma-separated: local, s3")
    parser.add_argument("--only", default=only, help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--big-mib", type=int, default=big_mib, help="size of the big-file add (0: skip)")
    parser.add_argument("--base", type=Path, help="directory for the data (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the data at the end")
    parser.add_argument("--tidy", action="store_true",
                        help="delete each workload's leftovers after its rows (needed at 1,000,000 files)")
    parser.add_argument("--healthy-us", type=float, default=75.0,
                        help="slowest cp -r rate (us per file) of the disk probe still called healthy")
    return parser.parse_args(argv)


def header(args: argparse.Namespace, tools: dict[str, str]) -> None:
    """What was measured, where and under which load: printed before the rows."""
    versions = {t: subprocess.run([exe, "--version"], check=False, capture_output=True, text=True)
                .stdout.strip() for t, exe in tools.items()}
    print(f"{_now_and_load()}; {args.files} files; {args.repeat} rounds; versions {versions}")


def _now_and_load() -> str:
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
            f"load {' '.join(load)} on {os.cpu_count()} cores")


def measure_all(args: argparse.Namespace) -> list[Row]:
    """Run the selected workloads; returns the rows (also printed as they finish)."""
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = wanted - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"bench: unknown workloads {sorted(unknown)}; choose from {','.join(WORKLOADS)}")
    chosen = {t.strip() for t in args.tools.split(",")}
    tools = {t: exe for t, exe in available_tools().items() if t in chosen}
    header(args, tools)
    base = args.base or Path(tempfile.mkdtemp(prefix="pipe-bench-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    stops: list[Callable[[], object]] = []
    try:
        bench = Bench(base, tools, args.files, repeat=args.repeat, timeout=args.timeout,
                      disk=Disk(base, healthy_us=args.healthy_us), tidy=args.tidy)
        steps: list[tuple[str, Callable[[], object]]] = [
            ("add", bench.add), ("status", bench.status), ("status-changed", bench.status_changed),
            ("checkout", bench.checkout), ("gc", bench.gc),
        ]
        for kind in (k.strip() for k in args.remotes.split(",") if k.strip()):
            server = None
            if kind == "s3" and wanted & {"push", "pull"}:
                server = MotoServer(base / "moto.log")
                stops.append(server.stop)
            target = RemoteTarget(kind, base, server)
            steps += [("push", functools.partial(bench.push, target)), ("pull", functools.partial(bench.pull, target))]
        steps.append(("checkout-hardlink", lambda: bench.checkout("hardlink")))
        if args.big_mib:
            steps.append(("big", lambda: bench.big(args.big_mib)))
        if "add" not in wanted and wanted - {"big"}:
            bench.prepare()
        for name, step in steps:
            if name in wanted and bench.active():
                step()
        print(f"finished {_now_and_load()}")
        print(f"disk: {bench.disk.unhealthy_rounds} unhealthy probe(s) or reference(s); their rows are marked '?'")
        return bench.rows
    finally:
        for stop in stops:
            stop()
        if not args.keep:
            print(f"deleting {base} (the disk may be slow for a few minutes after this)")
            shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    args = parse_args()
    rows = measure_all(args)
    print_rows(f"pipe vs dvc at {args.files} files (medians of {args.repeat})", rows)


if __name__ == "__main__":
    main()
