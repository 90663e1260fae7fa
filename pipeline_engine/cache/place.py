"""Put cache objects into the workspace, never one whose content does not match its oid.

A copy is hashed as it is written and a mismatching temporary file is never renamed into
place; an object that is linked (hardlink, symlink, reflink) is verified before it is first
linked, and the verification is remembered by the object's stat data in the hash memo, so the
next checkout does not read it again. A corrupt object is moved to the store's quarantine.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Collection, Sequence
from pathlib import Path

from pipeline_engine.cache.link import SHARING_TYPES, LinkType, link
from pipeline_engine.cache.memo import FileStamp, HashMemo, stamp_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.fsutil import remove_path, temp_name
from pipeline_engine.core.hashing import Oid, mismatch, verify_file
from pipeline_engine.core.parallel import map_chunked
from pipeline_engine.errors import CacheError, CheckoutError, ObjectNotFoundError, PathError

__all__ = ["Placer", "make_dirs", "relink"]

# Failures that no other cache.type would avoid: they reach the user as they are (cli maps OSErrors).
_NOT_ABOUT_LINKS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENAMETOOLONG})


class Placer:
    """Puts objects into the workspace atomically, never one whose content does not match its oid."""

    def __init__(
        self,
        store: ObjectStore,
        memo: HashMemo | None,
        link_types: Sequence[LinkType],
        *,
        trusted: Collection[str] = (),
    ) -> None:
        self.store = store
        self.memo = memo
        self.link_types = tuple(link_types)
        self.corrupt: set[str] = set()
        self._verified = set(trusted)
        self._lock = threading.Lock()

    def place(self, oid: Oid, dest: Path, *, isexec: bool) -> FileStamp | None:
        """Put object `oid` at `dest` (replacing what is there); None when the object is corrupt.

        The object is linked or copied to a temporary name beside `dest`, checked (a copy by the
        hash of the bytes it wrote, a link by verifying the object), and only then renamed over
        `dest`. Returns the stat data of what is now at `dest`, for the hash memo.
        """
        if oid in self.corrupt:
            return None
        obj = self.store.path_of(oid)
        tmp = dest.with_name(temp_name())
        try:
            linked = link(obj, tmp, self._types_for(isexec), isexec=isexec)
        except FileNotFoundError:
            if oid in self.corrupt:  # quarantined by another thread meanwhile
                return None
            raise ObjectNotFoundError(
                f"object '{oid}' is not in the cache", hint="run 'pipe pull' to fetch it"
            ) from None
        except OSError as exc:
            if exc.errno in _NOT_ABOUT_LINKS:
                raise  # a full disk or a read-only/denied directory: cli reports it by path and cause
            names = ",".join(t.value for t in self.link_types)
            raise CacheError(
                f"cannot create '{dest.name}' in '{dest.parent}' with cache.type '{names}': "
                f"{exc.strerror or exc}",
                hint="add 'copy' to cache.type in .pipe/config.yaml (e.g. 'reflink,copy')",
            ) from exc
        try:
            intact = mismatch(linked.copied, oid) is None if linked.copied is not None else self.verify(oid)
            if intact:
                os.replace(tmp, dest)
                if linked.kind is LinkType.HARDLINK:
                    # rename() between two links to one inode succeeds and does nothing.
                    remove_path(tmp)
        except BaseException:
            remove_path(tmp)
            raise
        if not intact:
            remove_path(tmp)
            self._quarantine(oid)
            return None
        return stamp_of(os.stat(dest))

    def verify(self, oid: Oid) -> bool:
        """True when the object hashes to `oid`; remembered by its stat data in the memo."""
        if oid in self._verified:
            return True
        obj = self.store.path_of(oid)
        try:
            st = os.stat(obj)
        except FileNotFoundError:
            return False  # quarantined by another thread between linking and verifying
        stamp = stamp_of(st)
        if self.memo is not None and self.memo.is_verified(oid, stamp):
            ok = True
        else:
            ok = verify_file(obj, oid, st.st_size) is None
            if ok and self.memo is not None:
                self.memo.put_verified([(oid, stamp)])
        if ok:
            with self._lock:
                self._verified.add(oid)
        return ok

    def _types_for(self, isexec: bool) -> tuple[LinkType, ...]:
        # A hardlink or symlink shares the object's read-only mode: an executable file is copied.
        if isexec and self.link_types and self.link_types[0] in SHARING_TYPES:
            return (LinkType.COPY,)
        return self.link_types

    def _quarantine(self, oid: Oid) -> None:
        with self._lock:
            if oid in self.corrupt:
                return
            self.corrupt.add(oid)
            if self.store.exists(oid):
                self.store.quarantine(oid)


def relink(
    store: ObjectStore,
    memo: HashMemo | None,
    files: Sequence[tuple[str, Path, Oid, bool]],
    link_types: Sequence[LinkType],
    fresh: Collection[str],
) -> None:
    """Replace workspace copies by links when the preferred link type shares storage.

    `fresh` objects were hashed as they were copied in by this command; others are verified
    first, and one found corrupt is replaced by the workspace copy (which hashes to its oid).
    """
    if not link_types or link_types[0] not in SHARING_TYPES:
        return
    placer = Placer(store, memo, link_types, trusted=fresh)
    # Executables stay copies (see Placer._types_for); files already linked to their object
    # (adding a linked directory again) need neither verifying nor linking.
    todo = [f for f in files if not f[3] and not _is_linked(f[1], store.path_of(f[2]))]
    checked = map_chunked(lambda f: (f, placer.verify(f[2])), todo)
    for (_, path, oid, _), intact in checked:
        if not intact:
            if store.exists(oid):
                store.quarantine(oid)
            store.put(oid, path)

    def work(item: tuple[str, Path, Oid, bool]) -> tuple[str, FileStamp, Oid] | None:
        rel, path, oid, _ = item
        st = placer.place(oid, path, isexec=False)
        return None if st is None else (rel, st, oid)

    placed = map_chunked(work, todo)
    if memo is not None:
        memo.put_many(p for p in placed if p is not None)


def _is_linked(path: Path, obj: Path) -> bool:
    """True when `path` is a hardlink of `obj` or a symlink to it."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return os.readlink(path) == str(obj)
        obj_st = os.stat(obj)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (obj_st.st_dev, obj_st.st_ino)


def make_dirs(base: Path, relpath: str, dirs: Collection[str], *, force: bool) -> None:
    """Create the sub-directories of `base` that files go into, never through a symlink leading out.

    One lstat per distinct directory (and a realpath for a symlinked one): a committed symlink
    `data/sub -> /etc` must not let checkout write into /etc.
    """
    base.mkdir(parents=True, exist_ok=True)
    real_base = os.path.realpath(base)
    checked: set[str] = {""}

    def ensure(rel: str) -> None:
        if rel in checked:
            return
        ensure(os.path.dirname(rel))
        path = base / rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            path.mkdir()
        else:
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                if not real.startswith(real_base + os.sep) or not os.path.isdir(real):
                    raise PathError(
                        f"'{relpath}/{rel}' is a symlink leading outside '{relpath}' (to '{real}'); "
                        "checkout will not write through it",
                        hint=f"remove the link '{relpath}/{rel}', then run 'pipe checkout' again",
                    )
            elif not stat.S_ISDIR(st.st_mode):
                if not force:
                    raise CheckoutError(
                        f"'{relpath}/{rel}' is a file where the tracked directory has a directory",
                        hint="rerun with '--force' to replace it",
                    )
                remove_path(path)
                path.mkdir()
        checked.add(rel)

    for d in sorted(dirs):
        ensure(d)
