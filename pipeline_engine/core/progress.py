"""The Progress protocol that long operations report to; the CLI supplies a rich-backed one."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullProgress", "Progress", "ProgressTask"]


class ProgressTask(Protocol):
    """One bar: advanced as work completes, closed when done."""

    def advance(self, n: int = 1, *, nbytes: int = 0) -> None:
        """Record `n` more units done, `nbytes` bytes of data among them (shown with a rate).

        May be called from worker threads; calls after `close()` are ignored.
        """

    def close(self) -> None:
        """Finish the bar."""


class Progress(Protocol):
    """Creates progress tasks; implementations decide whether and how to show them."""

    def task(self, description: str, total: int | None = None, *, unit: str = "files") -> ProgressTask:
        """Start a task of `total` units (None when unknown)."""
        ...


class _NullTask:
    def advance(self, n: int = 1, *, nbytes: int = 0) -> None:
        return None

    def close(self) -> None:
        return None


class NullProgress:
    """Shows nothing; the default for library callers and tests."""

    def task(self, description: str, total: int | None = None, *, unit: str = "files") -> ProgressTask:
        """Return a task that ignores every update."""
        return _NullTask()
