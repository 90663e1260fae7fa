"""Shared benchmark helpers: find the tools, run and measure commands, print medians and ratios.

Every workload is timed for `pipe` and, when it is installed, `dvc`, in the same run, on the same
machine, so the ratio is meaningful even on a noisy machine. `dvc` is looked up as
$PIPE_BENCH_DVC, then on PATH. `pipe` is the one on PATH unless $PIPE_BENCH_PIPE is set.

Two ways to measure: `time_runs` (wall time of a Python callable; the older scripts) and `measure`
(one child process: wall time, peak RSS from `os.wait4`, an optional timeout), whose `Sample`s are
summarised into `Row`s that `print_rows` prints beside the ratio to a physical limit (limits.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Row",
    "Sample",
    "Summary",
    "Timing",
    "available_tools",
    "dvc_bin",
    "measure",
    "pipe_bin",
    "print_rows",
    "print_table",
    "run",
    "startup",
    "summarize",
    "time_runs",
]


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


def _env() -> dict[str, str]:
    return {**os.environ, "DVC_NO_ANALYTICS": "1", "PIPE_NO_PROGRESS": "1"}


def run(args: Sequence[str], cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command quietly; fail loudly (with its output) when `check` and it fails."""
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=_env(), check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args)} failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass(frozen=True)
class Sample:
    """One measured command: wall seconds, peak RSS in MiB, and S3 requests when they were counted."""

    seconds: float
    rss_mib: float
    timed_out: bool = False
    requests: int | None = None


def measure(args: Sequence[str], cwd: Path, *, timeout: float | None = None) -> Sample:
    """Run one command and measure it: wall time, and its peak RSS (`ru_maxrss` from `os.wait4`).

    `ru_maxrss` of a reaped child is the largest RSS of that child or of any descendant it waited
    for (not their sum), which is right for single-process tools. The command runs in its own
    process group; after `timeout` seconds that group is killed and the sample is `timed_out`.
    A failing command (not a timeout) stops the benchmark with its output.
    """
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(args), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=_env(),
                                start_new_session=True)
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended at the deadline, between the timer firing and the kill

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)  # blocks until exit: no polling delay in the time
        seconds = time.perf_counter() - start
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must be told
        if proc.returncode != 0 and not fired.is_set():
            out.seek(0)
            text = out.read().decode(errors="replace")[-4000:]
            raise SystemExit(f"bench: {' '.join(args)} failed ({proc.returncode}) in {cwd}:\n{text}")
    return Sample(seconds, usage.ru_maxrss / 1024, timed_out=fired.is_set())


def startup(exe: str, *, repeat: int = 5) -> float:
    """Median seconds of `exe --version`: the start-up cost subtracted before a ratio to a shell tool."""
    return statistics.median(measure([exe, "--version"], Path.cwd()).seconds for _ in range(repeat))


@dataclass(frozen=True)
class Summary:
    """The samples of one tool on one workload: median seconds and requests, largest peak RSS."""

    seconds: float
    rss_mib: float
    requests: float | None
    timed_out: bool
    runs: int


def summarize(samples: Sequence[Sample]) -> Summary:
    """Median time (a timeout counts as its time), largest RSS, median request count."""
    counted = [s.requests for s in samples if s.requests is not None]
    return Summary(
        seconds=statistics.median(s.seconds for s in samples),
        rss_mib=max(s.rss_mib for s in samples),
        requests=statistics.median(counted) if counted else None,
        timed_out=any(s.timed_out for s in samples),
        runs=len(samples),
    )


@dataclass(frozen=True)
class Row:
    """One workload: each tool's summary, and the physical limit it is compared with.

    `limit` is the median seconds of the reference command `limit_name` measured in the same
    rounds; `trusted` is False when the disk was unhealthy in one of those rounds (limits.Disk).
    `startup` (tool -> seconds) is subtracted from a tool's time before it is divided by the limit.
    """

    workload: str
    tools: Mapping[str, Summary]
    limit_name: str = ""
    limit: float | None = None
    trusted: bool = True
    startup: Mapping[str, float] = field(default_factory=dict)

    def limit_ratio(self, tool: str) -> float | None:
        """(tool time - its start-up) / limit time; None without a limit or a finished run."""
        got = self.tools.get(tool)
        if got is None or got.timed_out or not self.limit:
            return None
        return max(got.seconds - self.startup.get(tool, 0.0), 0.0) / self.limit

    def tool_ratio(self) -> float | None:
        """pipe time / dvc time (lower is better for pipe)."""
        pipe, dvc = self.tools.get("pipe"), self.tools.get("dvc")
        if pipe is None or dvc is None or pipe.timed_out or dvc.timed_out or not dvc.seconds:
            return None
        return pipe.seconds / dvc.seconds


def _num(value: float | None, width: int, digits: int = 3, mark: str = "") -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width - len(mark)}.{digits}f}{mark}"


def _tool_cells(row: Row, tool: str) -> str:
    got = row.tools.get(tool)
    if got is None:
        return f"{'-':>9} {'-':>7} {'-':>6}"
    seconds = f"{'>' + format(got.seconds, '.0f'):>9}" if got.timed_out else _num(got.seconds, 9)
    return f"{seconds} {_num(got.rss_mib, 7, 0)} {_num(got.requests, 6, 0)}"


def print_rows(title: str, rows: Sequence[Row]) -> None:
    """Print one table: per tool median s, peak RSS MiB, S3 requests; pipe/dvc; ratio to the limit.

    A ratio whose rounds saw an unhealthy disk is printed with a trailing `?` (not trusted).
    """
    print(f"\n{title}")
    print(f"{'workload':<36} {'pipe s':>9} {'MiB':>7} {'req':>6} {'dvc s':>9} {'MiB':>7} {'req':>6} "
          f"{'pipe/dvc':>9}  {'limit':<9} {'limit s':>8} {'pipe/lim':>9} {'dvc/lim':>9}")
    for r in rows:
        mark = "" if r.trusted else "?"
        print(f"{r.workload:<36} {_tool_cells(r, 'pipe')} {_tool_cells(r, 'dvc')} "
              f"{_num(r.tool_ratio(), 9, mark=mark)}  {r.limit_name or '-':<9} {_num(r.limit, 8)} "
              f"{_num(r.limit_ratio('pipe'), 9, 2, mark)} {_num(r.limit_ratio('dvc'), 9, 2, mark)}")
    print("s: median wall seconds; MiB: largest peak RSS; req: median S3 requests (server log); "
          "x/lim: (time - start-up, --version timed in the same rounds) / limit time; "
          "?: disk unhealthy in a round, not trusted")


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
