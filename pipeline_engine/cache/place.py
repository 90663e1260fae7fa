"""Put cache objects into the workspace, never one whose content does not match its oid.

A copy is hashed as it is written and a mismatching temporary file is never renamed into
place; an object that is linked (hardlink, symlink, reflink) is verified before it is first
linked, and the verification is remembered by the object's stat data in the hash memo, so the
next checkout does not read it again. A corrupt object is moved to the store's quarantine.

Hardlinks and symlinks are made at their final name when nothing is there (creating a link is
atomic: there is no half-written state), else at a temporary name renamed over the old file;
copies and reflinks always go through a temporary name. Nothing is ever written through an
existing workspace file, so an edited file linked to an object never changes that object.

A link shares the object with the workspace, so an edit made in place through it (as root, or
after a chmod) changes the object: `cache.linkedit` deals with that.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pipeline_engine.cache.link import (
    SHARING_TYPES,
    CannotLink,
    LinkType,
    attempt_link,
    copy_object,
    file_mode,
    is_usable,
    link_error,
    mark_failed,
    reflink_file,
)
from pipeline_engine.cache.memo import FileStamp, HashMemo, stamp_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.forked import fork_jobs, map_forked
from pipeline_engine.core.fsutil import temp_name
from pipeline_engine.core.hashing import Oid, mismatch, verify_file
from pipeline_engine.core.layout import is_valid_oid, oid_to_relpath
from pipeline_engine.core.parallel import IO_JOBS, map_chunked
from pipeline_engine.core.tempsweep import sweep_pid
from pipeline_engine.errors import CacheError, ObjectNotFoundError

__all__ = ["Item", "Placer", "Stat"]

T = TypeVar("T")
# Threads placing hardlinks or symlinks (see Placer.__init__).
_LINK_JOBS = 2
# `place_many` shares its files between processes (`core.forked`) when each gets at least this many.
_FORK_MIN = 2000
# `_share_many`: fewer files than this are linked by the calling thread alone; progress is
# reported every `_ADVANCE_EVERY` files linked.
_SHARE_MIN = 256
_ADVANCE_EVERY = 512
#: One file to place: (absolute destination path, oid, exec bit).
Item = tuple[str, Oid, bool]
#: Stat data as the memo compares it: (inode, mtime_ns, size).
Stat = tuple[int, int, int]


class Placer:
    """Puts objects into the workspace atomically, never one whose content does not match its oid."""

    def __init__(
        self,
        store: ObjectStore,
        memo: HashMemo | None,
        link_types: Sequence[LinkType],
        *,
        trusted: Collection[str] = (),
        missing_ok: bool = False,
    ) -> None:
        self.store = store
        self.memo = memo
        self.link_types = tuple(link_types)
        self.corrupt: set[str] = set()
        # With `missing_ok`, objects not in the store are collected here (their files get None)
        # instead of raising ObjectNotFoundError.
        self.absent: set[str] = set()
        self._missing_ok = missing_ok
        self._trusted = frozenset(trusted)
        self._verified = set(self._trusted)
        self._lock = threading.Lock()
        # An object's read is made under its stripe: threads placing files of one object read it once.
        self._reading = tuple(threading.Lock() for _ in range(16))
        self._root = os.fspath(store.root)
        self._dev: int | None = None
        # Verification stamps read from the memo in one query for a batch (place_many).
        self._known: dict[str, Stat] | None = None
        self._asked: set[str] = set()  # the oids whose records `_known` holds (when found)
        self._new_verified: list[tuple[str, FileStamp]] = []
        # A hardlink or symlink shares the object's read-only mode: an executable file is copied.
        self._exec_types = (
            (LinkType.COPY,) if self.link_types and self.link_types[0] in SHARING_TYPES else self.link_types
        )
        self._modes = (file_mode(False), file_mode(True))
        # Verification records serve link types only: a copy-only configuration never reads them.
        self._links = memo is not None and any(t is not LinkType.COPY for t in self.link_types)
        # A link is a metadata change the kernel makes without waiting on the disk: more threads than
        # cores only fight over the GIL (10,000 hardlinks: 2 threads ~0.18 s, 8 threads ~0.24 s).
        # Copies wait on the disk, so they get many.
        self._sharing = bool(self.link_types) and self.link_types[0] in SHARING_TYPES
        self._jobs = _LINK_JOBS if self._sharing else IO_JOBS

    @property
    def shares(self) -> bool:
        """True when files are placed as links sharing the object's inode (hardlink, symlink): their
        stat data is the object's."""
        return self._sharing

    def place(self, oid: Oid, dest: Path | str, *, isexec: bool) -> FileStamp | None:
        """Put object `oid` at `dest` (replacing what is there); None when the object is corrupt.

        Returns the stat data of what is now at `dest`, for the hash memo.

        Raises:
            ObjectNotFoundError: the object is not in the cache.
            CacheError: no configured link type works here.
        """
        try:
            return self._place((os.fspath(dest), oid, isexec))
        finally:
            self._flush()

    def place_many(
        self,
        items: Sequence[Item],
        *,
        advance: Callable[[int], None] | None = None,
        recorded: Sequence[Stat | None] | None = None,
    ) -> list[FileStamp | None]:
        """`place` for many files, in threads; the results are in the order of `items`.

        `recorded[i]`, when given, is the stat data `(ino, mtime_ns, size)` the hash memo holds for
        the destination of `items[i]` with the same oid (`HashMemo.files_between`): a link pipe
        placed or hashed there before. An object whose stat equals it is that inode, unchanged since
        its content was found to be the oid, so it is verified without another record. The memo's
        verification records of the other linked objects are read in one query first.
        `advance(n)` is told, from any thread, that `n` more files are done.

        Raises: as `place`.
        """
        fast = self._sharing and self._can_share_fast(items)
        if not fast:
            recorded = None  # only the fast loop compares them
        if self._links:
            assert self.memo is not None
            wanted: set[str] = (
                {oid for (_, oid, _), seen in zip(items, recorded, strict=True) if seen is None}
                if recorded is not None else {oid for _, oid, _ in items}
            )
            self._asked = wanted - self._verified
            self._known = self.memo.get_verified(self._asked)

        def work(item: Item) -> FileStamp | None:
            stamp = self._place(item)
            if advance is not None:
                advance(1)
            return stamp

        try:
            if fast:
                return self._share_many(items, work, advance, recorded)
            # Links are cheap metadata calls: measured, a fork's cost ate what a second core saved.
            n = 1 if self._sharing else fork_jobs(len(items), min_per_process=_FORK_MIN)
            if n == 1:
                return map_chunked(work, items, jobs=self._jobs)
            return self._place_forked(items, n, advance)
        finally:
            self._known = None
            self._asked = set()
            self._flush()

    def _place_forked(
        self, items: Sequence[Item], n: int, advance: Callable[[int], None] | None
    ) -> list[FileStamp | None]:
        """`place_many` shared between `n` processes (`core.forked`), one contiguous share each: the
        Python around each file's few syscalls then runs on every core. A child hands back its
        stamps and what it learnt (objects verified, found corrupt or absent); only this process writes
        the memo."""
        bounds = [len(items) * k // n for k in range(n + 1)]
        jobs = max(1, self._jobs // n)

        def share(k: int) -> tuple[list[FileStamp | None], list[tuple[str, FileStamp]], set[str], set[str], set[str]]:
            part = items[bounds[k]:bounds[k + 1]]
            before = set(self._verified) if k else set()
            stamps = map_chunked(self._place, part, jobs=jobs)
            with self._lock:
                rows = list(self._new_verified) if k else []
            if not k:
                return stamps, rows, set(), set(), set()
            return stamps, rows, set(self.corrupt), self._verified - before, set(self.absent)

        stamps: list[FileStamp | None] = []
        # A child that dies (the OOM killer) leaves its half-made copies beside their destinations:
        # their directories are only listed then, not on every checkout.
        def sweep(pid: int) -> None:
            sweep_pid(pid, {os.path.dirname(dest) for dest, _, _ in items})

        parts = map_forked(share, n, sweep=sweep)
        for got, rows, corrupt, verified, absent in parts:
            stamps += got
            with self._lock:
                self._new_verified += rows
            self.corrupt |= corrupt
            self._verified |= verified
            self.absent |= absent
            if advance is not None:
                advance(len(got))
        return stamps

    def _can_share_fast(self, items: Sequence[Item]) -> bool:
        """True when `_share_many` may link `items`: the first link type still works on the store's
        device, no object was hashed by this command (those get memo rows, see `_share`) and every
        oid is a file oid (checked for all at once: the fast loop builds object paths unchecked)."""
        if self._trusted or not is_usable(self._device(), self.link_types[0]):
            return False
        joined = "".join(oid for _, oid, _ in items)
        try:
            return bytes.fromhex(joined).hex() == joined and len(joined) == 32 * len(items)
        except ValueError:
            return False

    def _share_many(
        self,
        items: Sequence[Item],
        work: Callable[[Item], FileStamp | None],
        advance: Callable[[int], None] | None,
        recorded: Sequence[Stat | None] | None,
    ) -> list[FileStamp | None]:
        """Hardlink or symlink `items` in `_LINK_JOBS` threads, one contiguous share each.

        The common file (its object verified before, by a memo record of its unchanged stat data;
        nothing at the destination; not executable) costs one stat and one link in a loop
        with no other Python around it: for 10,000 files, `_place`'s generality cost more than the
        kernel's work. Anything else (an existing destination, an object missing, unverified or
        corrupt, a link that fails) goes through `work`, the general path, which decides.

        A file whose recorded row did not match its object (a copy was there before: its own
        inode) is put aside, and the objects' verification records of all of those are read in
        one query for a second round, instead of one query each on the general path.
        """
        out: list[FileStamp | None] = [None] * len(items)
        known = self._known if self._known is not None else {}
        verified, corrupt, asked = self._verified, self.corrupt, self._asked
        make = os.link if self.link_types[0] is LinkType.HARDLINK else os.symlink
        root, stat_ = self._root + "/", os.stat
        seen = recorded if recorded is not None else [None] * len(items)

        def share(indices: Sequence[int], later: list[int] | None) -> None:
            general = False  # once a link failed, the rest of this share goes the general way
            fast = 0
            for i in indices:
                dest, oid, isexec = items[i]
                if not (general or isexec or oid in corrupt):
                    obj = f"{root}{oid[:2]}/{oid[2:]}"
                    try:
                        st = stat_(obj)
                        key = (st.st_ino, st.st_mtime_ns, st.st_size)
                        if seen[i] == key or oid in verified or known.get(oid) == key:
                            make(obj, dest)
                            out[i] = FileStamp(*key)
                            fast += 1
                            if fast == _ADVANCE_EVERY and advance is not None:
                                advance(fast)
                                fast = 0
                            continue
                        if later is not None and oid not in asked:
                            later.append(i)  # its record is read with the others' (second round)
                            continue
                    except FileNotFoundError:
                        pass  # an object or a directory gone: `_place` knows what to do
                    except FileExistsError:
                        general = True  # files in the way (a relink, modified files): `_place` replaces them
                    except OSError as exc:  # `_place` decides; too many links (EMLINK) is this object's alone
                        general = exc.errno != errno.EMLINK
                out[i] = work((dest, oid, isexec))  # counts itself
            if fast and advance is not None:
                advance(fast)

        def in_threads(indices: Sequence[int], later: list[list[int]] | None) -> None:
            if len(indices) < _SHARE_MIN:
                share(indices, later[0] if later is not None else None)
                return
            bounds = [len(indices) * k // self._jobs for k in range(self._jobs + 1)]
            with ThreadPoolExecutor(self._jobs) as pool:
                for done in [pool.submit(share, indices[bounds[k]:bounds[k + 1]], later[k] if later is not None else None)
                             for k in range(self._jobs)]:
                    done.result()

        later: list[list[int]] = [[] for _ in range(self._jobs)]
        in_threads(range(len(items)), later)
        second = sorted(i for part in later for i in part)
        if second:
            oids = {items[i][1] for i in second} - asked
            if self.memo is not None:
                known.update(self.memo.get_verified(oids))
            asked |= oids
            in_threads(second, None)
        return out

    def forget_verified(self) -> None:
        """Drop the in-process record of objects verified so far, to bound memory over a million
        files: the memo keeps their verification, so a later `place_many` reads it back in its one query."""
        if self.memo is not None:
            self._verified = set(self._trusted)

    def verify(self, oid: Oid) -> bool:
        """True when the object hashes to `oid`; remembered by its stat data in the memo."""
        if oid in self._verified:
            return True
        try:
            obj = self._object(oid)
            st = os.stat(obj)
        except FileNotFoundError:
            return False  # quarantined by another thread between linking and verifying
        try:
            return self._is_intact(oid, obj, st)
        finally:
            self._flush()

    # -- one file ----------------------------------------------------------------------------------

    def _place(self, item: Item) -> FileStamp | None:
        dest, oid, isexec = item
        if oid in self.corrupt:
            return None
        obj = self._object(oid)
        dev = self._dev if self._dev is not None else self._device()
        last: OSError | None = None
        for kind in self._exec_types if isexec else self.link_types:
            if not is_usable(dev, kind):
                continue
            try:
                if kind is LinkType.COPY:
                    return self._copy(obj, dest, oid, isexec)
                if kind is LinkType.REFLINK:
                    return self._reflink(obj, dest, oid, isexec)
                return self._share(kind, obj, dest, oid)
            except CannotLink as exc:
                if exc.cause.errno != errno.EMLINK:  # too many links to one object: only this file copies
                    mark_failed(dev, kind)
                last = exc.cause
            except FileNotFoundError:
                if os.path.exists(obj):
                    raise  # the destination's directory went away meanwhile: cli reports it by path
                if oid in self.corrupt:  # quarantined by another thread meanwhile
                    return None
                if os.path.exists(self.store.quarantine_dir / oid):  # ... or by another process
                    self.corrupt.add(oid)
                    return None
                if self._missing_ok:
                    self.absent.add(oid)
                    return None
                raise ObjectNotFoundError(
                    f"object '{oid}' is not in the cache", hint="run 'pipe pull' to fetch it"
                ) from None
        names = ",".join(t.value for t in self.link_types)
        name, where = os.path.basename(dest), os.path.dirname(dest)
        raise CacheError(
            f"cannot create '{name}' in '{where}' with cache.type '{names}': "
            f"{(last.strerror or last) if last else 'every type failed before'}",
            hint="add 'copy' to cache.type in .pipe/config.yaml (e.g. 'reflink,copy')",
        ) from last

    def _copy(self, obj: str, dest: str, oid: Oid, isexec: bool) -> FileStamp | None:
        """Copy, hashing the bytes written: a mismatching copy never replaces `dest`.

        A copy that matches verified the object as a side effect: remembered like `_check` does
        (when a link type is configured, even one that fails here), so a later hardlink or
        symlink checkout of it reads nothing.
        """
        tmp = _beside(dest)
        try:
            actual, st, obj_st = copy_object(obj, tmp, self._modes[isexec])
        except BaseException:
            _unlink_quietly(tmp)
            raise
        intact = mismatch(actual, oid) is None
        if intact and self._links and oid not in self._verified:
            self._verified.add(oid)
            with self._lock:  # _flush swaps this list
                self._new_verified.append((oid, stamp_of(obj_st)))
        return self._publish(tmp, dest, oid, st, lambda: intact)

    def _reflink(self, obj: str, dest: str, oid: Oid, isexec: bool) -> FileStamp | None:
        """Clone the object's extents (copy-on-write: a later edit never reaches the object)."""
        tmp = _beside(dest)
        st = attempt_link(reflink_file, obj, tmp, self._modes[isexec])  # fails first where reflinks cannot
        return self._publish(tmp, dest, oid, st, lambda: self._is_intact(oid, obj, os.stat(obj)))

    def _publish(
        self, tmp: str, dest: str, oid: Oid, st: os.stat_result, intact: Callable[[], bool]
    ) -> FileStamp | None:
        """Rename the finished `tmp` over `dest` when the object proves `intact`; else drop it and quarantine."""
        try:
            if intact():
                os.replace(tmp, dest)
                return stamp_of(st)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        _unlink_quietly(tmp)
        self._quarantine(oid)
        return None

    def _share(self, kind: LinkType, obj: str, dest: str, oid: Oid) -> FileStamp | None:
        """Hardlink or symlink a verified object; returns the object's (shared) stat data."""
        st = os.stat(obj)
        stamp = FileStamp(st.st_ino, st.st_mtime_ns, st.st_size)
        if oid not in self._verified and not self._check(oid, obj, stamp):
            self._quarantine(oid)
            return None
        if oid in self._trusted and self.memo is not None:
            # Hashed as it was copied in by this command: remembered like a verified object, so
            # the next checkout that links it (after a branch switch) reads nothing.
            with self._lock:
                self._new_verified.append((oid, stamp))
        make = os.link if kind is LinkType.HARDLINK else os.symlink
        try:
            make(obj, dest)  # atomic: nothing was there, and a link is never half-made
        except FileExistsError:
            tmp = _beside(dest)
            attempt_link(make, obj, tmp)
            try:
                os.replace(tmp, dest)
            finally:
                # rename() between two links to one inode succeeds and does nothing.
                _unlink_quietly(tmp)
        except OSError as exc:
            err = link_error(exc)
            if err is exc:
                raise
            raise err from exc
        return stamp

    def _is_intact(self, oid: Oid, obj: str, st: os.stat_result) -> bool:
        return oid in self._verified or self._check(oid, obj, stamp_of(st))

    def _check(self, oid: Oid, obj: str, stamp: FileStamp) -> bool:
        """Verify an object not yet verified by this placer: by the memo's record, else by reading it."""
        if self._known is not None and oid in self._asked:
            ok = self._known.get(oid) == (stamp.ino, stamp.mtime_ns, stamp.size)
        else:
            ok = self.memo is not None and self.memo.is_verified(oid, stamp)
        if ok:
            self._verified.add(oid)  # one set operation, atomic under the GIL: no lock per file
            return True
        with self._reading[hash(oid) % len(self._reading)]:
            if oid in self._verified:  # another thread read it meanwhile
                return True
            if verify_file(obj, oid, stamp.size) is not None:
                return False
            with self._lock:
                self._new_verified.append((oid, stamp))
            self._verified.add(oid)
        return True

    # -- helpers ---------------------------------------------------------------------------------

    def _object(self, oid: str) -> str:
        if not is_valid_oid(oid):
            raise CacheError(f"'{oid}' is not a valid object id", hint="the file that named it is corrupt")
        return f"{self._root}/{oid_to_relpath(oid)}"

    def _device(self) -> int:
        # The store's device, read once: link types that fail there are skipped for later files.
        if self._dev is None:
            try:
                self._dev = os.stat(self._root).st_dev
            except FileNotFoundError:
                return -1
        return self._dev

    def _flush(self) -> None:
        with self._lock:
            rows, self._new_verified = self._new_verified, []
        if rows and self.memo is not None:
            self.memo.put_verified(rows)

    def _quarantine(self, oid: Oid) -> None:
        with self._lock:
            if oid in self.corrupt:
                return
            self.corrupt.add(oid)
            if self.store.exists(oid):
                self.store.quarantine(oid)


def _beside(dest: str) -> str:
    return os.path.join(os.path.dirname(dest), temp_name())


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
