"""Drive an fsspec filesystem's coroutines from plain code, whatever the backend.

A backend with an async implementation (s3fs, gcsfs, adlfs, sshfs) runs its coroutines on
fsspec's own event loop. Any other is seen through fsspec's `AsyncFileSystemWrapper`, whose
coroutines run each call in a thread of the running loop's default executor: they run on a
private loop whose pool has as many threads as requests may be in flight. Either way the caller
writes one coroutine path, with one concurrency limit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

__all__ = ["AsyncDriver"]

_T = TypeVar("_T")
_A = TypeVar("_A")


class AsyncDriver:
    """`afs`: the async view of `fs`; `run` a coroutine to completion; `each` maps a coroutine, `jobs` at a time."""

    def __init__(self, fs: Any, jobs: int) -> None:
        self.fs = fs
        self.jobs = jobs
        self.native = bool(fs.async_impl)
        if self.native:
            self.afs: Any = fs
        else:
            from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

            self.afs = AsyncFileSystemWrapper(fs, asynchronous=True)

    async def rename(self, src: str, dest: str) -> None:
        """Move a file within the filesystem (the wrapper's `_mv_file` would copy then delete, not rename)."""
        if self.native:
            await self.afs._mv_file(src, dest)
        else:
            await self.afs._mv(src, dest)

    def run(self, make: Callable[[], Coroutine[Any, Any, _T]], *, threads: int | None = None) -> _T:
        """Run the coroutine `make()` returns to completion; `threads` sizes a wrapped backend's pool."""
        if self.native:
            from fsspec.asyn import sync

            result: _T = sync(self.fs.loop, make)
            return result
        with asyncio.Runner() as runner:
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(threads or self.jobs, 1))
            runner.get_loop().set_default_executor(pool)
            return runner.run(make())

    async def each(self, fn: Callable[[_A], Awaitable[_T]], args: Sequence[_A]) -> list[_T]:
        """`fn` of every argument, `jobs` at a time, results in order."""
        limit = asyncio.Semaphore(self.jobs)

        async def one(arg: _A) -> _T:
            async with limit:
                return await fn(arg)

        return list(await asyncio.gather(*(one(a) for a in args)))
