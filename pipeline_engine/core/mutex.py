"""One pipe process at a time per project: an advisory lock file that dies with its holder.

`fcntl.flock` is released by the kernel when the holding process exits, however it exits, so a
lock left by a killed process is never stale: the next process simply takes it. The file's text
(PID and command) serves the error message shown to the process that has to wait, and is the
marker of an unclean exit: the holder empties it when it leaves normally or with an ordinary
`PipeError`, and leaves it when it is killed, interrupted or hits a bug. The next process that
takes the lock and finds the text knows temporary files may be left, and runs `on_take(True)`
(the project sweeps them, see `core.tempsweep`); otherwise `on_take(False)`.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from pipeline_engine.errors import LockedError, PipeError, PipeInterrupted

__all__ = ["ProjectMutex"]


class ProjectMutex:
    """Context manager holding the project lock at `path` for the current process."""

    def __init__(
        self, path: Path, *, command: str, wait: bool = False, timeout: float | None = None,
        on_take: Callable[[bool], object] | None = None,
    ) -> None:
        self._path = path
        self._command = command
        self._wait = wait
        self._timeout = timeout
        self._on_take = on_take
        self._fd: int | None = None

    def __enter__(self) -> ProjectMutex:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not self._wait or (deadline is not None and time.monotonic() > deadline):
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockedError(
                        f"another pipe process is working in this project ({holder})",
                        hint="wait for it to finish, or rerun with '--wait'",
                    ) from None
                time.sleep(0.05)
        self._fd = fd
        unclean = bool(os.pread(fd, 1, 0))
        os.ftruncate(fd, 0)
        # A command line may hold a name that is not UTF-8 (`pipe add $'\xff'`): as \xNN, never a crash.
        os.pwrite(fd, f"pid {os.getpid()}: {self._command}\n".encode("utf-8", "backslashreplace"), 0)
        if self._on_take is not None:
            try:
                self._on_take(unclean)
            except BaseException:
                self._release(clean=False)
                raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # An interrupt or a bug may have left temporary files behind: keep the marker for the next holder.
        clean = exc_type is None or (issubclass(exc_type, PipeError) and not issubclass(exc_type, PipeInterrupted))
        self._release(clean=clean)

    def _release(self, *, clean: bool) -> None:
        if self._fd is not None:
            if clean:
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    return text or "pid unknown"
