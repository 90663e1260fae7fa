"""Drive an fsspec filesystem from one coroutine path, whatever the backend.

`call("put_file", ...)` awaits the backend's coroutine (`_put_file`) when it has an async
implementation (s3fs, gcsfs, adlfs, sshfs), on fsspec's own event loop; otherwise it runs the
plain method (`put_file`) in a thread of a private loop whose pool has as many threads as
requests may be in flight. Either way the caller writes one coroutine path with one
concurrency limit, and a sync backend pays one thread hop per call, as a thread pool would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

__all__ = ["AsyncDriver"]

_T = TypeVar("_T")
_A = TypeVar("_A")


class AsyncDriver:
    """`call` one filesystem method as a coroutine; `run` a coroutine to completion; `each` maps one, `jobs` at a time."""

    def __init__(self, fs: Any, jobs: int) -> None:
        self.fs = fs
        self.jobs = jobs
        self.native = bool(fs.async_impl)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The filesystem's `method` (e.g. "exists", "ls", "rm_file"), awaited."""
        if self.native:
            return await getattr(self.fs, f"_{method}")(*args, **kwargs)
        job = functools.partial(getattr(self.fs, method), *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(None, job)

    async def put_renamed(self, local: str, tmp: str, dest: str) -> None:
        """Upload `local` to `tmp`, then rename it to `dest`, so `dest` only ever appears complete.

        A sync backend does both in one thread hop. (fsspec's async `_mv_file` is its rename; a
        sync filesystem's is `mv`.)
        """
        if self.native:
            await self.fs._put_file(local, tmp)
            await self.fs._mv_file(tmp, dest)
        else:
            await asyncio.get_running_loop().run_in_executor(None, self._put_renamed, local, tmp, dest)

    def _put_renamed(self, local: str, tmp: str, dest: str) -> None:
        self.fs.put_file(local, tmp)
        self.fs.mv(tmp, dest)

    def run(self, make: Callable[[], Coroutine[Any, Any, _T]], *, threads: int | None = None) -> _T:
        """Run the coroutine `make()` returns to completion; `threads` sizes a sync backend's pool."""
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
