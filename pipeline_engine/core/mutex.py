"""One pipe process at a time per project: an advisory lock file that dies with its holder.

`fcntl.flock` is released by the kernel when the holding process exits, however it exits, so a
lock left by a killed process is never stale: the next process simply takes it. The file's text
(PID and command) only serves the error message shown to the process that has to wait.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from pipeline_engine.errors import LockedError

__all__ = ["ProjectMutex"]


class ProjectMutex:
    """Context manager holding the project lock at `path` for the current process."""

    def __init__(self, path: Path, *, command: str, wait: bool = False, timeout: float | None = None) -> None:
        self._path = path
        self._command = command
        self._wait = wait
        self._timeout = timeout
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {self._command}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    return text or "pid unknown"
