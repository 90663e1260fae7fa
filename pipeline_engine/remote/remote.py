"""Remote: a store-shaped directory (`<root>/<2 hex>/<30 hex>`) on any fsspec filesystem (an `ObjectDB`).

Small objects may live in packs instead (`<root>/packs/`, see `remote.packed`): `put_many` bundles
objects below `PackOptions.threshold` bytes into packs, and every query and read accepts both
layouts, so a remote written before packs existed, or with packing off, reads the same.

Every bulk operation (transfers, existence checks, prefix listings) runs `jobs` requests at once
in a thread pool, one code path for every backend: each thread calls the filesystem's plain
methods (an async backend such as s3fs runs each call on its own event loop). A thread per
request in flight costs less than scheduling coroutines from plain code for a local disk, and a
network request's latency dwarfs a thread switch.

Every fsspec, OS or backend error comes out as a `RemoteError` naming the remote and its URL,
except a local condition that would fail every object (a full disk, a read-only file system, no
file handles left): that stops the transfer and is raised as the OSError, naming its file
(`remote.batch`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import os
import posixpath
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from pipeline_engine.core.hashing import Oid, verify_file
from pipeline_engine.core.layout import oid_to_relpath, relpath_to_oid, remote_tmp_dir
from pipeline_engine.core.objectdb import ObjectDB, OnDone
from pipeline_engine.errors import CorruptObjectError, ObjectNotFoundError, PipeError, RemoteError
from pipeline_engine.remote.batch import Batch
from pipeline_engine.remote.pack import LocalFile
from pipeline_engine.remote.packed import PACK_JOBS, Packs, Site
from pipeline_engine.remote.packread import read_packed
from pipeline_engine.remote.partial import HOST, STALE_AFTER, is_leftover, partial_path

__all__ = ["DEFAULT_PACK_SIZE", "DEFAULT_PACK_THRESHOLD", "STREAM_LOOSE", "Lookup", "OnDone", "PackOptions", "Remote"]

#: Objects smaller than this (bytes) go into packs unless the remote's `pack_threshold` says otherwise.
DEFAULT_PACK_THRESHOLD = 1 << 20
#: A pack is closed once it holds about this many bytes (the remote's `pack_size`).
DEFAULT_PACK_SIZE = 64 << 20

_T = TypeVar("_T")
_A = TypeVar("_A")

# Fewer oids than this are checked one by one without estimating the remote's size first.
_FEW = 32
#: Loose objects uploaded per part of `put_stream` (their tuples and path strings live that long).
STREAM_LOOSE = 20_000
# Objects per listing page on S3-like stores; used to estimate what listing a prefix costs.
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class PackOptions:
    """How a remote packs: objects below `threshold` bytes (0: never) into packs of about `size` bytes.

    Packs are built in `work_dir` (a local directory; the system's temporary directory when None)
    and downloaded indexes are kept in `index_cache` (not kept when None).
    """

    threshold: int = DEFAULT_PACK_THRESHOLD
    size: int = DEFAULT_PACK_SIZE
    work_dir: Path | None = None
    index_cache: Path | None = None
    must_list: bool = True  # False: a remote that refuses to list packs/ has none (read-only HTTP)
    # The remote is a directory on this machine: packs are built in its `tmp/` and published by a rename.
    build_in_place: bool = False


class Lookup(Enum):
    """How `missing` asks: one request per object, a listing per 2-hex prefix, or one full listing."""

    EACH = "each"
    PREFIXES = "prefixes"
    ALL = "all"


class Remote:
    """One configured remote: `name`, `url` (safe to print), an fsspec `fs` and the `root` path in it.

    `object_store` backends write an object with one atomic request; the others upload to
    `<root>/tmp/` and rename into place, so an object under its final name is always complete.
    `read_only` marks a read-only HTTP server, whose filesystem hides a refused connection.
    """

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
        packing: PackOptions | None = None,
        read_only: bool = False,
    ) -> None:
        self.name = name
        self.url = url
        self.fs = fs
        self.root = root.rstrip("/")
        self.jobs = jobs
        self._object_store = object_store
        self._errors: tuple[type[BaseException], ...] = (OSError, ValueError, *errors)
        self._made_dirs: set[str] = set()
        self._read_only = read_only  # a read-only HTTP server (see `_exists_one`)
        self.packing = packing or PackOptions(threshold=0)
        work_dir = self.packing.work_dir or Path(tempfile.gettempdir())
        in_place = self.packing.build_in_place and not object_store
        self._build_dir = Path(remote_tmp_dir(self.root)) if in_place else None
        self.packs = Packs(Site(
            fs, self.root, f"remote '{name}' ({url})", self._put_file, self._errors, work_dir,
            self.packing.index_cache, jobs, self.packing.must_list, build_dir=self._build_dir,
            build_suffix=f".{HOST}" if in_place else ".pack",
        ))

    def path_of(self, oid: str) -> str:
        """The object's path inside `fs`."""
        return f"{self.root}/{oid_to_relpath(oid)}"

    # -- queries ---------------------------------------------------------------------------------

    def exists(self, oid: str) -> bool:
        """True when the remote holds the object.

        Raises:
            RemoteError: the remote cannot be reached.
        """
        return not self.missing([oid], lookup=Lookup.EACH)

    def missing(self, oids: Collection[str], *, lookup: Lookup | None = None) -> set[str]:
        """The subset of `oids` the remote lacks, found by the cheapest `Lookup` for the counts at hand.

        The remote's size is estimated from a listing of one prefix (objects spread evenly over
        the 256 prefixes), and the lookup needing the fewest rounds of requests wins. `lookup`
        forces one (for tests and benchmarks).

        Raises:
            RemoteError: the remote cannot be reached or listed.
        """
        if not oids:
            return set()
        asked = False
        if len(oids) < _FEW and lookup in (None, Lookup.EACH) and not self.packs.is_loaded:
            # A few objects (a no-op push's manifests) are asked about loose first: when all are
            # there, the pack indexes are never listed or loaded.
            found = self._present(set(oids), Lookup.EACH)
            oids = {o for o in oids if o not in found}
            if not oids:
                return oids
            asked = True
        self._refresh_for(oids)
        where = self.packs.where
        rest = {o for o in oids if o not in where}  # the only set made: the caller's strings, not copies
        if rest and not asked:
            rest -= self._present(rest, lookup)
        return rest

    def _refresh_for(self, oids: Iterable[str]) -> None:
        """List `packs/` again when some of `oids` is in no pack known from an earlier call's listing.

        A Remote may live long (a repro exchanging objects with workers) while other processes
        push packs; asking about an object not seen yet costs one listing, not a wrong answer.
        """
        if self.packs.is_loaded and any(o not in self.packs.where for o in oids):
            self.packs.refresh()

    def pack_of(self, oid: str) -> str | None:
        """`packs/<name>.pack` for a packed object (messages name it), else None."""
        loc = self.packs.locate(oid)
        return None if loc is None else self.packs.relpath(loc.pack)

    def transfer_order(self, oids: Iterable[str]) -> list[str]:
        """`oids` in the order that reads them fastest: packed ones by pack and offset, then loose ones."""
        where = self.packs.where

        def key(oid: str) -> tuple[int, str, int]:
            loc = where.get(oid)
            return (0, loc.pack, loc.offset) if loc is not None else (1, oid, 0)

        return sorted(oids, key=key)

    def _present(self, wanted: set[str], lookup: Lookup | None) -> set[str]:
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
            return wanted & set(self.iter_loose())
        return wanted & (sample | self._list_prefixes(prefixes[1:]))

    def iter_oids(self) -> Iterator[Oid]:
        """Every object on the remote, loose or packed, each once (temporary and foreign files are skipped).

        Raises:
            RemoteError: the remote or its packs cannot be listed.
        """
        packed = self.packs.where
        yield from (Oid(o) for o in packed)
        yield from (o for o in self.iter_loose() if o not in packed)

    def iter_loose(self) -> Iterator[Oid]:
        """Every loose object (`<2 hex>/<30 hex>`) on the remote.

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

    def _exists_each(self, oids: set[str]) -> set[str]:
        ordered = sorted(oids)
        try:
            found = self._each(self._exists_one, [self.path_of(o) for o in ordered])
        except self._errors as exc:
            raise self._error("check objects on", self.root, exc) from exc
        return {o for o, hit in zip(ordered, found, strict=True) if hit}

    def _exists_one(self, path: str) -> bool:
        """`fs.exists`, except that an unreachable server is an error, not "absent".

        fsspec's HTTP filesystem answers False for any failure, a refused connection included,
        and its `info` raises FileNotFoundError from the connection error: that cause is re-raised.
        """
        if not self._read_only:
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
            listings = self._each(self._ls, list(prefixes))
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

    # -- transfers -------------------------------------------------------------------------------

    def put(self, oid: str, path: Path) -> None:
        """Upload one object; it appears under its final name only once complete.

        Raises:
            RemoteError: the upload failed.
        """
        self._transfer(True, [(oid, path)], jobs=1, on_done=None, raise_first=True)

    def get(self, oid: str, dest: Path) -> None:
        """Download one object to `dest` (a temporary path: the caller verifies and moves it).

        Raises:
            ObjectNotFoundError: the remote does not have the object.
            RemoteError: the download failed.
        """
        self._refresh_for([oid])
        if self.packs.locate(oid) is not None:
            failures = self.get_many([(oid, dest)])
            if failures:
                raise failures[oid]
            return
        self._transfer(False, [(oid, dest)], jobs=1, on_done=None, raise_first=True)

    def put_many(
        self, items: Sequence[tuple[str, LocalFile]], *, jobs: int | None = None, on_done: OnDone | None = None,
        sizes: Mapping[str, int] | None = None, check: bool = False,
    ) -> dict[str, PipeError]:
        """Upload (oid, local path) pairs concurrently; returns the failures by oid (others succeeded).

        A packed object is always hashed as it is copied into its pack, and one whose bytes do not
        hash to its oid is left out (its failure is a `CorruptObjectError`). With `check`, a loose
        object is verified the same way just before its upload; without, the remote trusts its
        caller for loose objects. Push passes `check`, so every object is read once for its check
        (packed) or checked right before it is sent (loose). With packing on, objects smaller than
        the threshold (when there are at least two) go into packs, each pack before its index;
        objects already in a pack are not sent again. `sizes` (oid -> bytes, when the caller knows
        them) saves a stat per object. `put_stream` is the same for items made as they are needed.
        """
        if self.packing.threshold <= 0 or len(items) < 2:
            return self._transfer(True, items, jobs=jobs or self.jobs, on_done=on_done, check=check)
        known = sizes or {}
        return self.put_stream(((o, p, known.get(o)) for o, p in items), jobs=jobs, on_done=on_done, check=check)

    def put_stream(
        self, items: Iterable[tuple[str, LocalFile, int | None]], *, jobs: int | None = None,
        on_done: OnDone | None = None, check: bool = False,
    ) -> dict[str, PipeError]:
        """`put_many` of (oid, local path, size or None) items, read from `items` a part at a time.

        Memory stays bounded by the part, not the whole upload: loose objects go `STREAM_LOOSE`
        at a time; small ones are packed once they fill `PACK_JOBS` packs, the last pack of each
        part held back for the next, so packs are filled to `pack_size` across parts. A pack is
        on the remote with its index before its objects are reported to `on_done`. One small
        object alone is sent loose.

        Raises:
            OSError: a local condition that fails every object (full disk, read-only, no handles).
            RemoteError: the first objects all failed the same remote-wide way.
        """
        threshold = self.packing.threshold
        budget = PACK_JOBS * self.packing.size
        failures: dict[str, PipeError] = {}
        small: list[tuple[str, LocalFile, int]] = []
        small_bytes = 0
        packed_any = False
        loose: list[tuple[str, LocalFile]] = []
        for oid, path, size in items:
            if size is None and threshold > 0:
                try:
                    size = os.stat(path).st_size
                except OSError:
                    size = None  # the loose path reports it
            if size is None or size >= threshold or threshold <= 0:
                loose.append((oid, path))
                if len(loose) >= STREAM_LOOSE:
                    failures.update(self._transfer(True, loose, jobs=jobs or self.jobs, on_done=on_done, check=check))
                    loose = []
                continue
            small.append((oid, path, size))
            small_bytes += size
            if small_bytes >= budget:
                held = self._pack(small, on_done, failures, hold_last=True)
                packed_any = packed_any or len(held) < len(small)
                small, small_bytes = held, sum(t[2] for t in held)
        if len(small) == 1 and not packed_any:
            loose.append(small.pop()[:2])
        if small:
            self._pack(small, on_done, failures, hold_last=False)
        if loose:
            failures.update(self._transfer(True, loose, jobs=jobs or self.jobs, on_done=on_done, check=check))
        return failures

    def _pack(
        self, small: list[tuple[str, LocalFile, int]], on_done: OnDone | None, failures: dict[str, PipeError],
        *, hold_last: bool,
    ) -> list[tuple[str, LocalFile, int]]:
        """Pack and upload `small` (failures into `failures`); returns the last pack's items when held back."""
        batch = Batch(lambda oid, exc: self._transfer_error(True, oid, exc), on_done)
        where = self.packs.known  # not listed again for the packs this upload made
        for oid in {o for o, _, _ in small if o in where}:
            batch.finish(oid, None)
        # A list, not a dict by oid (~100 bytes an object): write() drops repeats once sorted.
        held = self.packs.write(
            [t for t in small if t[0] not in where], batch, pack_size=self.packing.size, hold_last=hold_last
        )
        batch.raise_if_stopped()
        failures.update(batch.failures)
        return held

    def get_many(
        self, items: Sequence[tuple[str, Path]], *, jobs: int | None = None, on_done: OnDone | None = None,
        check: bool = False,
    ) -> dict[str, PipeError]:
        """Download (oid, local path) pairs concurrently; returns the failures by oid.

        `on_done` runs in a worker thread, so it may move the downloaded file. Packed objects are
        read from their packs (see `remote.packread`) and hashed as they are written: one whose
        bytes do not hash to its oid is a `CorruptObjectError` naming its pack. With `check`, a
        loose object is hashed the same way once downloaded, so every object reported done
        holds its oid's bytes; without, the caller verifies loose objects.
        """
        self._refresh_for(o for o, _ in items)
        where = self.packs.where
        packed = [(o, p) for o, p in items if o in where]
        loose = [(o, p) for o, p in items if o not in where] if packed else list(items)
        failures: dict[str, PipeError] = {}
        if packed:
            batch = Batch(lambda oid, exc: self._transfer_error(False, oid, exc), on_done)
            read_packed(self.packs, packed, batch)
            batch.raise_if_stopped()
            failures.update(batch.failures)
        if loose:
            failures.update(self._transfer(False, loose, jobs=jobs or self.jobs, on_done=on_done, check=check))
        return failures

    def remove(self, oids: Iterable[str]) -> None:
        """Delete objects; objects already gone are not an error.

        A pack that holds any of them is rewritten without them (a new pack and index first, then
        the old index, then the old pack) or deleted when nothing in it stays; `prune` is gc's
        gentler version.

        Raises:
            RemoteError: the deletion failed.
        """
        from pipeline_engine.remote.prune import drop_from_packs

        doomed = set(oids)
        if not doomed:
            return
        drop_from_packs(self.packs, doomed)
        self.remove_loose(doomed)

    def remove_loose(self, oids: Iterable[str]) -> None:
        """Delete loose objects; absent ones are not an error.

        Raises:
            RemoteError: the deletion failed.
        """
        paths = [self.path_of(o) for o in oids]
        if not paths:
            return
        try:
            self._remove(paths)
        except self._errors as exc:
            raise self._error("delete objects from", self.root, exc) from exc

    def _remove(self, paths: list[str]) -> None:
        try:
            self.fs.rm(paths)  # one batched request on object stores
        except FileNotFoundError:  # some backends stop at the first absent path: go one by one
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(path)

    def _transfer(
        self,
        upload: bool,
        items: Sequence[tuple[str, LocalFile]],
        *,
        jobs: int,
        on_done: OnDone | None,
        raise_first: bool = False,
        check: bool = False,
    ) -> dict[str, PipeError]:
        batch = Batch(lambda oid, exc: self._transfer_error(upload, oid, exc), on_done)
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
                        f"corrupt on remote '{self.name}': its content hashes to '{wrong}'"
                    ))
                    return
            except self._errors as exc:
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
        self._put_file(local, self.path_of(oid))

    def _put_file(self, local: LocalFile, final: str) -> None:
        """Upload `local` so that `final` appears only once complete (one PUT, or temp + rename)."""
        if self._object_store:
            self.fs.put_file(str(local), final)
            return
        if self._build_dir is not None and os.path.dirname(os.fspath(local)) == os.fspath(self._build_dir):
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
            with contextlib.suppress(*self._errors):
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

    def _each(self, fn: Callable[[_A], _T], args: Sequence[_A]) -> list[_T]:
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
        if self._object_store:
            return 0
        tmp_dir = remote_tmp_dir(self.root)
        try:
            entries = self.fs.ls(tmp_dir, detail=True)
        except FileNotFoundError:
            return 0
        except self._errors as exc:
            raise self._error("list", tmp_dir, exc) from exc
        now = time.time()
        doomed = [str(e["name"]) for e in entries if is_leftover(e, now=now, max_age=max_age)]
        for path in doomed:
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                continue
            except self._errors as exc:
                raise self._error("remove a partial upload from", path, exc) from exc
        return len(doomed)

    # -- errors ----------------------------------------------------------------------------------

    def _transfer_error(self, upload: bool, oid: str, exc: BaseException) -> PipeError:
        if isinstance(exc, PipeError):
            return exc
        relpath = oid_to_relpath(oid)
        if not upload and isinstance(exc, FileNotFoundError):
            return ObjectNotFoundError(
                f"object '{oid}' is not on remote '{self.name}' ({self.url}/{relpath}){self.packs.note()}"
            )
        return self._error("upload" if upload else "download", relpath, exc)

    def _error(self, verb: str, what: str, exc: BaseException) -> RemoteError:
        reason = str(exc) or type(exc).__name__
        return RemoteError(f"remote '{self.name}' ({self.url}): cannot {verb} '{what}': {reason}")


# mypy (strict, in CI) proves a remote speaks the shared vocabulary.
_CHECK_PROTOCOL: type[ObjectDB] = Remote
