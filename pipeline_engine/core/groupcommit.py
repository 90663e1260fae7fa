"""A thread that commits, in one call, everything handed to it since its last commit (group commit).

For work whose cost is mostly per call, not per item: `ObjectStore.ingest` flushes the whole
filesystem (`syncfs`) before it renames copies into place. On a busy disk one flush can take
long; the copies made meanwhile then share the next flush instead of each batch waiting for its
own, and on an idle disk flushes are quick, so little is left to commit when the producer ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Runs `commit(items)` in a thread of its own over whatever `put` handed over since the last run.

    `drop(items)` disposes of items that will never be committed (after a failure or an abort).
    `put` waits while `limit` items wait, so a slow commit bounds what the producer holds.
    """

    def __init__(
        self, commit: Callable[[list[T]], None], drop: Callable[[Sequence[T]], None], *, limit: int
    ) -> None:
        self._commit = commit
        self._drop = drop
        self._limit = limit
        self._cond = threading.Condition()
        self._waiting: list[T] = []
        self._closed = False
        self._error: BaseException | None = None
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="pipe-group-commit", daemon=True)
        self._thread.start()

    def put(self, items: Sequence[T]) -> None:
        """Hand `items` over. Raises the thread's failure, if any (then `items` are dropped)."""
        with self._cond:
            while len(self._waiting) >= self._limit and self._error is None:
                self._cond.wait()
            error = self._error
            if error is None:
                self._waiting += items
                self._cond.notify_all()
                return
        self._drop(items)
        raise error

    def finish(self, *, abort: bool = False) -> None:
        """Commit what waits (with `abort`: drop it), then stop the thread.

        Raises: the thread's failure, unless `abort` (the caller is failing already).
        """
        with self._cond:
            self._closed = True
            dropped, self._waiting = (self._waiting, []) if abort else ([], self._waiting)
            self._cond.notify_all()
        self._drop(dropped)
        # Waits on the condition, not `Thread.join`: a join that an interrupt ends can leave the
        # thread marked as stopped while it still commits (CPython 3.11), and a second `finish`
        # (the abort after that interrupt) would return before the commit ended.
        with self._cond:
            while not self._ended:
                self._cond.wait()
        if self._error is not None and not abort:
            raise self._error

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                batch, self._waiting = self._waiting, []
                self._cond.notify_all()
            if not batch:
                return
            try:
                self._commit(batch)
            except BaseException as exc:  # handed to the producer by `put` or `finish`
                with self._cond:
                    self._error = exc
                    dropped, self._waiting = self._waiting, []
                    self._cond.notify_all()
                self._drop(dropped)
                return
