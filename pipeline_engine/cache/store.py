"""ObjectStore: write-once, read-only, content-addressed files under one root."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

from pipeline_engine.core.fsutil import temp_name
from pipeline_engine.core.hashing import Oid, copy_hashed, hash_bytes, hash_file
from pipeline_engine.core.layout import is_valid_oid, oid_to_relpath, relpath_to_oid
from pipeline_engine.core.parallel import map_chunked
from pipeline_engine.errors import CacheError, CorruptObjectError, ObjectNotFoundError

__all__ = ["ObjectStore"]

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_TMP_DIR = "tmp"
_QUARANTINE_DIR = "quarantine"
# Above this many oids, `missing` lists fan-out directories instead of checking each object.
_LIST_THRESHOLD = 512


class ObjectStore:
    """Objects live at `<root>/<2 hex>/<30 hex>`; temporary files in `<root>/tmp/`.

    An object is written to a temporary file inside the store, flushed, then renamed into
    place, so an object under its final name is always complete. Objects are never modified.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made_dirs: set[str] = set()

    def path_of(self, oid: str) -> Path:
        """Return where `oid` is (or would be) stored.

        Raises:
            CacheError: `oid` is not an oid: a name from a hostile file never becomes a path.
        """
        if not is_valid_oid(oid):
            raise CacheError(f"'{oid}' is not a valid object id", hint="the file that named it is corrupt")
        return self.root / oid_to_relpath(oid)

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

    def add_files(
        self, items: Sequence[tuple[Path, Oid]], *, jobs: int = 8, on_done: Callable[[], None] | None = None
    ) -> int:
        """Copy many hashed files into the store; returns how many were new.

        Copies run in a thread pool (file creation is latency-bound), then one `syncfs` makes
        them all durable before any is renamed into place: the same guarantee as a per-object
        fsync (an object under its final name is complete) at the cost of one flush, not one each.
        """
        unique = {oid: src for src, oid in items}
        todo = [(src, oid) for oid, src in unique.items() if not self.exists(oid)]
        temps = _Temps()
        root = str(self.root)
        for fanout in {oid[:2] for _, oid in todo}:
            self._ensure_dir(self.root / fanout)

        def copy(item: tuple[Path, Oid]) -> tuple[str, str]:
            src, oid = item
            # Beside its final name, not in one shared tmp/: creating thousands of files in a
            # single directory serialises on that directory's lock.
            dest = f"{root}/{oid[:2]}/{oid[2:]}"
            tmp = f"{root}/{oid[:2]}/{temp_name()}"
            if not temps.add(tmp):
                raise CacheError("stopped")  # add_files has returned or raised already: no one sees this
            copied = copy_hashed(src, tmp, mode=_READ_ONLY)
            if temps.closed:
                _unlink_quietly(tmp)
                raise CacheError("stopped")
            if copied != oid:
                raise CacheError(
                    f"'{src}' changed while it was being cached; nothing was stored for it",
                    hint="run the command again once the file is no longer being written",
                )
            if on_done is not None:
                on_done()
            return tmp, dest

        try:
            return self._commit_many(map_chunked(copy, todo, jobs=jobs), jobs=jobs)
        finally:
            for tmp in temps.close():  # renamed ones are gone already
                _unlink_quietly(tmp)

    def adopt_verified(self, items: Sequence[tuple[Path, Oid]]) -> int:
        """Move files the caller has already hashed to their oids (downloads in `<root>/tmp/`) into place.

        No copy: the files are on the store's filesystem already. One flush covers them all, as
        in `add_files`. Files whose object already exists are deleted. Returns how many were new.
        """
        staged: list[tuple[str, str]] = []
        try:
            for download, oid in items:
                if self.exists(oid):
                    os.unlink(download)
                else:
                    os.chmod(download, _READ_ONLY)
                    self._ensure_dir(self.root / oid[:2])
                    staged.append((str(download), str(self.path_of(oid))))
            return self._commit_many(staged)
        finally:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _commit_many(self, staged: Sequence[tuple[str, str]], *, jobs: int = 8) -> int:
        """Make staged read-only temporary files durable, then rename each to its final name."""
        if not staged:
            return 0
        _sync_filesystem(self.root)
        map_chunked(lambda pair: os.replace(*pair), staged, jobs=jobs)
        return len(staged)

    def add_verified(self, src: Path, oid: str) -> bool:
        """Move a downloaded file into the store after checking it hashes to `oid`.

        Raises:
            CorruptObjectError: the content does not match; `src` is deleted.
        """
        actual = hash_file(src)
        expected = oid.removesuffix(".dir")
        if actual != expected:
            with contextlib.suppress(OSError):
                os.unlink(src)
            raise CorruptObjectError(f"object '{oid}' is corrupt: its content hashes to '{actual}'")
        dest = self.path_of(oid)
        if dest.exists():
            os.unlink(src)
            return False
        return self._commit(src, dest, fsync=True)

    def add_bytes(self, data: bytes, *, suffix: str = "") -> Oid:
        """Store `data` (a manifest, a run record) and return its oid (plus `suffix`)."""
        oid = Oid(hash_bytes(data) + suffix)
        dest = self.path_of(oid)
        if not dest.exists():
            tmp = self._tmp_path(oid)
            tmp.write_bytes(data)
            self._commit(tmp, dest, fsync=True)
        return oid

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
        if hash_bytes(data) != oid.removesuffix(".dir"):
            raise CorruptObjectError(f"object '{oid}' in the cache is corrupt", hint="run 'pipe cache verify'")
        return data

    def is_intact(self, oid: str) -> bool:
        """True when the stored object hashes to its oid (re-reads the whole file)."""
        try:
            return hash_file(self.path_of(oid)) == oid.removesuffix(".dir")
        except FileNotFoundError:
            return False

    def iter_oids(self) -> Iterator[Oid]:
        """Yield the oid of every object in the store."""
        if not self.root.is_dir():
            return
        with os.scandir(self.root) as fanouts:
            for fanout in fanouts:
                if len(fanout.name) != 2 or not fanout.is_dir():
                    continue
                with os.scandir(fanout.path) as objects:
                    for obj in objects:
                        oid = relpath_to_oid(f"{fanout.name}/{obj.name}")
                        if oid is not None:
                            yield oid

    def size_of(self, oid: str) -> int:
        """Return the stored object's size in bytes."""
        return self.path_of(oid).stat().st_size

    def remove(self, oid: str) -> None:
        """Delete an object (gc); a missing object is not an error."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_of(oid))

    def quarantine(self, oid: str) -> Path:
        """Move a corrupt object out of the store, keeping it for inspection; returns where."""
        qdir = self.root.parent / _QUARANTINE_DIR
        qdir.mkdir(parents=True, exist_ok=True)
        dest = qdir / oid
        os.replace(self.path_of(oid), dest)
        return dest

    def _tmp_path(self, oid: str) -> Path:
        """A new, empty temporary file in `<root>/tmp/`, named by `temp_name` (its PID tells a leftover)."""
        tmp_dir = self.root / _TMP_DIR
        if _TMP_DIR not in self._made_dirs:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(_TMP_DIR)
        path = tmp_dir / temp_name()
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        return path

    def _ensure_dir(self, fanout_dir: Path) -> None:
        if fanout_dir.name not in self._made_dirs:
            fanout_dir.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(fanout_dir.name)

    def _commit(self, tmp: Path, dest: Path, *, fsync: bool) -> bool:
        self._ensure_dir(dest.parent)
        os.chmod(tmp, _READ_ONLY)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, dest)
        return True


class _Temps:
    """The temporary files copying threads make; once closed, they make no more and remove their own.

    An interrupt can end `add_files` while copies still run in pool threads; they must not leave
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


def _unlink_quietly(path: str) -> None:
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
