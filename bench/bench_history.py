"""Reading history (issue 10): metrics and params across many commits, never checking one out.

Run:  python bench/bench_history.py [--commits 200] [--repeat 3]
Builds one git repository per tool with `--commits` commits, each changing params.yaml and the
metrics file pipeline.yaml (or dvc.yaml) declares at the top level, then times `metrics show -A`
(JSON and table), `metrics diff` against the first commit and `params diff`, for `pipe` and,
when found, `dvc` (see bench/common.py). The issue's bar: `pipe metrics show -A` over 200 commits
in under 1 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from common import Timing, available_tools, print_table, run, time_runs

PIPELINE = """stages:
  train:
    cmd: python train.py
    params: [train.lr, train.epochs]
    deps: [train.py]
metrics: [eval/metrics.json]
"""


def build_repo(base: Path, tool: str, exe: str, commits: int) -> Path:
    """A repository whose `commits` commits each change the params and the metrics (committed to git)."""
    root = base / tool
    root.mkdir()
    env_args = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    run(["git", "init", "-q"], root)
    run([exe, "init"], root)
    (root / ("dvc.yaml" if tool == "dvc" else "pipeline.yaml")).write_text(PIPELINE)
    (root / "train.py").write_text("print('train')\n")
    (root / "eval").mkdir()
    for i in range(commits):
        (root / "params.yaml").write_text(f"train:\n  lr: {0.001 * (i + 1):.4f}\n  epochs: {10 + i % 5}\n")
        metrics = {"acc": round(0.5 + 0.4 * i / commits, 6), "loss": {"train": 1.0 / (i + 1), "test": 1.2 / (i + 1)}}
        (root / "eval" / "metrics.json").write_text(json.dumps(metrics))
        run(["git", "add", "-A"], root)
        run(["git", *env_args, "commit", "-q", "-m", f"experiment {i}"], root)
    return root


def workloads(root: Path, exe: str, commits: int, repeat: int) -> dict[str, float]:
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=root, capture_output=True,
                           text=True, check=True).stdout.split()[0]
    cases = {
        f"metrics show -A --json, {commits} commits": [exe, "metrics", "show", "-A", "--json"],
        f"metrics show -A (table), {commits} commits": [exe, "metrics", "show", "-A"],
        "metrics diff FIRST HEAD --json": [exe, "metrics", "diff", first, "HEAD", "--json"],
        "params diff HEAD~1 --json": [exe, "params", "diff", "HEAD~1", "--json"],
    }
    return {name: time_runs(lambda args=args: run(args, root), repeat=repeat) for name, args in cases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tools = available_tools()
    with tempfile.TemporaryDirectory(prefix="pipe-bench-history-") as tmp:
        results = {t: workloads(build_repo(Path(tmp), t, exe, args.commits), exe, args.commits, args.repeat)
                   for t, exe in tools.items()}
    timings = [Timing(name, results["pipe"][name], results.get("dvc", {}).get(name)) for name in results["pipe"]]
    print_table("pipe reading history (median seconds)", timings)


if __name__ == "__main__":
    main()
