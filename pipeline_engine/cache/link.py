"""Place a cached object in the workspace: reflink, hardlink, symlink or copy, first that works."""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.core.hashing import Oid, copy_hashed

__all__ = ["DEFAULT_LINK_TYPES", "SHARING_TYPES", "LinkType", "Linked", "file_mode", "link", "parse_link_types"]

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


@dataclass(frozen=True, slots=True)
class Linked:
    """How `link` created a file; `copied` is the hash of the bytes written when it copied."""

    kind: LinkType
    copied: Oid | None = None

# Link types that failed once for a (device) are not retried for every file of a large directory.
_failed: set[tuple[int, LinkType]] = set()


def parse_link_types(value: str | Sequence[str]) -> tuple[LinkType, ...]:
    """Parse `cache.type` ("reflink,copy" or a list); raises ValueError naming the bad entry."""
    names = value.split(",") if isinstance(value, str) else list(value)
    return tuple(LinkType(n.strip()) for n in names if n.strip())


def link(obj: Path, dest: Path, types: Sequence[LinkType], *, isexec: bool = False) -> Linked:
    """Create `dest` from the cached object `obj` with the first link type that works.

    `dest` must not exist; callers link to a temporary name, check the result and rename it
    (see cache.workspace), so a crash never leaves a half-copied file in place. A copy hashes
    the bytes it writes (`Linked.copied`), so the caller can refuse a corrupt object without
    reading it twice. Copies and reflinks get the exec bit from `isexec`; hardlinks and
    symlinks share the object's mode. Raises OSError when every type fails.
    """
    dev = os.stat(obj.parent).st_dev
    last: OSError | None = None
    for kind in types:
        if (dev, kind) in _failed:
            continue
        try:
            copied = copy_hashed(obj, dest) if kind is LinkType.COPY else _LINKERS[kind](obj, dest)
        except OSError as exc:
            last = exc
            with contextlib.suppress(OSError):
                os.unlink(dest)
            if kind is not LinkType.COPY:
                _failed.add((dev, kind))
            continue
        if kind in (LinkType.COPY, LinkType.REFLINK):
            os.chmod(dest, file_mode(isexec))
        return Linked(kind, copied)
    raise last or OSError(f"no link type available for '{dest}'")


def file_mode(isexec: bool) -> int:
    """The mode of a new workspace file: 0o644, or 0o755 when executable, less the umask."""
    return (0o755 if isexec else 0o644) & ~_umask()


def _reflink(src: Path, dest: Path) -> None:
    with open(src, "rb") as s, open(dest, "xb") as d:
        fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())


def _hardlink(src: Path, dest: Path) -> None:
    os.link(src, dest)


def _symlink(src: Path, dest: Path) -> None:
    os.symlink(src, dest)


_LINKERS = {
    LinkType.REFLINK: _reflink,
    LinkType.HARDLINK: _hardlink,
    LinkType.SYMLINK: _symlink,
}

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
