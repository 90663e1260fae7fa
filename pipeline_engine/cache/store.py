"""ObjectStore: write-once, read-only, content-addressed files under one root (an `ObjectDB`)."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path

from pipeline_engine.cache.memo import FileStamp
from pipeline_engine.core.fsutil import shown_path, temp_name
from pipeline_engine.core.hashing import (
    Oid,
    copy_hashed,
    hash_bytes,
    mismatch,
    new_hasher,
    verify_bytes,
    verify_file,
)
from pipeline_engine.core.layout import (
    is_valid_oid,
    oid_to_relpath,
    quarantine_dir,
    relpath_to_oid,
    store_tmp_dir,
)
from pipeline_engine.core.objectdb import ObjectDB, OnDone
from pipeline_engine.core.parallel import map_chunked
from pipeline_engine.errors import CacheError, CorruptObjectError, ObjectNotFoundError, PipeError

__all__ = ["ObjectStore"]

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
# Above this many oids, `missing` lists fan-out directories instead of checking each object.
_LIST_THRESHOLD = 512


class ObjectStore:
    """Objects live at `<root>/<2 hex>/<30 hex>`; temporary files beside them or in `<root>/tmp/`.

    An object is written to a temporary file inside the store, flushed, then renamed into
    place, so an object under its final name is always complete. Objects are never modified.
    Nothing enters the store unhashed: `put_many` hashes what it copies, `put_bytes` what it
    writes; only `put_many(verified=True)` trusts its caller, who checked each file with
    `core.hashing.verify_file` (fetch does, as each download arrives).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made_dirs: set[str] = set()

    @property
    def quarantine_dir(self) -> Path:
        """Where corrupt objects go (`quarantine`)."""
        return quarantine_dir(self.root)

    @property
    def tmp_dir(self) -> Path:
        """Temporary files on the store's filesystem (downloads that `put_many(verified=True)` moves in)."""
        return store_tmp_dir(self.root)

    def path_of(self, oid: str) -> Path:
        """Return where `oid` is (or would be) stored.

        Raises:
            CacheError: `oid` is not an oid: a name from a hostile file never becomes a path.
        """
        if not is_valid_oid(oid):
            raise CacheError(f"'{oid}' is not a valid object id", hint="the file that named it is corrupt")
        return self.root / oid_to_relpath(oid)

    # -- queries -------------------------------------------------------------------------------

    def exists(self, oid: str) -> bool:
        """True when the object is present (its content is not checked)."""
        return os.path.exists(self.path_of(oid))

    def missing(self, oids: Collection[str]) -> set[str]:
        """The subset of `oids` not in the store.

        For many oids, one directory listing per fan-out directory is far cheaper than a `stat`
        per object (10,000 objects: ~256 listings instead of 10,000 stats).
        """
        if len(oids) <= _LIST_THRESHOLD:
            return {o for o in oids if not self.exists(o)}
        by_fanout: dict[str, list[str]] = {}
        for o in oids:
            by_fanout.setdefault(o[:2], []).append(o)
        absent: set[str] = set()
        for fanout, group in by_fanout.items():
            try:
                present = set(os.listdir(os.path.join(self.root, fanout)))
            except FileNotFoundError:
                present = set()
            absent.update(o for o in group if o[2:] not in present)
        return absent

    def iter_oids(self) -> Iterator[Oid]:
        """Yield the oid of every object in the store, in sorted order (one fan-out listing held at a time)."""
        if not self.root.is_dir():
            return
        with os.scandir(self.root) as it:
            fanouts = sorted(f.name for f in it if len(f.name) == 2 and f.is_dir())
        for fanout in fanouts:
            try:
                names = sorted(os.listdir(os.path.join(self.root, fanout)))
            except FileNotFoundError:
                continue
            for name in names:
                oid = relpath_to_oid(f"{fanout}/{name}")
                if oid is not None:
                    yield oid

    def size_of(self, oid: str) -> int:
        """Return the stored object's size in bytes."""
        return self.path_of(oid).stat().st_size

    def is_intact(self, oid: str) -> bool:
        """True when the stored object hashes to its oid (re-reads the whole file)."""
        try:
            return verify_file(self.path_of(oid), oid) is None
        except FileNotFoundError:
            return False

    # -- bringing objects in -------------------------------------------------------------------

    def put(self, oid: str, path: Path) -> None:
        """Copy the file at `path` in as object `oid`, hashing what is copied.

        Raises:
            CorruptObjectError: the bytes copied do not hash to `oid`; nothing was stored.
        """
        for error in self.put_many([(oid, path)]).values():
            raise error

    def put_many(
        self,
        items: Sequence[tuple[str, Path]],
        *,
        verified: bool = False,
        jobs: int = 8,
        on_done: OnDone | None = None,
    ) -> dict[str, PipeError]:
        """Bring `(oid, file)` pairs in; returns the refused ones by oid (the others are stored).

        Without `verified`, each file is copied in a thread pool and hashed as it is copied (a
        file that changed since its oid was computed is refused). With `verified`, the files are
        temporary files on the store's filesystem that the caller has checked with `verify_file`:
        they are moved into place, not read again, and gone afterwards (a duplicate is deleted).
        Either way one `syncfs` makes all of them durable before any is renamed into place: the
        guarantee of a per-object fsync (an object under its final name is complete) for one flush.
        An OSError (a full disk) stops the batch and nothing is renamed into place.
        """
        if verified:
            return self._adopt(items, on_done)
        unique = {oid: src for oid, src in items}
        todo = [(oid, src) for oid, src in unique.items() if not self.exists(oid)]
        temps = Temps()
        failures: dict[str, PipeError] = {}
        root = str(self.root)
        for fanout in {oid[:2] for oid, _ in todo}:
            self._ensure_dir(self.root / fanout)

        def copy(item: tuple[str, Path]) -> tuple[str, str] | None:
            oid, src = item
            # Beside its final name, not in one shared tmp/: creating thousands of files in a
            # single directory serialises on that directory's lock.
            tmp = f"{root}/{oid[:2]}/{temp_name()}"
            if not temps.add(tmp):
                raise CacheError("stopped")  # put_many has returned or raised already: no one sees this
            copied = copy_hashed(src, tmp, mode=READ_ONLY)
            if temps.closed:
                unlink_quietly(tmp)
                raise CacheError("stopped")
            error: PipeError | None = None
            if mismatch(copied, oid) is not None:
                unlink_quietly(tmp)
                error = failures[oid] = CorruptObjectError(
                    f"'{shown_path(src)}' changed while it was being cached; nothing was stored for it",
                    hint="run the command again once the file is no longer being written",
                )
            if on_done is not None:
                on_done(oid, error)
            return None if error else (tmp, f"{root}/{oid[:2]}/{oid[2:]}")

        try:
            staged = [s for s in map_chunked(copy, todo, jobs=jobs) if s is not None]
            self._commit_many(staged, jobs=jobs)
        finally:
            for tmp in temps.close():  # renamed ones are gone already
                unlink_quietly(tmp)
        return failures

    def _adopt(self, items: Sequence[tuple[str, Path]], on_done: OnDone | None) -> dict[str, PipeError]:
        staged: list[tuple[str, str]] = []
        # One listing per fan-out directory, not a stat (and two Paths) per object: fetch adopts thousands.
        absent = self.missing({oid for oid, _ in items})
        root = os.fspath(self.root)
        try:
            for oid, download in items:
                if not is_valid_oid(oid):
                    self.path_of(oid)  # raises: a name from a hostile file never becomes a path
                if oid not in absent:
                    os.unlink(download)  # present already (or a duplicate in `items`)
                else:
                    absent.discard(oid)
                    os.chmod(download, READ_ONLY)
                    self._ensure_dir(self.root / oid[:2])
                    staged.append((os.fspath(download), f"{root}/{oid_to_relpath(oid)}"))
                if on_done is not None:
                    on_done(oid, None)
            self._commit_many(staged)
        except BaseException:
            for tmp, _ in staged:  # renamed ones are gone already; on success all are
                unlink_quietly(tmp)
            raise
        return {}

    def ingest(
        self,
        items: Sequence[tuple[str | os.PathLike[str], FileStamp]],
        *,
        jobs: int = 8,
        on_done: Callable[[int], None] | None = None,
    ) -> tuple[list[Oid], set[Oid]]:
        """Copy workspace files in while hashing them (`pipe add`): `cache.ingest.ingest`, which
        says how and what it raises. Returns each item's oid, in order, and the oids added."""
        from pipeline_engine.cache.ingest import ingest  # it builds on this module

        return ingest(self, items, jobs=jobs, on_done=on_done)

    def put_chunks(self, chunks: Iterable[bytes], *, suffix: str = "") -> Oid:
        """`put_bytes` for content made in pieces (a large manifest): hashed as written, never held whole."""
        tmp = self._tmp_path()
        try:
            h = new_hasher()
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    h.update(chunk)
                    f.write(chunk)
            oid = Oid(h.hexdigest() + suffix)
            dest = self.path_of(oid)
            if dest.exists():
                unlink_quietly(str(tmp))
            else:
                self._commit(tmp, dest)
        except BaseException:
            unlink_quietly(str(tmp))
            raise
        return oid

    def put_bytes(self, data: bytes, *, suffix: str = "") -> Oid:
        """Store `data` (a manifest, a run record) under its hash (plus `suffix`) and return that oid."""
        oid = Oid(hash_bytes(data) + suffix)
        dest = self.path_of(oid)
        if not dest.exists():
            tmp = self._tmp_path()
            tmp.write_bytes(data)
            self._commit(tmp, dest)
        return oid

    # -- taking objects out --------------------------------------------------------------------

    def read_bytes(self, oid: str) -> bytes:
        """Return an object's content, checked against its oid.

        Raises:
            ObjectNotFoundError: the object is not in the store.
            CorruptObjectError: the content does not hash to `oid`.
        """
        try:
            data = self.path_of(oid).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object '{oid}' is not in the cache") from None
        if verify_bytes(data, oid) is not None:
            raise CorruptObjectError(f"object '{oid}' in the cache is corrupt", hint="run 'pipe cache verify'")
        return data

    def get(self, oid: str, dest: Path) -> None:
        """Copy object `oid` to the new file `dest`, hashing what is copied.

        Raises:
            ObjectNotFoundError: the object is not in the store.
            CorruptObjectError: its content does not hash to `oid` (`dest` is not left behind).
        """
        for error in self.get_many([(oid, dest)]).values():
            raise error

    def get_many(
        self, items: Sequence[tuple[str, Path]], *, jobs: int = 8, on_done: OnDone | None = None
    ) -> dict[str, PipeError]:
        """Copy `(oid, dest)` pairs out in a thread pool; returns the failures by oid (see `get`)."""
        failures: dict[str, PipeError] = {}

        def copy(item: tuple[str, Path]) -> None:
            oid, dest = item
            error: PipeError | None = None
            obj = self.path_of(oid)
            if not obj.exists():
                error = ObjectNotFoundError(f"object '{oid}' is not in the cache")
            else:
                try:
                    actual = copy_hashed(obj, dest)
                except FileExistsError:
                    raise  # not ours to delete
                except BaseException:
                    unlink_quietly(str(dest))
                    raise
                if mismatch(actual, oid) is not None:
                    unlink_quietly(str(dest))
                    error = CorruptObjectError(
                        f"object '{oid}' in the cache is corrupt", hint="run 'pipe cache verify'"
                    )
            if error is not None:
                failures[oid] = error
            if on_done is not None:
                on_done(oid, error)

        map_chunked(copy, list(items), jobs=jobs)
        return failures

    # -- removing objects ----------------------------------------------------------------------

    def remove(self, oids: Iterable[str]) -> None:
        """Delete objects (gc); absent ones are not an error."""
        for oid in oids:
            unlink_quietly(str(self.path_of(oid)))

    def quarantine(self, oid: str) -> Path:
        """Move a corrupt object out of the store, keeping it for inspection; returns where."""
        qdir = self.quarantine_dir
        qdir.mkdir(parents=True, exist_ok=True)
        dest = qdir / oid
        os.replace(self.path_of(oid), dest)
        return dest

    # -- writing -------------------------------------------------------------------------------

    def _commit_many(self, staged: Sequence[tuple[str, str]], *, jobs: int = 8) -> None:
        """Make staged read-only temporary files durable, then rename each to its final name."""
        if not staged:
            return
        _sync_filesystem(self.root)
        map_chunked(lambda pair: os.replace(*pair), staged, jobs=jobs)

    def _tmp_path(self) -> Path:
        """A new, empty temporary file in `<root>/tmp/`, named by `temp_name` (its PID tells a leftover)."""
        tmp_dir = self.tmp_dir
        if tmp_dir.name not in self._made_dirs:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(tmp_dir.name)
        path = tmp_dir / temp_name()
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        return path

    def _ensure_fanout(self, fan: str) -> None:
        """`_ensure_dir` by the fan-out directory's name (two hex digits): no Path per file."""
        if fan not in self._made_dirs:
            os.makedirs(os.path.join(self.root, fan), exist_ok=True)
            self._made_dirs.add(fan)

    def _ensure_dir(self, fanout_dir: Path) -> None:
        if fanout_dir.name not in self._made_dirs:
            fanout_dir.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(fanout_dir.name)

    def _commit(self, tmp: Path, dest: Path) -> None:
        self._ensure_dir(dest.parent)
        os.chmod(tmp, READ_ONLY)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)


# mypy (strict, in CI) proves the store speaks the shared vocabulary.
_CHECK_PROTOCOL: type[ObjectDB] = ObjectStore


class Temps:
    """The temporary files copying threads make; once closed, they make no more and remove their own.

    An interrupt can end `put_many` while copies still run in pool threads; they must not leave
    files behind the clean-up that has already run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: list[str] = []
        self.closed = False

    def add(self, path: str) -> bool:
        """Note a temporary file about to be made; False (do not make it) once closed."""
        with self._lock:
            if not self.closed:
                self._paths.append(path)
            return not self.closed

    def close(self) -> list[str]:
        """Stop new temporary files; return every one noted so far."""
        with self._lock:
            self.closed = True
            return list(self._paths)


def write_new(path: str, data: bytes) -> None:
    """Create the read-only file `path` (which must not exist) holding `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, READ_ONLY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        if exc.filename is None:  # os.write names no file: say which one (a full disk is reported by path)
            exc.filename = path
        raise
    finally:
        os.close(fd)


def unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding `path` (Linux `syncfs`; elsewhere a global `sync`)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
