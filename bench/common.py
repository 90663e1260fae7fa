"""Shared benchmark helpers: find the tools, time commands, print medians and pipe/dvc ratios.

Every workload is timed for `pipe` and, when it is installed, `dvc`, in the same run, on the same
machine, so the ratio is meaningful even on a noisy machine. `dvc` is looked up as
$PIPE_BENCH_DVC, then on PATH. `pipe` is the one on PATH unless $PIPE_BENCH_PIPE is set.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Timing", "available_tools", "dvc_bin", "pipe_bin", "print_table", "run", "time_runs"]


def pipe_bin() -> str:
    """Path of the pipe executable to benchmark."""
    found = os.environ.get("PIPE_BENCH_PIPE") or shutil.which("pipe")
    if not found:
        raise SystemExit("bench: 'pipe' not found; install the project with 'pip install .'")
    return found


def dvc_bin() -> str | None:
    """Path of a dvc executable, or None when dvc is not installed."""
    return os.environ.get("PIPE_BENCH_DVC") or shutil.which("dvc")


def available_tools() -> dict[str, str]:
    """The tools to time: pipe, and dvc when it is installed; printed, so a run says what it compared."""
    found = {"pipe": pipe_bin()}
    if dvc := dvc_bin():
        found["dvc"] = dvc
    print(f"tools: {found}")
    return found


def run(args: Sequence[str], cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command quietly; fail loudly (with its output) when `check` and it fails."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PIPE_NO_PROGRESS": "1"}
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args)} failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass(frozen=True)
class Timing:
    """Median seconds of a workload for each tool."""

    workload: str
    pipe: float
    dvc: float | None

    @property
    def ratio(self) -> float | None:
        """pipe time / dvc time (lower is better for pipe)."""
        return None if not self.dvc else self.pipe / self.dvc


def time_runs(action: Callable[[], object], *, setup: Callable[[], object] | None = None, repeat: int = 3) -> float:
    """Median wall time of `action` over `repeat` runs, calling `setup` (untimed) before each."""
    samples = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def print_table(title: str, timings: Sequence[Timing]) -> None:
    """Print one plain-text table of medians and ratios."""
    print(f"\n{title}")
    print(f"{'workload':<44} {'pipe (s)':>9} {'dvc (s)':>9} {'pipe/dvc':>9}")
    for t in timings:
        dvc = f"{t.dvc:9.3f}" if t.dvc is not None else f"{'-':>9}"
        ratio = f"{t.ratio:9.3f}" if t.ratio is not None else f"{'-':>9}"
        print(f"{t.workload:<44} {t.pipe:9.3f} {dvc} {ratio}")
