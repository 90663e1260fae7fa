"""core.forked: shares of work in forked processes; a failed or killed child's share is done again
by the caller, errors reach the caller with their own types, nothing is left running, and a caller
with threads of its own never forks."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from pipeline_engine.core import forked


@pytest.fixture
def single_threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a `pipe` command: the test runner's own threads must not stop the fork."""
    monkeypatch.setattr(forked.threading, "active_count", lambda: 1)


def _no_children_left() -> bool:
    return multiprocessing.active_children() == []


def test_each_share_runs_once_in_order_and_all_but_the_first_in_other_processes(single_threaded: None) -> None:
    here = os.getpid()
    got = forked.map_forked(lambda k: (k, os.getpid()), 3)
    assert [k for k, _ in got] == [0, 1, 2]
    assert got[0][1] == here
    assert len({pid for _, pid in got}) == 3
    assert _no_children_left()


def test_a_child_that_raises_has_its_share_done_again_here(single_threaded: None) -> None:
    here = os.getpid()

    def share(k: int) -> tuple[int, int]:
        if k == 1 and os.getpid() != here:
            raise OSError("the child cannot")
        return k, os.getpid()

    assert forked.map_forked(share, 2) == [(0, here), (1, here)]


def test_an_error_every_process_meets_reaches_the_caller_with_its_type(single_threaded: None) -> None:
    class Refused(Exception):
        def __init__(self, path: str, why: str) -> None:  # does not pickle back: it is raised here instead
            super().__init__(f"{path}: {why}")

    def share(k: int) -> int:
        if k == 1:
            raise Refused("data/f1", "changed while it was read")
        return k

    with pytest.raises(Refused, match="data/f1: changed"):
        forked.map_forked(share, 2)
    assert _no_children_left()


def test_a_killed_child_has_its_share_done_again_here(single_threaded: None) -> None:
    here = os.getpid()

    def share(k: int) -> int:
        if os.getpid() != here:
            os.kill(os.getpid(), signal.SIGKILL)
        return k * 10

    assert forked.map_forked(share, 3) == [0, 10, 20]
    assert _no_children_left()


def test_an_interrupt_in_the_caller_stops_and_reaps_the_children(single_threaded: None, tmp_path: Path) -> None:
    here = os.getpid()
    started = tmp_path / "started"

    def share(k: int) -> int:
        if os.getpid() != here:
            started.touch()
            time.sleep(60)  # stopped by the caller, long before this ends
            return k
        while not started.exists():
            time.sleep(0.01)
        raise KeyboardInterrupt

    begun = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        forked.map_forked(share, 2)
    assert time.monotonic() - begun < 30  # not the child's 60 s: it was stopped
    assert _no_children_left()


def test_a_caller_with_threads_of_its_own_runs_every_share_itself() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert forked.fork_jobs(1_000_000, min_per_process=10) == 1
        assert {pid for pid in forked.map_forked(lambda k: os.getpid(), 3)} == {os.getpid()}
    finally:
        stop.set()
        other.join()


def test_fork_jobs_gives_each_process_at_least_its_minimum(single_threaded: None) -> None:
    assert forked.fork_jobs(10, min_per_process=2000) == 1
    cpus = len(os.sched_getaffinity(0))
    assert forked.fork_jobs(10**6, min_per_process=2000) == min(forked.MAX_FORKS, cpus)
    assert forked.fork_jobs(4000, min_per_process=2000) == min(2, cpus)


def test_free_cores_are_counted_from_the_tasks_running_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline_engine.core.forked.os.sched_getaffinity", lambda _pid: {0, 1}, raising=False)

    def loadavg(running: int) -> None:
        def fake(path: str, mode: str) -> io.BytesIO:
            assert path == "/proc/loadavg"
            return io.BytesIO(f"4.00 3.00 2.00 {running}/300 4242\n".encode())

        monkeypatch.setattr(forked, "open", fake, raising=False)  # the module's own `open` only

    loadavg(1)
    assert forked.free_cores() == 2, "only this process runs: the other core is free"
    loadavg(3)
    assert forked.free_cores() == 1, "two others run: no core to fork onto"


def test_a_progress_bar_on_a_terminal_starts_no_thread_so_a_big_add_still_forks() -> None:
    """A 1M-file add shows its bar after a second; with rich's refresh thread running, every later
    batch would be copied by one process (`fork_jobs` refuses to fork beside other threads)."""
    from rich.console import Console

    from pipeline_engine.cli import render

    out = io.StringIO()
    bars = render.RichProgress(delay=0.0, console=Console(file=out, force_terminal=True, width=100))
    before = threading.active_count()
    task = bars.task("hashing data", 3, unit="files")
    task.advance()
    time.sleep(0.15)  # past one redraw interval
    task.advance(2)
    assert threading.active_count() == before
    assert "hashing data" in out.getvalue(), "the bar was drawn all the same"
    task.close()


def test_what_a_killed_child_left_is_swept_by_its_pid_before_its_share_is_redone(
    single_threaded: None, tmp_path: Path
) -> None:
    from pipeline_engine.core.fsutil import temp_name
    from pipeline_engine.core.tempsweep import sweep_pid

    here = os.getpid()
    mine = tmp_path / temp_name()
    mine.touch()  # the caller's own temporary file: never the sweep's business

    def share(k: int) -> list[str]:
        if os.getpid() != here:
            (tmp_path / temp_name()).write_bytes(b"half a cop")  # named by the child's pid
            os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer: no clean-up runs
        return sorted(p.name for p in tmp_path.iterdir())

    got = forked.map_forked(share, 2, sweep=lambda pid: sweep_pid(pid, [str(tmp_path)]))
    assert got[1] == [mine.name], "the child's half-made file was gone before its share was redone here"
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name]


def test_a_failing_caller_waits_for_a_child_with_a_big_result_without_a_deadlock(single_threaded: None) -> None:
    """The caller's share fails while a child holds a result larger than a pipe's buffer: the
    caller waits for the child (not stopping it mid-clean-up), so the child must not wait on it."""

    def share(k: int) -> list[str]:
        if k == 0:
            time.sleep(0.2)  # the child is sending by now
            raise OSError(28, "No space left on device")
        return ["x" * 40] * 50_000  # ~2 MB pickled

    begun = time.monotonic()
    with pytest.raises(OSError, match="No space"):
        forked.map_forked(share, 2)
    assert time.monotonic() - begun < 30
    assert _no_children_left()
