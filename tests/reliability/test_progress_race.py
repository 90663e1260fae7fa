"""Progress bars driven from many threads at once: every bar ends, no frozen display stays on the terminal.

Hashing and transfers advance their bars from worker pools, and `repro -j` hashes the outs of several
stages together; two threads that both started "the" display left one that nobody stopped, and its
bars stayed frozen on the terminal (seen as 7-8 stuck bars after `pipe repro`).
"""

from __future__ import annotations

import io
import os
import random
import sys
import threading
from collections.abc import Iterator

import pytest
from rich.console import Console
from rich.live import _RefreshThread

from pipeline_engine.cli import render

pytestmark = pytest.mark.reliability

TRIALS = int(os.environ.get("PIPE_TRIALS", "5"))
THREADS = 8


def _live_refreshers() -> list[threading.Thread]:
    """Display refresh threads still running; a stopped display's thread ends within one refresh period."""
    for t in threading.enumerate():
        if isinstance(t, _RefreshThread):
            t.join(timeout=5)
    return [t for t in threading.enumerate() if isinstance(t, _RefreshThread) and t.is_alive()]


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads every microsecond, so a race in the bar bookkeeping shows within a few trials."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("busy_switching")
@pytest.mark.parametrize("trial", range(TRIALS))
def test_bars_from_many_threads_all_end_and_leave_no_display(trial: int) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    bars = render.RichProgress(delay=0.0, console=console)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(i: int, steps: int) -> None:
        try:
            start.wait()
            for round_ in range(3):
                task = bars.task(f"hashing dir{i}-{round_}", steps, unit="files")
                for _ in range(steps):
                    task.advance(nbytes=4096)
                task.close()
                task.advance()  # a late worker after close: ignored
        except BaseException as exc:  # noqa: BLE001 - reported in the assertion
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, rng.randint(1, 40))) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, f"seed {seed}: {errors!r}"
    assert bars.bar is None, f"seed {seed}: the display was not stopped after every bar closed"
    assert not console._live_stack, f"seed {seed}: {len(console._live_stack)} displays left on the terminal"
    assert not _live_refreshers(), f"seed {seed}: a display is still refreshing (frozen bars)"


def test_bars_show_bytes_and_rate_for_data(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    bars = render.RichProgress(delay=0.0, console=console)
    task = bars.task("push to origin", 4, unit="objects")
    task.advance(nbytes=3 * 1024 * 1024)
    task.advance(nbytes=1024 * 1024)
    assert bars.bar is not None
    shown = io.StringIO()
    Console(file=shown, width=120).print(bars.bar.make_tasks_table(bars.bar.tasks))
    task.close()
    text = shown.getvalue()
    assert "2/4" in text and "objects" in text, text
    assert "4.0 MiB" in text and "/s" in text, text


def test_no_bars_when_stderr_is_not_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    bars = render.RichProgress(delay=0.0, console=console)
    task = bars.task("hashing data", 3)
    for _ in range(3):
        task.advance(nbytes=10)
    task.close()
    assert bars.bar is None and console.file.getvalue() == ""  # type: ignore[attr-defined]
