"""Data-tracking workloads (issue: core): add, status, checkout on 10,000 small files and one big file.

Run:  python bench/bench_core.py [--files 10000] [--big-mib 1024] [--repeat 3]
Times `pipe` and, when found, `dvc` (see bench/common.py) on identical data in separate
repositories, and prints medians and pipe/dvc ratios. Benchmark a normal install
(`pip install .`), not an editable one.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import Timing, available_tools, pipe_bin, print_table, run, time_runs


def make_files(root: Path, count: int, seed: int = 7) -> None:
    """`count` files of 1-4 KiB in 100 subdirectories, deterministic content."""
    rnd = random.Random(seed)
    for i in range(count):
        d = root / f"{i % 100:02}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:05}.bin").write_bytes(rnd.randbytes(rnd.randint(1024, 4096)))


def make_big(path: Path, mib: int) -> None:
    """One file of `mib` MiB of random data, written in 16 MiB blocks."""
    block = os.urandom(16 << 20)
    with open(path, "wb") as f:
        f.writelines(block for _ in range(max(1, mib // 16)))


def new_repo(base: Path, tool: str, exe: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=base))
    run(["git", "init", "-q"], root)
    run([exe, "init"], root)
    if tool == "dvc":
        run([exe, "config", "core.autostage", "false"], root)
    return root


def dir_workloads(base: Path, tool: str, exe: str, files: int, repeat: int) -> dict[str, float]:
    """add / status / status after one change / checkout of the small-files directory."""
    times: dict[str, float] = {}
    root = new_repo(base, tool, exe)
    data = root / "data" / "images"

    def fresh() -> None:
        for p in (root / "data",):
            shutil.rmtree(p, ignore_errors=True)
        cache = root / (".pipe/cache" if tool == "pipe" else ".dvc/cache")
        shutil.rmtree(cache, ignore_errors=True)
        for memo in (root / ".pipe/tmp", root / ".dvc/tmp"):
            shutil.rmtree(memo, ignore_errors=True)
        make_files(data, files)

    times["add"] = time_runs(lambda: run([exe, "add", "data/images"], root), setup=fresh, repeat=repeat)
    run([exe, "status"], root)  # settle memo entries that were too new to trust
    times["status (nothing changed)"] = time_runs(lambda: run([exe, "status"], root), repeat=repeat)
    victim = data / "42" / "00042.bin"

    def touch_one() -> None:
        victim.write_bytes(os.urandom(2048))

    times["status (one file changed)"] = time_runs(lambda: run([exe, "status"], root), setup=touch_one, repeat=repeat)
    run([exe, "add", "data/images"], root)
    times["checkout after rm -rf"] = time_runs(
        lambda: run([exe, "checkout"], root), setup=lambda: shutil.rmtree(data), repeat=repeat
    )
    return times


def big_workload(base: Path, tool: str, exe: str, mib: int, repeat: int) -> float:
    root = new_repo(base, tool, exe)

    def fresh() -> None:
        shutil.rmtree(root / (".pipe/cache" if tool == "pipe" else ".dvc/cache"), ignore_errors=True)
        for memo in (root / ".pipe/tmp", root / ".dvc/tmp"):
            shutil.rmtree(memo, ignore_errors=True)
        for p in root.glob("big.bin*"):
            p.unlink()
        make_big(root / "big.bin", mib)
        subprocess.run(["sync"], check=False)

    return time_runs(lambda: run([exe, "add", "big.bin"], root), setup=fresh, repeat=repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tools = available_tools()
    with tempfile.TemporaryDirectory(prefix="pipe-bench-") as tmp:
        base = Path(tmp)
        results = {t: dir_workloads(base, t, exe, args.files, args.repeat) for t, exe in tools.items()}
        timings = [
            Timing(f"{name}, {args.files} files", results["pipe"][name], results.get("dvc", {}).get(name))
            for name in results["pipe"]
        ]
        if args.big_mib:
            big = {t: big_workload(base, t, exe, args.big_mib, args.repeat) for t, exe in tools.items()}
            timings.append(Timing(f"add one {args.big_mib} MiB file", big["pipe"], big.get("dvc")))
            src = base / "read-speed.bin"
            make_big(src, args.big_mib)
            cat = time_runs(lambda: subprocess.run(f"cat {src} > /dev/null", shell=True, check=True),
                            repeat=args.repeat)
            timings.append(Timing(f"cat of the {args.big_mib} MiB file (read limit)", cat, None))
            timings.append(Timing("hashing only: pipe status after add", _hash_only(base, args.big_mib, args.repeat), None))
    print_table("pipe data tracking (median seconds)", timings)


def _hash_only(base: Path, mib: int, repeat: int) -> float:
    """Hash a big file with no memo and nothing to store: the hashing speed alone."""
    exe = pipe_bin()
    root = new_repo(base, "pipe", exe)
    make_big(root / "big.bin", mib)
    run([exe, "add", "big.bin"], root)
    return time_runs(
        lambda: run([exe, "status"], root),
        setup=lambda: shutil.rmtree(root / ".pipe/tmp", ignore_errors=True),
        repeat=repeat,
    )


if __name__ == "__main__":
    main()
