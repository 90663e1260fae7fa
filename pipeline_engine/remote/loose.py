"""The loose side of a remote: objects as files `<root>/<2 hex>/<30 hex>`, looked up, listed, moved, deleted.

Every bulk operation (transfers, existence checks, prefix listings) runs `jobs` requests at once
in a thread pool, one code path for every backend: each thread calls the filesystem's plain
methods (an async backend such as s3fs runs each call on its own event loop). A thread per
request in flight costs less than scheduling coroutines from plain code for a local disk, and a
network request's latency dwarfs a thread switch.

An upload appears under its final name only once complete: one PUT on object stores, else a
partial-upload name in `<root>/tmp/` renamed into place (a file already written in that `tmp/`,
a pack or its index, is renamed directly). `remote.remote.Remote` puts this side and the packs
(`remote.packed`) together.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import os
import posixpath
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from pipeline_engine.core.hashing import Oid, verify_file
from pipeline_engine.core.layout import oid_to_relpath, relpath_to_oid, remote_tmp_dir
from pipeline_engine.core.objectdb import OnDone
from pipeline_engine.errors import CorruptObjectError, PipeError, RemoteError
from pipeline_engine.remote.batch import Batch
from pipeline_engine.remote.pack import LocalFile
from pipeline_engine.remote.partial import STALE_AFTER, is_leftover, partial_path

__all__ = ["FEW", "Lookup", "Loose"]

_T = TypeVar("_T")
_A = TypeVar("_A")

#: Fewer oids than this are checked one by one without estimating the remote's size first.
FEW = 32
# Objects per listing page on S3-like stores; used to estimate what listing a prefix costs.
_PAGE = 1000


class Lookup(Enum):
    """How `missing` asks: one request per object, a listing per 2-hex prefix, or one full listing."""

    EACH = "each"
    PREFIXES = "prefixes"
    ALL = "all"


class Loose:
    """The loose objects of one remote: fsspec `fs`, `root` in it, `label` ("remote 'NAME' (URL)") for messages.

    `object_store` backends write a file with one atomic request; the others upload to
    `<root>/tmp/` and rename. `read_only` marks a read-only HTTP server, whose filesystem hides a
    refused connection (see `_exists_one`). `build_dir`: files written there are renamed into place.
    """

    def __init__(
        self, fs: Any, root: str, label: str, *, jobs: int, object_store: bool,
        errors: tuple[type[BaseException], ...], read_only: bool = False, build_dir: Path | None = None,
    ) -> None:
        self.fs = fs
        self.root = root
        self.label = label
        self.jobs = jobs
        self.object_store = object_store
        self.errors = errors
        self.read_only = read_only
        self.build_dir = build_dir
        self._made_dirs: set[str] = set()

    def path_of(self, oid: str) -> str:
        """The object's path inside `fs`."""
        return f"{self.root}/{oid_to_relpath(oid)}"

    def present(self, wanted: set[str], lookup: Lookup | None) -> set[str]:
        """The oids of `wanted` stored loose, asked the cheapest way (`Lookup`) unless `lookup` says.

        Raises:
            RemoteError: the remote cannot be reached or listed.
        """
        if lookup is None and len(wanted) < FEW:
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
        """Every loose object (`<2 hex>/<30 hex>`) on the remote.

        Raises:
            RemoteError: the remote cannot be listed.
        """
        try:
            paths = self.fs.find(self.root, detail=False)
        except FileNotFoundError:
            return
        except self.errors as exc:
            raise self.error("list", self.root, exc) from exc
        start = len(self.root) + 1
        for path in paths:
            oid = relpath_to_oid(path[start:])
            if oid is not None:
                yield oid

    def _exists_each(self, oids: set[str]) -> set[str]:
        ordered = sorted(oids)
        try:
            found = self.each(self._exists_one, [self.path_of(o) for o in ordered])
        except self.errors as exc:
            raise self.error("check objects on", self.root, exc) from exc
        return {o for o, hit in zip(ordered, found, strict=True) if hit}

    def _exists_one(self, path: str) -> bool:
        """`fs.exists`, except that an unreachable server is an error, not "absent".

        fsspec's HTTP filesystem answers False for any failure, a refused connection included,
        and its `info` raises FileNotFoundError from the connection error: that cause is re-raised.
        """
        if not self.read_only:
            return bool(self.fs.exists(path))
        try:
            self.fs.info(path)
        except FileNotFoundError as exc:
            cause = exc.__cause__
            if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
                raise cause from exc
            return False
        return True

    def _list_prefixes(self, prefixes: Sequence[str]) -> set[str]:
        """The oids stored under the given 2-hex prefixes."""
        if not prefixes:
            return set()
        try:
            listings = self.each(self._ls, list(prefixes))
        except self.errors as exc:
            raise self.error("list", self.root, exc) from exc
        found: set[str] = set()
        for prefix, names in zip(prefixes, listings, strict=True):
            found.update(prefix + posixpath.basename(n.rstrip("/")) for n in names)
        return found

    def _ls(self, prefix: str) -> list[str]:
        try:
            return list(self.fs.ls(f"{self.root}/{prefix}", detail=False))
        except FileNotFoundError:
            return []

    def remove(self, oids: Iterable[str]) -> None:
        """Delete loose objects; absent ones are not an error.

        Raises:
            RemoteError: the deletion failed.
        """
        paths = [self.path_of(o) for o in oids]
        if not paths:
            return
        try:
            self._remove(paths)
        except self.errors as exc:
            raise self.error("delete objects from", self.root, exc) from exc

    def _remove(self, paths: list[str]) -> None:
        try:
            self.fs.rm(paths)  # one batched request on object stores
        except FileNotFoundError:  # some backends stop at the first absent path: go one by one
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(path)

    def transfer(
        self,
        upload: bool,
        items: Sequence[tuple[str, LocalFile]],
        *,
        jobs: int,
        on_done: OnDone | None,
        raise_first: bool = False,
        check: bool = False,
        wrap: Callable[[bool, str, BaseException], PipeError],
    ) -> dict[str, PipeError]:
        """Upload or download (oid, local path) pairs, `jobs` at a time; returns the failures by oid.

        `wrap(upload, oid, exc)` makes the PipeError of a failed object. With `check`, an upload
        is hashed right before it is sent and a download once it arrived.

        Raises:
            OSError: a local condition that fails every object (see `remote.batch`).
            RemoteError: the first objects all failed alike; with `raise_first`, any failure.
        """
        batch = Batch(lambda oid, exc: wrap(upload, oid, exc), on_done)
        one = self._upload if upload else self._download

        def work(oid: str, path: LocalFile) -> None:
            if batch.stopped:
                return
            try:
                if check and upload and (wrong := verify_file(path, oid)) is not None:
                    batch.finish(oid, CorruptObjectError(f"its local copy '{path}' hashes to '{wrong}'; not uploaded"))
                    return
                one(oid, path)
                if check and not upload and (wrong := verify_file(path, oid)) is not None:
                    batch.finish(oid, CorruptObjectError(
                        f"corrupt on {self.label}: its content hashes to '{wrong}'"
                    ))
                    return
            except self.errors as exc:
                if not batch.stop_on(exc, self.path_of(oid) if upload else str(path)):
                    batch.finish(oid, exc)
                return
            batch.finish(oid, None)  # a download's callback may hash and move the file: in this worker

        if jobs <= 1 or len(items) <= 1:
            for oid, path in items:
                work(oid, path)
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(work, oid, path) for oid, path in items]
                try:
                    for future in concurrent.futures.as_completed(futures):
                        future.result()
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        batch.raise_if_stopped()
        if raise_first and batch.failures:
            raise next(iter(batch.failures.values()))
        return batch.failures

    def _upload(self, oid: str, local: LocalFile) -> None:
        self.put_file(local, self.path_of(oid))

    def put_file(self, local: LocalFile, final: str) -> None:
        """Upload `local` so that `final` appears only once complete (one PUT, or temp + rename)."""
        if self.object_store:
            self.fs.put_file(str(local), final)
            return
        if self.build_dir is not None and os.path.dirname(os.fspath(local)) == os.fspath(self.build_dir):
            # Written complete in this remote's tmp/ (a pack or its index): a rename publishes it.
            self._makedirs(posixpath.dirname(final))
            self._rename(os.fspath(local), final)
            return
        self._makedirs(posixpath.dirname(final))
        self._makedirs(remote_tmp_dir(self.root))
        tmp = partial_path(self.root)
        try:
            self.fs.put_file(str(local), tmp)
            self._rename(tmp, final)
        except BaseException:
            with contextlib.suppress(*self.errors):
                self.fs.rm_file(tmp)
            raise

    def _rename(self, tmp: str, final: str) -> None:
        """fsspec names a file rename `mv` on a plain filesystem and `_mv_file` on an async one (sshfs)."""
        if self.fs.async_impl:
            from fsspec.asyn import sync

            sync(self.fs.loop, self.fs._mv_file, tmp, final)
        else:
            self.fs.mv(tmp, final)

    def _download(self, oid: str, dest: LocalFile) -> None:
        self.fs.get_file(self.path_of(oid), str(dest))

    def _makedirs(self, path: str) -> None:
        if path not in self._made_dirs:
            self.fs.makedirs(path, exist_ok=True)
            self._made_dirs.add(path)

    def each(self, fn: Callable[[_A], _T], args: Sequence[_A]) -> list[_T]:
        """`fn` of every argument, `jobs` at a time, results in order."""
        if len(args) <= 1:
            return [fn(a) for a in args]
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(self.jobs, len(args))) as pool:
            return list(pool.map(fn, args))

    def sweep_temps(self, *, max_age: float = STALE_AFTER) -> int:
        """Remove partial uploads that killed pushes left in `<root>/tmp/`; returns how many.

        An upload of this host is removed when its process is gone; another host's (or an older
        version's, named `<oid>.<hex>`) once it is `max_age` seconds old, as it cannot be asked.
        Object stores write each object in one request and keep no temporary files.

        Raises:
            RemoteError: the temporary directory cannot be listed or cleaned.
        """
        if self.object_store:
            return 0
        tmp_dir = remote_tmp_dir(self.root)
        try:
            entries = self.fs.ls(tmp_dir, detail=True)
        except FileNotFoundError:
            return 0
        except self.errors as exc:
            raise self.error("list", tmp_dir, exc) from exc
        now = time.time()
        doomed = [str(e["name"]) for e in entries if is_leftover(e, now=now, max_age=max_age)]
        for path in doomed:
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                continue
            except self.errors as exc:
                raise self.error("remove a partial upload from", path, exc) from exc
        return len(doomed)

    def error(self, verb: str, what: str, exc: BaseException) -> RemoteError:
        """A RemoteError naming the remote, what was being done to `what`, and why."""
        reason = str(exc) or type(exc).__name__
        return RemoteError(f"{self.label}: cannot {verb} '{what}': {reason}")
