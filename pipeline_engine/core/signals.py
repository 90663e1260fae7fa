"""Stop signals: SIGTERM and SIGHUP are handled like Ctrl-C, and can be held back while threads work.

Ctrl-C raises `KeyboardInterrupt` in the main thread; after `install()`, SIGTERM and SIGHUP
raise `Interrupt` (a `KeyboardInterrupt`) the same way, so every command's `finally` blocks and
context managers (the project lock, temporary files) run for all three. The exit code is
`128 + signum`: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP, as shells report them.

An exception raised asynchronously inside `concurrent.futures` or `threading` internals can
leave one of their locks held, and a worker then blocks forever on it (seen as a `pipe repro -j 2`
that never exits after Ctrl-C). Code that waits on threads uses `deferred()`: inside it, a stop
signal is only recorded, and the code polls `received()` and stops its workers itself.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "Interrupt", "deferred", "exit_code", "install"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupt(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM or SIGHUP) received by pipe; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(exc: BaseException) -> int:
    """The exit code for an interrupt: 128 + the signal number (plain Ctrl-C: 130)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def install() -> None:
    """Make SIGTERM and SIGHUP raise `Interrupt` in the main thread (not when they are ignored, e.g. nohup)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _raise)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupt(signum)


@contextlib.contextmanager
def deferred() -> Iterator[Callable[[], int | None]]:
    """Within the block, stop signals are recorded instead of raised; yields `received()`.

    `received()` returns the first stop signal received so far, or None. The previous handlers
    come back on exit. Outside the main thread (where handlers cannot be set) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    got: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in STOP_SIGNALS:
            handler = signal.getsignal(sig)
            if handler is signal.SIG_IGN:
                continue  # nohup: an ignored hang-up stays ignored
            previous[sig] = handler
            signal.signal(sig, record)
        yield lambda: got[0] if got else None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
