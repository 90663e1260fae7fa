"""The packs of one remote (`<root>/packs/`): which objects they hold, writing new ones, reading objects out.

Only an index makes a pack's objects exist: a pack is uploaded whole before its index, and an
index counts only while the listing of `packs/` shows its pack too (so a cached index of a pack
someone deleted never vouches for anything). The listing is taken once per `Packs` (one request),
indexes are downloaded once and kept in `cache_dir` (re-checked each time they are loaded, as the
files they came from). Files are never rewritten: gc writes a new pack and index before it deletes
the old index, then the old pack (`remote.prune`).

Building and publishing new packs is `remote.packwrite`; reading objects out of them, `remote.packread`;
deleting and repacking, `remote.prune`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write, temp_name
from pipeline_engine.errors import RemoteError
from pipeline_engine.remote.batch import Batch
from pipeline_engine.remote.locmap import Loc, LocMap
from pipeline_engine.remote.pack import (
    MAX_INDEX_BYTES,
    LocalFile,
    PackIndex,
    encode_index,
    is_pack_name,
    parse_index,
)
from pipeline_engine.remote.packwrite import PACK_JOBS, write_packs
from pipeline_engine.remote.partial import entry_mtime

__all__ = ["PACKS_DIR", "PACK_JOBS", "Loc", "LocMap", "Packs", "Site"]

#: Under a remote's root: `<name>.pack` and `<name>.idx` files.
PACKS_DIR = "packs"


@dataclass(frozen=True, slots=True)
class Site:
    """How `Packs` reaches its remote: filesystem, root, names for messages, upload and error types.

    `upload(local, final)` makes a local file visible under `final` only once complete.
    """

    fs: Any
    root: str
    label: str  # "remote 'NAME' (URL)"
    upload: Callable[[Path, str], None]
    errors: tuple[type[BaseException], ...]
    work_dir: Path
    cache_dir: Path | None
    jobs: int
    must_list: bool = True  # False: a refused listing means no packs (read-only HTTP servers may refuse)
    # A directory on the remote's own filesystem (a local remote's `tmp/`) where new packs and
    # indexes are written, so that `upload` publishes them by a rename instead of a second copy;
    # None: they are written in `work_dir` and copied. Names end in `build_suffix` (the remote's
    # partial-upload names, so a killed push's leftovers are swept like any partial upload).
    build_dir: Path | None = None
    build_suffix: str = ".pack"


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    size: int | None  # None: the backend's listing does not say (HTTP)
    mtime: float | None


class Packs:
    """The packs of one remote as its `packs/` listing shows them (loaded on first use)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.dir = f"{site.root}/{PACKS_DIR}"
        self._where: LocMap | None = None
        # Packs were uploaded since `where` was loaded. Their rows are not added as they go up:
        # a million-object push would keep a map entry per object it will never ask about.
        self._stale = False
        self.sizes: dict[str, int] = {}  # pack name -> bytes, for the packs whose index counts
        self.problems: dict[str, RemoteError] = {}  # index relpath -> why it does not count
        self.orphans: list[_Entry] = []  # packs without an index: in flight, or left by a killed push
        self.strays: list[str] = []  # indexes whose pack is gone

    # -- what is there ---------------------------------------------------------------------------

    @property
    def where(self) -> LocMap:
        """oid -> Loc for every object of every counting pack (lists `packs/` on first use).

        Raises:
            RemoteError: `packs/` cannot be listed or an index cannot be downloaded.
        """
        if self._where is None:
            self._where = LocMap()
            self._load()
        elif self._stale:  # packs uploaded since: counted from the next listing (their indexes are cached)
            self._stale = False
            self._load()
        return self._where

    @property
    def known(self) -> LocMap:
        """`where` as last loaded, without listing again for packs this `Packs` uploaded since."""
        return self._where if self._where is not None else self.where

    def locate(self, oid: str) -> Loc | None:
        """The object's place in a pack, or None when no counting pack holds it."""
        return self.where.get(oid)

    def relpath(self, pack: str, ext: str = ".pack") -> str:
        """`packs/<pack><ext>`, as messages name it (relative to the remote's root)."""
        return f"{PACKS_DIR}/{pack}{ext}"

    def note(self) -> str:
        """A clause for 'object not found' messages when some index could not be read, else ''."""
        if not self.problems:
            return ""
        first = next(iter(self.problems.values()))
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"; {first}{more}"

    @property
    def is_loaded(self) -> bool:
        """True once `packs/` has been listed (by an earlier call: see `refresh`)."""
        return self._where is not None

    def refresh(self) -> None:
        """List `packs/` again: count packs pushed since (another process may have), forget deleted ones.

        Indexes already loaded are not read again.

        Raises:
            RemoteError: `packs/` cannot be listed or an index cannot be downloaded.
        """
        if self._where is None:
            self.where  # noqa: B018 - the first listing
            return
        self._stale = False
        self._load()

    def _load(self) -> None:
        listing = self._list()
        packs = {e.name[:-5]: e for e in listing if e.name.endswith(".pack") and is_pack_name(e.name[:-5])}
        indexes = {e.name[:-4]: e for e in listing if e.name.endswith(".idx") and is_pack_name(e.name[:-4])}
        self.orphans = [packs[n] for n in sorted(packs) if n not in indexes]
        self.strays = [n for n in sorted(indexes) if n not in packs]
        counted = sorted(n for n in indexes if n in packs)
        for name in [n for n in self.sizes if n not in counted]:  # deleted since the last listing
            self.drop(name)
        self.problems = {k: v for k, v in self.problems.items() if k.rpartition("/")[2][:-4] in counted}
        known = {self.relpath(n, ".idx") for n in self.sizes} | set(self.problems)
        new = [n for n in counted if self.relpath(n, ".idx") not in known]
        loaded = self.each(lambda n: self._index(n, indexes[n], packs[n].size), new)
        for index in loaded:
            if index is not None:
                self.add(index)

    def _list(self) -> list[_Entry]:
        try:
            entries = self.site.fs.ls(self.dir, detail=True)
        except (FileNotFoundError, NotADirectoryError):  # no packs/ (yet), or its parent is not a directory
            return []
        except self.site.errors as exc:
            # A server refusing to list (an HTTP status) has no packs to offer; one that cannot
            # be reached at all (a connection error is an OSError) is an error like anywhere else.
            if not self.site.must_list and not isinstance(exc, OSError):
                return []
            raise self.error("list", PACKS_DIR, exc) from exc
        return [
            _Entry(posixpath.basename(str(e["name"]).rstrip("/")), _size(e.get("size")), entry_mtime(e))
            for e in entries
            if e.get("type") != "directory"
        ]

    def _index(self, name: str, listed: _Entry, pack_size: int | None) -> PackIndex | None:
        """The checked index of pack `name`, from the local cache or the remote; None (a problem noted) if bad.

        A cached copy is used only while the listing shows the remote file with the same size and
        modification time (an index is never rewritten; one that changed anyway is read again).
        """
        idx_size = listed.size
        where = f"{self.site.label}: {self.relpath(name, '.idx')}"
        try:
            if idx_size is not None and idx_size > MAX_INDEX_BYTES:
                raise RemoteError(f"pack index '{where}' is invalid: {idx_size} bytes is too large")
            index = self._cached(name, listed, where)
            if index is None:
                try:
                    data = self.site.fs.cat_file(f"{self.dir}/{name}.idx")
                except FileNotFoundError:
                    return None  # deleted since the listing: its pack goes with it
                except self.site.errors as exc:
                    raise self.error("download", self.relpath(name, ".idx"), exc) from exc
                index = parse_index(bytes(data), name=name, where=where)
                self._store(name, bytes(data), listed)
            if pack_size is not None and index.size != pack_size:
                raise RemoteError(
                    f"pack index '{where}' is invalid: it describes a pack of {index.size} bytes, "
                    f"the remote's has {pack_size}"
                )
        except RemoteError as exc:
            self.problems[self.relpath(name, ".idx")] = exc
            return None
        return index

    def _cached(self, name: str, listed: _Entry, where: str) -> PackIndex | None:
        if self.site.cache_dir is None:
            return None
        path = self.site.cache_dir / f"{name}.idx"
        try:
            st = path.stat()
            if listed.size is None or listed.mtime is None:  # nothing to tell a changed index by
                return None
            if st.st_size != listed.size or abs(st.st_mtime - listed.mtime) > 1e-3:
                return None
            return parse_index(path.read_bytes(), name=name, where=where)
        except (OSError, RemoteError):
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def add(self, index: PackIndex) -> None:
        """Count the objects of `index` (a pack whose index is on the remote)."""
        where = self.where if self._where is not None else LocMap()
        self._where = where
        self.sizes[index.name] = index.size
        for row in index.rows:  # an object in two packs is in both: it stays while either does
            where.add(row.oid, Loc(index.name, row.offset, row.length))

    def drop(self, pack: str) -> None:
        """Forget pack `pack` (its index was deleted)."""
        self.sizes.pop(pack, None)
        if self._where is not None:
            self._where.drop_pack(pack)

    def rows_by_pack(self) -> dict[str, dict[str, Loc]]:
        """pack name -> its objects (oid -> Loc); an object in two packs is in both."""
        by = self.where.by_pack()
        for name in self.sizes:
            by.setdefault(name, {})
        return by

    # -- writing ---------------------------------------------------------------------------------

    def write(
        self, items: Sequence[tuple[str, LocalFile, int]], batch: Batch, *, pack_size: int, hold_last: bool = False
    ) -> list[tuple[str, LocalFile, int]]:
        """Bundle (oid, local path, size) objects into packs of about `pack_size` bytes and upload them.

        Each pack is uploaded before its index; its objects are reported to `batch` once the index
        is up. With `hold_last`, the last pack (not full: the items ran out) is not written: its
        items are returned for the caller to send with the next ones. Otherwise returns [].
        A local directory remote's packs may be built by forked processes (`remote.packwrite`).
        """
        return write_packs(self, items, batch, pack_size=pack_size, hold_last=hold_last)

    def upload(self, local_pack: Path, index: PackIndex) -> None:
        """Upload a pack file, then its index (which makes its objects exist), and count them.

        Raises:
            OSError, ValueError or a backend error: an upload failed (the pack stays invisible).
        """
        if self.site.build_dir is not None:
            self.site.build_dir.mkdir(parents=True, exist_ok=True)
        self.site.upload(local_pack, f"{self.dir}/{index.name}.pack")
        data = encode_index(index)
        local_idx = (self.site.build_dir or self.site.work_dir) / temp_name(self.site.build_suffix)
        final = f"{self.dir}/{index.name}.idx"
        try:
            local_idx.write_bytes(data)
            self.site.upload(local_idx, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                local_idx.unlink()
        self._stale = self._where is not None
        self._keep(index.name, data, final)

    def _keep(self, name: str, data: bytes, final: str) -> None:
        """Keep a just-uploaded index in the local cache, stamped as the remote shows it (one request),
        so the next command does not download what this one wrote."""
        if self.site.cache_dir is None:
            return
        try:
            listed = self.site.fs.info(final)
        except self.site.errors:  # the cache only saves a download
            return
        self._store(name, data, _Entry(name, _size(listed.get("size")), entry_mtime(listed)))

    def _store(self, name: str, data: bytes, listed: _Entry) -> None:
        """Write an index's bytes to the local cache with the remote file's modification time."""
        if self.site.cache_dir is None or listed.size != len(data) or listed.mtime is None:
            return
        with contextlib.suppress(OSError):  # the cache only saves a download
            self.site.cache_dir.mkdir(parents=True, exist_ok=True)
            cached = self.site.cache_dir / f"{name}.idx"
            atomic_write(cached, data, fsync=False)
            os.utime(cached, (listed.mtime, listed.mtime))

    # -- deleting --------------------------------------------------------------------------------

    def delete(self, pack: str) -> None:
        """Delete a pack: its index first (its objects stop existing), then the pack file.

        Raises:
            RemoteError: a file could not be deleted.
        """
        for ext in (".idx", ".pack"):
            self.delete_file(f"{pack}{ext}")
            if ext == ".idx":
                self.drop(pack)

    def delete_file(self, name: str) -> None:
        """Delete `packs/<name>`; already gone is fine.

        Raises:
            RemoteError: the file could not be deleted.
        """
        try:
            self.site.fs.rm_file(f"{self.dir}/{name}")
        except FileNotFoundError:
            pass
        except self.site.errors as exc:
            raise self.error("delete", f"{PACKS_DIR}/{name}", exc) from exc

    def fetch_whole(self, pack: str, local: Path) -> None:
        """Download pack `pack` to the local file `local` (for repacking).

        Raises:
            RemoteError: the download failed.
        """
        try:
            self.site.fs.get_file(f"{self.dir}/{pack}.pack", str(local))
        except self.site.errors as exc:
            raise self.error("download", self.relpath(pack), exc) from exc

    # -- helpers ---------------------------------------------------------------------------------

    def each(self, fn: Callable[[Any], Any], args: Sequence[Any], *, jobs: int | None = None) -> list[Any]:
        """`fn` of every argument, at most `jobs` (and the remote's jobs) at a time, results in order."""
        workers = min(jobs or self.site.jobs, self.site.jobs, len(args))
        if workers <= 1:
            return [fn(a) for a in args]
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, args))

    def error(self, verb: str, what: str, exc: BaseException) -> RemoteError:
        """A RemoteError naming the remote, what was being done to `what` (a relpath), and why."""
        reason = str(exc) or type(exc).__name__
        return RemoteError(f"{self.site.label}: cannot {verb} '{what}': {reason}")


def _size(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


