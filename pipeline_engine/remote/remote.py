"""Remote: a store-shaped directory (`<root>/<2 hex>/<30 hex>`) on any fsspec filesystem, used in bulk.

Backends with an async implementation (s3fs, gcsfs, adlfs, ...) are driven through their coroutines
with `jobs` requests in flight; the others through a thread pool of `jobs` workers. Every fsspec,
OS or backend error comes out as a `RemoteError` naming the remote and its URL, except a local
condition that would fail every object (a full disk, a read-only file system, no file handles
left): that stops the transfer and is raised as the OSError, naming its file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import errno
import math
import os
import posixpath
import re
import socket
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import psutil

from pipeline_engine.core.fsutil import temp_name, temp_owner
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.layout import oid_to_relpath, relpath_to_oid
from pipeline_engine.errors import ObjectNotFoundError, PipeError, RemoteError

__all__ = ["Lookup", "OnDone", "Remote"]

#: Called once per object when its transfer ends: (oid, None) on success, (oid, error) on failure.
OnDone = Callable[[str, "PipeError | None"], None]

# Fewer oids than this are checked one by one without estimating the remote's size first.
_FEW = 32
# Objects per listing page on S3-like stores; used to estimate what listing a prefix costs.
_PAGE = 1000
_TMP = "tmp"
# A bulk transfer whose first this-many objects all fail (and none succeeds) stops.
_GIVE_UP = 8
# Partial uploads of other hosts (whose processes cannot be asked) are removed after this many seconds.
_STALE_AFTER = 24 * 3600.0
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
# Local conditions that fail every object alike: the transfer stops and the OSError reaches the user.
_FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE})


class Lookup(Enum):
    """How `exists_many` asks: one request per object, a listing per 2-hex prefix, or one full listing."""

    EACH = "each"
    PREFIXES = "prefixes"
    ALL = "all"


class Remote:
    """One configured remote: `name`, `url` (safe to print), an fsspec `fs` and the `root` path in it."""

    def __init__(
        self,
        name: str,
        url: str,
        fs: Any,
        root: str,
        *,
        jobs: int,
        object_store: bool,
        errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.name = name
        self.url = url
        self.fs = fs
        self.root = root.rstrip("/")
        self.jobs = jobs
        self._object_store = object_store
        self._errors: tuple[type[BaseException], ...] = (OSError, ValueError, *errors)
        self._made_dirs: set[str] = set()

    def path_of(self, oid: str) -> str:
        """The object's path inside `fs`."""
        return f"{self.root}/{oid_to_relpath(oid)}"

    # -- queries ---------------------------------------------------------------------------------

    def exists_many(self, oids: Collection[str], *, lookup: Lookup | None = None) -> set[str]:
        """The subset of `oids` the remote holds, by the cheapest `Lookup` for the counts at hand.

        The remote's size is estimated from a listing of one prefix (objects spread evenly over
        the 256 prefixes), and the lookup needing the fewest rounds of requests wins. `lookup`
        forces one (for tests and benchmarks).

        Raises:
            RemoteError: the remote cannot be reached or listed.
        """
        wanted = set(oids)
        if not wanted:
            return set()
        if lookup is None and len(wanted) < _FEW:
            lookup = Lookup.EACH
        if lookup is Lookup.EACH:
            return self._exists_each(wanted)
        prefixes = sorted({o[:2] for o in wanted})
        sample = self._list_prefixes(prefixes[:1])
        if lookup is None:
            pages = max(1, math.ceil(len(sample) / _PAGE))
            rounds = {
                Lookup.EACH: len(wanted) / self.jobs,
                Lookup.PREFIXES: (len(prefixes) - 1) * pages / self.jobs,
                Lookup.ALL: max(1, math.ceil(len(sample) * 256 / _PAGE)),
            }
            lookup = min(rounds, key=rounds.__getitem__)
        if lookup is Lookup.EACH:
            return self._exists_each(wanted)
        if lookup is Lookup.ALL:
            return wanted & set(self.iter_oids())
        return wanted & (sample | self._list_prefixes(prefixes[1:]))

    def iter_oids(self) -> Iterator[Oid]:
        """Every object on the remote (temporary files and foreign files are skipped).

        Raises:
            RemoteError: the remote cannot be listed.
        """
        try:
            paths = self.fs.find(self.root, detail=False)
        except FileNotFoundError:
            return
        except self._errors as exc:
            raise self._error("list", self.root, exc) from exc
        start = len(self.root) + 1
        for path in paths:
            oid = relpath_to_oid(path[start:])
            if oid is not None:
                yield oid

    # -- single objects --------------------------------------------------------------------------

    def put(self, local_path: Path, oid: str) -> None:
        """Upload one object; it appears under its final name only once complete.

        Raises:
            RemoteError: the upload failed.
        """
        self._run_many("upload", [(oid, local_path)], jobs=1, on_done=None, raise_first=True)

    def get(self, oid: str, dest: Path) -> None:
        """Download one object to `dest` (a temporary path: the caller verifies and moves it).

        Raises:
            ObjectNotFoundError: the remote does not have the object.
            RemoteError: the download failed.
        """
        self._run_many("download", [(oid, dest)], jobs=1, on_done=None, raise_first=True)

    # -- bulk ------------------------------------------------------------------------------------

    def put_many(
        self, items: Sequence[tuple[str, Path]], *, jobs: int | None = None, on_done: OnDone | None = None
    ) -> dict[str, PipeError]:
        """Upload (oid, local path) pairs concurrently; returns the failures by oid (others succeeded)."""
        return self._run_many("upload", items, jobs=jobs or self.jobs, on_done=on_done)

    def get_many(
        self, items: Sequence[tuple[str, Path]], *, jobs: int | None = None, on_done: OnDone | None = None
    ) -> dict[str, PipeError]:
        """Download (oid, local path) pairs concurrently; returns the failures by oid.

        `on_done` runs in a worker thread, so it may hash and move the downloaded file.
        """
        return self._run_many("download", items, jobs=jobs or self.jobs, on_done=on_done)

    def remove(self, oids: Iterable[str]) -> None:
        """Delete objects (gc); objects already gone are not an error.

        Raises:
            RemoteError: the deletion failed.
        """
        paths = [self.path_of(o) for o in oids]
        if not paths:
            return
        try:
            if self.fs.async_impl:
                self._sync(self.fs._rm(paths))
            else:
                for path in paths:
                    if self.fs.exists(path):
                        self.fs.rm_file(path)
        except FileNotFoundError:
            return
        except self._errors as exc:
            raise self._error("delete objects from", self.root, exc) from exc

    # -- transfer primitives ---------------------------------------------------------------------

    def _put_one(self, oid: str, local: Path) -> None:
        final = self.path_of(oid)
        if self._object_store:
            self.fs.put_file(str(local), final)
            return
        self._makedirs(posixpath.dirname(final))
        tmp = self._tmp_name(oid)
        try:
            self.fs.put_file(str(local), tmp)
            self.fs.mv(tmp, final)
        except BaseException:
            self._discard(tmp)
            raise

    async def _aput_one(self, oid: str, local: Path) -> None:
        final = self.path_of(oid)
        if self._object_store:
            await self.fs._put_file(str(local), final)
            return
        await self.fs._makedirs(posixpath.dirname(final), exist_ok=True)
        tmp = self._tmp_name(oid)
        await self.fs._makedirs(posixpath.dirname(tmp), exist_ok=True)
        try:
            await self.fs._put_file(str(local), tmp)
            await self.fs._mv_file(tmp, final)
        except BaseException:
            with contextlib.suppress(*self._errors):
                await self.fs._rm_file(tmp)
            raise

    def _get_one(self, oid: str, dest: Path) -> None:
        self.fs.get_file(self.path_of(oid), str(dest))

    async def _aget_one(self, oid: str, dest: Path) -> None:
        await self.fs._get_file(self.path_of(oid), str(dest))

    def _tmp_name(self, oid: str) -> str:
        tmp_dir = f"{self.root}/{_TMP}"
        self._makedirs(tmp_dir)
        return f"{tmp_dir}/{temp_name(f'.{_HOST}')}"

    def _discard(self, tmp: str) -> None:
        """Remove a failed upload's temporary file, best effort (the next push sweeps what is left)."""
        with contextlib.suppress(*self._errors):
            if self.fs.exists(tmp):
                self.fs.rm_file(tmp)

    def sweep_temps(self, *, max_age: float = _STALE_AFTER) -> int:
        """Remove partial uploads that killed pushes left in `<root>/tmp/`; returns how many.

        An upload of this host is removed when its process is gone; another host's (or an older
        version's, named `<oid>.<hex>`) once it is `max_age` seconds old, as it cannot be asked.
        Object stores write each object in one request and keep no temporary files.

        Raises:
            RemoteError: the temporary directory cannot be listed or cleaned.
        """
        if self._object_store:
            return 0
        tmp_dir = f"{self.root}/{_TMP}"
        try:
            entries = self.fs.ls(tmp_dir, detail=True)
        except FileNotFoundError:
            return 0
        except self._errors as exc:
            raise self._error("list", tmp_dir, exc) from exc
        now = time.time()
        doomed = []
        for entry in entries:
            name = posixpath.basename(str(entry["name"]).rstrip("/"))
            pid = temp_owner(name)
            if pid is not None and name.endswith(f".{_HOST}"):
                if pid != os.getpid() and not psutil.pid_exists(pid):
                    doomed.append(str(entry["name"]))
                continue
            mtime = _mtime(entry)
            if mtime is not None and now - mtime > max_age:
                doomed.append(str(entry["name"]))
        for path in doomed:
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                continue
            except self._errors as exc:
                raise self._error("remove a partial upload from", path, exc) from exc
        return len(doomed)

    def _makedirs(self, path: str) -> None:
        if path not in self._made_dirs and not self.fs.async_impl:
            self.fs.makedirs(path, exist_ok=True)
            self._made_dirs.add(path)

    # -- concurrency -----------------------------------------------------------------------------

    def _run_many(
        self,
        verb: str,
        items: Sequence[tuple[str, Path]],
        *,
        jobs: int,
        on_done: OnDone | None,
        raise_first: bool = False,
    ) -> dict[str, PipeError]:
        one, aone = (self._put_one, self._aput_one) if verb == "upload" else (self._get_one, self._aget_one)
        batch = _Batch(lambda oid, exc: self._transfer_error(verb, oid, exc), on_done)
        if self.fs.async_impl:
            # Downloads hand the callback a file to hash and fsync: keep that off the event loop.
            self._sync(self._gather(items, aone, jobs, batch, offload=verb == "download"))
        else:
            self._pool(items, one, jobs, batch)
        if batch.fatal is not None:
            raise batch.fatal  # a full disk, read-only file system, no file handles: every object would fail
        if batch.gave_up is not None:
            raise RemoteError(
                f"{batch.gave_up} (stopped after {len(batch.failures)} failures in a row, none succeeded)"
            )
        if raise_first and batch.failures:
            raise next(iter(batch.failures.values()))
        return batch.failures

    def _pool(
        self, items: Sequence[tuple[str, Path]], one: Callable[[str, Path], None], jobs: int, batch: _Batch
    ) -> None:
        def work(oid: str, path: Path) -> None:
            if batch.gave_up is not None or batch.fatal is not None:
                return
            try:
                one(oid, path)
            except self._errors as exc:
                if not batch.stop_on(exc, self._where(one, oid, path)):
                    batch.finish(oid, exc)
                return
            batch.finish(oid, None)

        if jobs <= 1 or len(items) <= 1:
            for oid, path in items:
                work(oid, path)
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(work, oid, path) for oid, path in items]
            try:
                for future in concurrent.futures.as_completed(futures):
                    future.result()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    async def _gather(
        self,
        items: Sequence[tuple[str, Path]],
        aone: Callable[[str, Path], Any],
        jobs: int,
        batch: _Batch,
        *,
        offload: bool,
    ) -> None:
        limit = asyncio.Semaphore(jobs)
        loop = asyncio.get_running_loop()

        async def work(oid: str, path: Path) -> None:
            error: BaseException | None = None
            async with limit:
                if batch.gave_up is not None or batch.fatal is not None:
                    return
                try:
                    await aone(oid, path)
                except self._errors as exc:
                    if batch.stop_on(exc, self._where(aone, oid, path)):
                        return
                    error = exc
            if offload:
                await loop.run_in_executor(None, batch.finish, oid, error)
            else:
                batch.finish(oid, error)

        await asyncio.gather(*(work(oid, path) for oid, path in items))

    def _sync(self, coro: Any) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, lambda: coro)

    def _where(self, one: Callable[..., Any], oid: str, local: Path) -> str:
        """The file a failed transfer was writing: the local file of a download, the remote object of an upload."""
        downloading = one in (self._get_one, self._aget_one)
        return str(local) if downloading else self.path_of(oid)

    # -- existence -------------------------------------------------------------------------------

    def _exists_each(self, oids: set[str]) -> set[str]:
        try:
            if self.fs.async_impl:
                paths = [self.path_of(o) for o in oids]
                found = self._sync(self._aexists_all(paths))
                return {o for o, hit in zip(oids, found, strict=True) if hit}
            return {o for o in oids if self.fs.exists(self.path_of(o))}
        except self._errors as exc:
            raise self._error("check objects on", self.root, exc) from exc

    async def _aexists_all(self, paths: list[str]) -> list[bool]:
        limit = asyncio.Semaphore(self.jobs)

        async def one(path: str) -> bool:
            async with limit:
                return bool(await self.fs._exists(path))

        return list(await asyncio.gather(*(one(p) for p in paths)))

    def _list_prefixes(self, prefixes: Sequence[str]) -> set[str]:
        """The oids stored under the given 2-hex prefixes."""
        if not prefixes:
            return set()
        try:
            if self.fs.async_impl:
                listings = self._sync(self._als_all(prefixes))
            else:
                listings = [self._ls(p) for p in prefixes]
        except self._errors as exc:
            raise self._error("list", self.root, exc) from exc
        found: set[str] = set()
        for prefix, names in zip(prefixes, listings, strict=True):
            found.update(prefix + posixpath.basename(n.rstrip("/")) for n in names)
        return found

    def _ls(self, prefix: str) -> list[str]:
        try:
            return list(self.fs.ls(f"{self.root}/{prefix}", detail=False))
        except FileNotFoundError:
            return []

    async def _als_all(self, prefixes: Sequence[str]) -> list[list[str]]:
        limit = asyncio.Semaphore(self.jobs)

        async def one(prefix: str) -> list[str]:
            async with limit:
                try:
                    return list(await self.fs._ls(f"{self.root}/{prefix}", detail=False))
                except FileNotFoundError:
                    return []

        return list(await asyncio.gather(*(one(p) for p in prefixes)))

    # -- errors ----------------------------------------------------------------------------------

    def _transfer_error(self, verb: str, oid: str, exc: BaseException) -> PipeError:
        relpath = oid_to_relpath(oid)
        if verb == "download" and isinstance(exc, FileNotFoundError):
            return ObjectNotFoundError(
                f"object '{oid}' is not on remote '{self.name}' ({self.url}/{relpath})"
            )
        return self._error(verb, relpath, exc)

    def _error(self, verb: str, what: str, exc: BaseException) -> RemoteError:
        reason = str(exc) or type(exc).__name__
        return RemoteError(f"remote '{self.name}' ({self.url}): cannot {verb} '{what}': {reason}")


class _Batch:
    """The outcome of one bulk transfer so far; gives up when the first failures are all remote-wide."""

    def __init__(self, wrap: Callable[[str, BaseException], PipeError], on_done: OnDone | None) -> None:
        self._wrap = wrap
        self._on_done = on_done
        self.failures: dict[str, PipeError] = {}
        self.succeeded = 0
        self.gave_up: PipeError | None = None
        self.fatal: OSError | None = None

    def stop_on(self, exc: BaseException, where: str) -> bool:
        """True (and the batch stops) when `exc` would fail every other object too: it is then raised as is."""
        if not isinstance(exc, OSError) or exc.errno not in _FATAL_ERRNOS:
            return False
        if exc.filename is None:  # fsspec's copies say which file only sometimes
            exc.filename = where
        self.fatal = self.fatal or exc
        return True

    def finish(self, oid: str, exc: BaseException | None) -> None:
        """Record one object's outcome and tell the caller."""
        error = None if exc is None else self._wrap(oid, exc)
        if error is None:
            self.succeeded += 1
        else:
            self.failures[oid] = error
            # A missing object is that object's problem; anything else failing every time (no
            # bucket, no permission, no network) would fail for all objects: stop early.
            if (
                not isinstance(error, ObjectNotFoundError)
                and not self.succeeded
                and len(self.failures) >= _GIVE_UP
            ):
                self.gave_up = self.gave_up or error
        if self._on_done is not None:
            self._on_done(oid, error)


def _mtime(entry: Mapping[str, Any]) -> float | None:
    """A listing entry's modification time in seconds (backends give a float, an int or a datetime)."""
    value = entry.get("mtime", entry.get("LastModified", entry.get("last_modified")))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return None
