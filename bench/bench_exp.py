"""Experiments (issue 11): a queued sweep run two at a time, and `exp show`, for pipe and dvc.

Run:  python bench/bench_exp.py [--experiments 8] [--seconds 1] [--repeat 1]
One git repository per tool with a 4-stage chain `prep -> featurize -> train -> evaluate`, each
stage sleeping `--seconds` (evaluate half that) to stand for real work; prep and featurize read
`prep.size`, train and evaluate `train.lr`. The baseline is reproduced and committed. Then
`--experiments` experiments are queued, each with `prep.size=2` (so the first two stages change,
the same way for all) and its own `train.lr`, and `exp run --run-all -j 2` runs them, timed; then
`exp show` (table) with those experiments, timed. The queue is refilled (untimed) between repeats.
Stages run `python` from PATH, which needs PyYAML (put the project's venv first on PATH).

Measured here (2 cores, shared; --seconds 1, 8 experiments): pipe 11.4 s, dvc 3.67 30.5 s (0.37):
pipe runs prep and featurize once (the first experiment runs alone, the other seven restore them
from the run cache) and then two experiments at a time; `exp show` 0.28 s against 0.90 s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import Timing, available_tools, print_table, run, time_runs

_GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]


def _stage(name: str, seconds: float, dep: str | None, param: str) -> dict[str, object]:
    read = f"open('{dep}').read(); " if dep else ""
    cmd = (f"python -c \"import time, yaml; {read}p = yaml.safe_load(open('params.yaml'));"
           f" time.sleep({seconds}); open('{name}.out', 'w').write(str(p['{param.split('.')[0]}']))\"")
    return {"cmd": cmd, **({"deps": [dep]} if dep else {}), "params": [param], "outs": [f"{name}.out"]}


def build_repo(base: Path, tool: str, exe: str, seconds: float) -> Path:
    """The repository of the module docstring, baseline reproduced and committed."""
    import yaml

    root = base / tool
    root.mkdir()
    run(["git", "init", "-q"], root)
    run([exe, "init"], root)
    (root / "params.yaml").write_text("prep:\n  size: 1\ntrain:\n  lr: 0.1\n")
    stages = {
        "prep": _stage("prep", seconds, None, "prep.size"),
        "featurize": _stage("featurize", seconds, "prep.out", "prep.size"),
        "train": _stage("train", seconds, "featurize.out", "train.lr"),
        "evaluate": _stage("evaluate", seconds / 2, "train.out", "train.lr"),
    }
    (root / ("dvc.yaml" if tool == "dvc" else "pipeline.yaml")).write_text(yaml.safe_dump({"stages": stages}))
    run([exe, "repro"], root)
    run(["git", "add", "-A"], root)
    run([*_GIT, "commit", "-q", "-m", "baseline"], root)
    return root


def _queue(root: Path, exe: str, experiments: int) -> None:
    lrs = ",".join(str(round(0.2 + i / 10, 2)) for i in range(experiments))
    run([exe, "exp", "run", "--queue", "-S", "prep.size=2", "-S", f"train.lr={lrs}"], root)


def _remove_all(root: Path, exe: str) -> None:
    run([exe, "exp", "remove", "-A"], root, check=False)
    run([exe, "exp", "remove", "--queue"], root, check=False)


def workloads(root: Path, tool: str, exe: str, experiments: int, repeat: int) -> dict[str, float]:
    cache = root / (".dvc" if tool == "dvc" else ".pipe") / "cache"

    def fresh() -> None:
        _remove_all(root, exe)
        shutil.rmtree(cache / "runs", ignore_errors=True)  # no run-cache entries left by the last repeat
        _queue(root, exe, experiments)

    run_all = time_runs(lambda: run([exe, "exp", "run", "--run-all", "-j", "2"], root), setup=fresh, repeat=repeat)
    show = time_runs(lambda: run([exe, "exp", "show"], root), repeat=3)
    return {f"exp run --run-all -j 2, {experiments} queued": run_all, f"exp show, {experiments} experiments": show}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    tools = available_tools()
    with tempfile.TemporaryDirectory(prefix="pipe-bench-exp-") as tmp:
        base = Path(tmp)
        results = {t: workloads(build_repo(base, t, exe, args.seconds), t, exe, args.experiments, args.repeat)
                   for t, exe in tools.items()}
    timings = [Timing(name, results["pipe"][name], results.get("dvc", {}).get(name)) for name in results["pipe"]]
    print_table("pipe experiments (median seconds)", timings)


if __name__ == "__main__":
    main()
