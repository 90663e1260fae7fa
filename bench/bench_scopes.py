"""Revision scopes (issue 10): gc, push and fetch over every commit, reading history without checkouts.

Run:  python bench/bench_scopes.py [--commits 200] [--files 20] [--repeat 3]
Builds one git repository per tool: `--files` tracked files and a tracked directory, then
`--commits` commits that each re-add one of the files (every fifth also changes the directory),
with a local-directory remote holding everything (`push -A`). Then times, for `pipe` and, when
found, `dvc` (see bench/common.py): `gc -A -f` with nothing to delete, `push -A` and `fetch -A`
with everything already there, and `fetch -A` into a fresh clone's empty cache.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import Timing, available_tools, print_table, run, time_runs

_GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]


def build_repo(base: Path, tool: str, exe: str, commits: int, files: int) -> Path:
    """The repository of the module docstring, its objects pushed to `base/<tool>-remote`."""
    root = base / tool
    root.mkdir()
    run(["git", "init", "-q"], root)
    run([exe, "init"], root)
    run([exe, "remote", "add", "-d", "store", str(base / f"{tool}-remote")], root)
    for i in range(files):
        (root / f"f{i}.txt").write_text(f"file {i} v0\n")
    (root / "d").mkdir()
    for i in range(30):
        (root / "d" / f"{i}.txt").write_text(f"dir {i} v0\n")
    run([exe, "add", *(f"f{i}.txt" for i in range(files)), "d"], root)
    run(["git", "add", "-A"], root)
    run([*_GIT, "commit", "-q", "-m", "c0"], root)
    for c in range(1, commits):
        k = c % files
        (root / f"f{k}.txt").write_text(f"file {k} v{c}\n")
        changed = [f"f{k}.txt"]
        if c % 5 == 0:
            (root / "d" / f"{c % 30}.txt").write_text(f"dir v{c}\n")
            changed.append("d")
        run([exe, "add", *changed], root)
        run(["git", "add", "-A"], root)
        run([*_GIT, "commit", "-q", "-m", f"c{c}"], root)
    run([exe, "push", "-A"], root)
    return root


def workloads(base: Path, root: Path, tool: str, exe: str, commits: int, repeat: int) -> dict[str, float]:
    clone = base / f"{tool}-clone"
    run(["git", "clone", "-q", str(root), str(clone)], base)
    cache = clone / (".dvc" if tool == "dvc" else ".pipe") / "cache"

    def empty_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    timed = {
        f"gc -A -f, {commits} commits, nothing to delete": (lambda: run([exe, "gc", "-A", "-f"], root), None),
        f"push -A, {commits} commits, all on the remote": (lambda: run([exe, "push", "-A"], root), None),
        f"fetch -A, {commits} commits, into an empty cache": (lambda: run([exe, "fetch", "-A"], clone), empty_cache),
        f"fetch -A, {commits} commits, all in the cache": (lambda: run([exe, "fetch", "-A"], clone), None),
    }
    return {name: time_runs(action, setup=setup, repeat=repeat) for name, (action, setup) in timed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tools = available_tools()
    with tempfile.TemporaryDirectory(prefix="pipe-bench-scopes-") as tmp:
        base = Path(tmp)
        results = {t: workloads(base, build_repo(base, t, exe, args.commits, args.files), t, exe, args.commits,
                                args.repeat)
                   for t, exe in tools.items()}
    timings = [Timing(name, results["pipe"][name], results.get("dvc", {}).get(name)) for name in results["pipe"]]
    print_table("pipe revision scopes (median seconds)", timings)


if __name__ == "__main__":
    main()
