"""Remote: a store-shaped directory (`<root>/<2 hex>/<30 hex>`) on any fsspec filesystem (an `ObjectDB`).

Small objects may live in packs instead (`<root>/packs/`, see `remote.packed`): `put_many` bundles
objects below `PackOptions.threshold` bytes into packs, and every query and read accepts both
layouts, so a remote written before packs existed, or with packing off, reads the same.

The loose side (`remote.loose`: lookups, listings, the thread-pool transfers) and the packs
(`remote.packed`) are separate objects; `Remote` decides which side an object is on and keeps
memory bounded for pushes of any size (`put_stream`).

Every fsspec, OS or backend error comes out as a `RemoteError` naming the remote and its URL,
except a local condition that would fail every object (a full disk, a read-only file system, no
file handles left): that stops the transfer and is raised as the OSError, naming its file
(`remote.batch`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.layout import oid_to_relpath, remote_tmp_dir
from pipeline_engine.core.objectdb import ObjectDB, OnDone
from pipeline_engine.errors import ObjectNotFoundError, PipeError
from pipeline_engine.remote.batch import Batch
from pipeline_engine.remote.loose import FEW, Lookup, Loose
from pipeline_engine.remote.pack import LocalFile
from pipeline_engine.remote.packed import PACK_JOBS, Packs, Site
from pipeline_engine.remote.packread import read_packed
from pipeline_engine.remote.partial import HOST, STALE_AFTER

__all__ = ["DEFAULT_PACK_SIZE", "DEFAULT_PACK_THRESHOLD", "STREAM_LOOSE", "Lookup", "OnDone", "PackOptions", "Remote"]

#: Objects smaller than this (bytes) go into packs unless the remote's `pack_threshold` says otherwise.
DEFAULT_PACK_THRESHOLD = 1 << 20
#: A pack is closed once it holds about this many bytes (the remote's `pack_size`).
DEFAULT_PACK_SIZE = 64 << 20

#: Loose objects uploaded per part of `put_stream` (their tuples and path strings live that long).
STREAM_LOOSE = 20_000


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
        label = f"remote '{name}' ({url})"
        self.packing = packing or PackOptions(threshold=0)
        work_dir = self.packing.work_dir or Path(tempfile.gettempdir())
        in_place = self.packing.build_in_place and not object_store
        build_dir = Path(remote_tmp_dir(self.root)) if in_place else None
        every_error: tuple[type[BaseException], ...] = (OSError, ValueError, *errors)
        self.loose = Loose(
            fs, self.root, label, jobs=jobs, object_store=object_store, errors=every_error, read_only=read_only,
            build_dir=build_dir,
        )
        self.packs = Packs(Site(
            fs, self.root, label, self.loose.put_file, every_error, work_dir,
            self.packing.index_cache, jobs, self.packing.must_list, build_dir=build_dir,
            build_suffix=f".{HOST}" if in_place else ".pack",
        ))

    def path_of(self, oid: str) -> str:
        """The object's path inside `fs` (as a loose object)."""
        return self.loose.path_of(oid)

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
        if len(oids) < FEW and lookup in (None, Lookup.EACH) and not self.packs.is_loaded:
            # A few objects (a no-op push's manifests) are asked about loose first: when all are
            # there, the pack indexes are never listed or loaded.
            found = self.loose.present(set(oids), Lookup.EACH)
            oids = {o for o in oids if o not in found}
            if not oids:
                return oids
            asked = True
        self._refresh_for(oids)
        where = self.packs.where
        rest = {o for o in oids if o not in where}  # the only set made: the caller's strings, not copies
        if rest and not asked:
            rest -= self.loose.present(rest, lookup)
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
        return self.loose.iter_oids()

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
        self.loose.remove(oids)

    def sweep_temps(self, *, max_age: float = STALE_AFTER) -> int:
        """Remove partial uploads that killed pushes left in `<root>/tmp/` (`Loose.sweep_temps`).

        Raises:
            RemoteError: the temporary directory cannot be listed or cleaned.
        """
        return self.loose.sweep_temps(max_age=max_age)

    def _transfer(
        self, upload: bool, items: Sequence[tuple[str, LocalFile]], *, jobs: int, on_done: OnDone | None,
        raise_first: bool = False, check: bool = False,
    ) -> dict[str, PipeError]:
        return self.loose.transfer(
            upload, items, jobs=jobs, on_done=on_done, raise_first=raise_first, check=check, wrap=self._transfer_error
        )

    # -- errors ----------------------------------------------------------------------------------

    def _transfer_error(self, upload: bool, oid: str, exc: BaseException) -> PipeError:
        if isinstance(exc, PipeError):
            return exc
        relpath = oid_to_relpath(oid)
        if not upload and isinstance(exc, FileNotFoundError):
            return ObjectNotFoundError(
                f"object '{oid}' is not on remote '{self.name}' ({self.url}/{relpath}){self.packs.note()}"
            )
        return self.loose.error("upload" if upload else "download", relpath, exc)



# mypy (strict, in CI) proves a remote speaks the shared vocabulary.
_CHECK_PROTOCOL: type[ObjectDB] = Remote
