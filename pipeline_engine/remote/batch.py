"""One bulk transfer's bookkeeping: per-object outcomes, giving up early, and local conditions that stop it.

A bulk transfer goes on past one object's failure, but not past a failure that every other
object would meet too: the first `GIVE_UP` objects all failing (none succeeding) with anything
but "not found" or "corrupt" means no bucket, no permission or no network, and a full disk, a read-only file
system or no file handles left (`FATAL_ERRNOS`) stops it at once, raised as the OSError itself.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from pipeline_engine.core.objectdb import OnDone
from pipeline_engine.errors import CorruptObjectError, ObjectNotFoundError, PipeError, RemoteError

__all__ = ["FATAL_ERRNOS", "GIVE_UP", "Batch"]

#: A bulk transfer whose first this-many objects all fail (and none succeeds) stops.
GIVE_UP = 8
#: Local conditions that fail every object alike: the transfer stops and the OSError reaches the user.
FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE})


class Batch:
    """The outcome of one bulk transfer so far; `wrap` turns a backend error into the caller's PipeError."""

    def __init__(self, wrap: Callable[[str, BaseException], PipeError], on_done: OnDone | None) -> None:
        self._wrap = wrap
        self._on_done = on_done
        self.failures: dict[str, PipeError] = {}
        self.finished: set[str] = set()  # every oid reported, failed or not
        self.succeeded = 0
        self.gave_up: PipeError | None = None
        self.fatal: OSError | None = None

    @property
    def stopped(self) -> bool:
        """True once the remaining objects should not be started."""
        return self.gave_up is not None or self.fatal is not None

    def stop_on(self, exc: BaseException, where: str) -> bool:
        """True (and the batch stops) when `exc` would fail every other object too: it is then raised as is."""
        if not isinstance(exc, OSError) or exc.errno not in FATAL_ERRNOS:
            return False
        if exc.filename is None:  # fsspec's copies say which file only sometimes
            exc.filename = where
        self.fatal = self.fatal or exc
        return True

    def finish(self, oid: str, exc: BaseException | None) -> None:
        """Record one object's outcome and tell the caller."""
        self.finished.add(oid)
        error = None if exc is None else self._wrap(oid, exc)
        if error is None:
            self.succeeded += 1
        else:
            self.failures[oid] = error
            # A missing or corrupt object is that object's problem; anything else failing every
            # time (no bucket, no permission, no network) would fail for all objects: stop early.
            if not isinstance(error, (ObjectNotFoundError, CorruptObjectError)) and not self.succeeded and len(self.failures) >= GIVE_UP:
                self.gave_up = self.gave_up or error
        if self._on_done is not None:
            self._on_done(oid, error)

    def raise_if_stopped(self) -> None:
        """Raise what stopped the batch, if anything did.

        Raises:
            OSError: a local condition that fails every object (full disk, read-only, no handles).
            RemoteError: the first objects all failed the same remote-wide way.
        """
        if self.fatal is not None:
            raise self.fatal
        if self.gave_up is not None:
            raise RemoteError(
                f"{self.gave_up} (stopped after {len(self.failures)} failures in a row, none succeeded)"
            )
