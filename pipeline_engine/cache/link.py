"""Place a cached object in the workspace: reflink, hardlink, symlink or copy, first that works.

The per-file primitives are written for 10,000 small files: string paths, no pathlib, one
buffer per thread, and no syscall that the result does not need (a copy is created with its
final mode and its stat data is taken from the open file descriptor).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import xxhash

from pipeline_engine.core.hashing import Oid

T = TypeVar("T")

__all__ = [
    "DEFAULT_LINK_TYPES", "SHARING_TYPES", "CannotLink", "LinkType", "Linked", "attempt_link", "copy_file",
    "copy_object", "file_mode", "is_usable", "link", "link_error", "mark_failed", "parse_link_types", "reflink_file",
]

_FICLONE = 0x40049409  # Linux ioctl: share the source's extents (btrfs, xfs, ...)


class LinkType(enum.Enum):
    """How a workspace file refers to its cached object."""

    REFLINK = "reflink"
    HARDLINK = "hardlink"
    SYMLINK = "symlink"
    COPY = "copy"


DEFAULT_LINK_TYPES: tuple[LinkType, ...] = (LinkType.REFLINK, LinkType.COPY)
#: Link types whose workspace file shares the object's inode: they also share its (read-only) mode.
SHARING_TYPES = frozenset({LinkType.HARDLINK, LinkType.SYMLINK})
#: Failures that no other link type would avoid (a full disk, a read-only or denied directory).
NOT_ABOUT_LINKS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENAMETOOLONG})


@dataclass(frozen=True, slots=True)
class Linked:
    """How `link` created a file; `copied` is the hash of the bytes written when it copied."""

    kind: LinkType
    copied: Oid | None = None


# Link types that failed once for a (device) are not retried for every file of a large directory.
_failed: set[tuple[int, LinkType]] = set()


def is_usable(dev: int, kind: LinkType) -> bool:
    """False once `kind` failed on the store's device `dev` in this process (copy never fails so)."""
    return (dev, kind) not in _failed


def mark_failed(dev: int, kind: LinkType) -> None:
    """Remember that `kind` does not work from device `dev`: later files skip it at no cost."""
    if kind is not LinkType.COPY:
        _failed.add((dev, kind))


def parse_link_types(value: str | Sequence[str]) -> tuple[LinkType, ...]:
    """Parse `cache.type` ("reflink,copy" or a list); raises ValueError naming the bad entry."""
    names = value.split(",") if isinstance(value, str) else list(value)
    return tuple(LinkType(n.strip()) for n in names if n.strip())


def link(obj: Path, dest: Path, types: Sequence[LinkType], *, isexec: bool = False) -> Linked:
    """Create `dest` from the cached object `obj` with the first link type that works.

    `dest` must not exist; callers link to a temporary name, check the result and rename it
    (see cache.place), so a crash never leaves a half-copied file in place. A copy hashes
    the bytes it writes (`Linked.copied`), so the caller can refuse a corrupt object without
    reading it twice. Copies and reflinks get the exec bit from `isexec`; hardlinks and
    symlinks share the object's mode. Raises OSError when every type fails.
    """
    dev = os.stat(obj.parent).st_dev
    last: OSError | None = None
    for kind in types:
        if not is_usable(dev, kind):
            continue
        try:
            if kind is LinkType.COPY:
                copied: Oid | None = copy_file(str(obj), str(dest), file_mode(isexec))[0]
            elif kind is LinkType.REFLINK:
                copied = None
                reflink_file(str(obj), str(dest), file_mode(isexec))
            else:
                copied = None
                (os.link if kind is LinkType.HARDLINK else os.symlink)(obj, dest)
        except OSError as exc:
            last = exc
            with contextlib.suppress(OSError):
                os.unlink(dest)
            mark_failed(dev, kind)
            continue
        return Linked(kind, copied)
    raise last or OSError(f"no link type available for '{dest}'")


_local = threading.local()
_CHUNK = 1 << 20


def _buffer() -> tuple[bytearray, memoryview]:
    # One 1 MiB buffer per thread, reused for every file: allocating one per file of 10,000
    # small files costs more than copying them.
    try:
        return _local.buf  # type: ignore[no-any-return]
    except AttributeError:
        buf = bytearray(_CHUNK)
        _local.buf = (buf, memoryview(buf))
        return _local.buf  # type: ignore[no-any-return]


def copy_file(src: str, dest: str, mode: int) -> tuple[Oid, os.stat_result]:
    """Copy `src` to the new file `dest` (created with `mode`, less the umask); return the oid of the
    bytes written and the stat data of `dest` as written (a rename keeps it).

    The source is opened first, so a missing object creates nothing. Raises OSError (with the
    file named) on failure; a partly written `dest` is left for the caller to remove.
    """
    oid, st, _ = _copy(src, dest, mode, to_end=True)
    return oid, st


def copy_object(src: str, dest: str, mode: int) -> tuple[Oid, os.stat_result, os.stat_result]:
    """`copy_file` for a cache object, also returning its stat data as it was read (from its descriptor).

    A cache object copied out is hashed whole: when the hash matches, that stat data is what the
    hash memo's verification record needs, so a later hardlink or symlink of it reads nothing.
    Objects never change, so the copy stops once the size it had is read (no read is spent to see
    the end: one syscall of ten for a small file); whatever was read is what is hashed and written.
    """
    return _copy(src, dest, mode, to_end=False)


def _copy(src: str, dest: str, mode: int, *, to_end: bool) -> tuple[Oid, os.stat_result, os.stat_result]:
    buf, view = _buffer()
    h = xxhash.xxh3_128()
    sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        src_st = os.fstat(sfd)  # before reading: a change while it is read moves its mtime past this
        left = -1 if to_end else src_st.st_size
        dfd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            while left != 0 and (n := os.readv(sfd, [buf])):
                left = -1 if to_end else max(left - n, 0)
                chunk = view[:n]
                h.update(chunk)
                while chunk:
                    chunk = chunk[os.write(dfd, chunk):]
            st = os.fstat(dfd)
        except OSError as exc:
            if exc.filename is None:  # os.write names no file: say which one (a full disk is reported by path)
                exc.filename = dest
            raise
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
    return Oid(h.hexdigest()), st, src_st


def reflink_file(src: str, dest: str, mode: int) -> os.stat_result:
    """Create `dest` sharing `src`'s extents (FICLONE); returns its stat data. Raises OSError
    (EOPNOTSUPP, EXDEV, ...) where the filesystem cannot, after removing what it created."""
    sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        dfd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            fcntl.ioctl(dfd, _FICLONE, sfd)
            return os.fstat(dfd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(dest)
            raise
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def file_mode(isexec: bool) -> int:
    """The mode of a new workspace file: 0o644, or 0o755 when executable, less the umask."""
    return (0o755 if isexec else 0o644) & ~_umask()


_UMASK: int | None = None
_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    # Reading the umask means setting it; checkout links from several threads, so two first
    # calls racing could read each other's temporary 0 and leave the process with umask 0.
    global _UMASK
    with _UMASK_LOCK:
        if _UMASK is None:
            _UMASK = os.umask(0)
            os.umask(_UMASK)
        return _UMASK


class CannotLink(Exception):
    """This link type does not work here (another type might): carries the OSError."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def attempt_link(make: Callable[..., T], *args: Any) -> T:
    """Call a link-making function; an OSError that another link type could avoid becomes CannotLink."""
    try:
        return make(*args)
    except OSError as exc:
        err = link_error(exc)
        if err is exc:
            raise
        raise err from exc


def link_error(exc: OSError) -> OSError | CannotLink:
    """`exc` as a placer should see it: a missing file, an existing destination and failures no
    link type avoids (a full disk, a read-only or denied directory) stay OSErrors."""
    if isinstance(exc, (FileNotFoundError, FileExistsError)) or exc.errno in NOT_ABOUT_LINKS:
        return exc
    return CannotLink(exc)
