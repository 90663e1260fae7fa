"""Pipeline workloads (issue 3): a long stage chain and independent sleeping stages, pipe vs dvc.

Run:  python bench/bench_pipeline.py [--stages 200] [--changed 190] [--parallel 8] [--repeat 3]
                                     [--only chain|parallel]

- chain: `--stages` stages, stage i copies the out of stage i-1. Timed: a no-op `repro` after a
  full run, and `repro` after a second dep of stage `--changed` was edited (that stage and every
  one after it rerun). Target: the no-op repro takes <= 0.1 of dvc's time.
- parallel: `--parallel` independent stages that each `sleep 1`, after their shared input
  changed: `pipe repro -j N` against dvc's sequential `dvc repro`. Target: under 1.5 s for 8.

The same YAML is written as pipeline.yaml and dvc.yaml, each in its own git repository.
Tools are found as described in bench/common.py; benchmark a normal install (`pip install .`).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import Timing, dvc_bin, pipe_bin, print_table, run, time_runs

PIPELINE_FILE = {"pipe": "pipeline.yaml", "dvc": "dvc.yaml"}
_ticks = itertools.count()


def chain_yaml(stages: int, changed: int) -> str:
    """Stage i copies s{i-1}.out; stage `changed` also reads knob.txt, so editing it reruns the tail."""
    lines = ["stages:"]
    for i in range(stages):
        src = "seed.txt" if i == 0 else f"s{i - 1:03}.out"
        deps = [src]
        cmd = f"cp {src} s{i:03}.out"
        if i == changed:
            deps.append("knob.txt")
            cmd = f"cat {src} knob.txt > s{i:03}.out"
        lines += [f"  s{i:03}:", f"    cmd: {cmd}", "    deps:"]
        lines += [f"      - {dep}" for dep in deps]
        lines += ["    outs:", f"      - s{i:03}.out"]
    return "\n".join(lines) + "\n"


def parallel_yaml(stages: int) -> str:
    """`stages` independent stages that sleep one second, all reading tick.txt."""
    lines = ["stages:"]
    for i in range(stages):
        lines += [
            f"  sleep{i}:",
            f"    cmd: sleep 1 && cat tick.txt > slept{i}.txt",
            "    deps:",
            "      - tick.txt",
            "    outs:",
            f"      - slept{i}.txt",
        ]
    return "\n".join(lines) + "\n"


def new_project(base: Path, tool: str, exe: str, pipeline: str, files: dict[str, str]) -> Path:
    """A git repository with `tool init`, the pipeline file and its input files."""
    root = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=base))
    run(["git", "init", "-q"], root)
    run([exe, "init"], root)
    if tool == "dvc":
        run([exe, "config", "core.autostage", "false"], root)
    (root / PIPELINE_FILE[tool]).write_text(pipeline)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def write_unique(path: Path) -> Callable[[], None]:
    """A setup step giving `path` content it never had, so no run cache can answer."""
    return lambda: path.write_text(f"tick {next(_ticks)}\n")


def chain_workloads(base: Path, tool: str, exe: str, args: argparse.Namespace) -> dict[str, float]:
    pipeline = chain_yaml(args.stages, args.changed)
    root = new_project(base, tool, exe, pipeline, {"seed.txt": "seed\n", "knob.txt": "knob 0\n"})
    run([exe, "repro"], root)  # the full first run is not timed
    times = {"no-op repro": time_runs(lambda: run([exe, "repro"], root), repeat=args.repeat)}
    times["repro after one dep changed"] = time_runs(
        lambda: run([exe, "repro"], root), setup=write_unique(root / "knob.txt"), repeat=args.repeat
    )
    return times


def parallel_workload(base: Path, tool: str, exe: str, args: argparse.Namespace) -> float:
    root = new_project(base, tool, exe, parallel_yaml(args.parallel), {"tick.txt": "tick\n"})
    command = [exe, "repro"] + (["-j", str(args.parallel)] if tool == "pipe" else [])
    run(command, root)
    return time_runs(lambda: run(command, root), setup=write_unique(root / "tick.txt"), repeat=args.repeat)


def require_repro(exe: str) -> None:
    """Fail with a clear message when this pipe has no `repro` command yet."""
    proc = run([exe, "repro", "--help"], Path.cwd(), check=False)
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: '{exe} repro' is not available (exit {proc.returncode}); this benchmark needs "
            "`pipe repro` (issue 3): reinstall pipe from a checkout that has it"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", type=int, default=200)
    parser.add_argument("--changed", type=int, default=190, help="the stage whose extra dep is edited")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("chain", "parallel"))
    args = parser.parse_args()
    if not 0 <= args.changed < args.stages:
        parser.error("--changed must name a stage: 0 <= CHANGED < STAGES")
    tools = {"pipe": pipe_bin()}
    require_repro(tools["pipe"])
    if dvc := dvc_bin():
        tools["dvc"] = dvc
    print(f"tools: {tools}")
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="pipe-bench-") as tmp:
        base = Path(tmp)
        if args.only in (None, "chain"):
            chain = {tool: chain_workloads(base, tool, exe, args) for tool, exe in tools.items()}
            tail = args.stages - args.changed
            labels = {
                "no-op repro": f"{args.stages}-stage chain: no-op repro",
                "repro after one dep changed": f"{args.stages}-stage chain: dep of s{args.changed:03} ({tail} rerun)",
            }
            timings += [Timing(labels[k], chain["pipe"][k], chain.get("dvc", {}).get(k)) for k in labels]
        if args.only in (None, "parallel"):
            par = {tool: parallel_workload(base, tool, exe, args) for tool, exe in tools.items()}
            timings.append(Timing(f"{args.parallel} x sleep 1 (pipe -j {args.parallel})", par["pipe"], par.get("dvc")))
    print_table("pipe pipelines (median seconds)", timings)
    print("targets: no-op repro pipe/dvc <= 0.1; the sleeping stages under 1.5 s with -j 8")


if __name__ == "__main__":
    main()
