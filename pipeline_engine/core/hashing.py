"""Content hashes (xxh3_128) of bytes and files, the ids of every object in the store."""

from __future__ import annotations

import os
from typing import NewType

import xxhash

from pipeline_engine.core.fsutil import READ_NONBLOCK, open_regular, require_regular, shown_path

__all__ = [
    "ALGORITHM", "DIR_SUFFIX", "SMALL_FILE", "Oid", "copy_hashed", "hash_bytes", "hash_file", "is_dir_oid", "mismatch",
    "new_hasher", "read_small", "verify_bytes", "verify_file",
]

Oid = NewType("Oid", str)

#: Written next to every hash on disk, so that a future algorithm change is explicit.
ALGORITHM = "xxh3_128"
#: A directory manifest's oid is the hash of its bytes plus this suffix.
DIR_SUFFIX = ".dir"

#: Files up to this size are read in one call: per-file overhead dominates for small files.
SMALL_FILE = 1 << 20
_WHOLE_READ = SMALL_FILE
_CHUNK = 1 << 20


def hash_bytes(data: bytes) -> Oid:
    """Return the oid of `data`."""
    return Oid(xxhash.xxh3_128_hexdigest(data))


def new_hasher() -> xxhash.xxh3_128:
    """An incremental hasher of the oid algorithm (`update(bytes)`, `hexdigest()`), for streamed content."""
    return xxhash.xxh3_128()


def hash_file(path: str | os.PathLike[str], size: int | None = None) -> Oid:
    """Return the oid of a file's content, streamed so memory stays flat for any size.

    Raises:
        PathError: `path` is not a regular file (a FIFO is refused, never waited on).
    """
    fd, st = open_regular(path)
    if size is None:
        size = st.st_size
    with open(fd, "rb", buffering=0) as f:
        if size <= _WHOLE_READ:
            return Oid(xxhash.xxh3_128_hexdigest(f.read()))
        h = xxhash.xxh3_128()
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
        return Oid(h.hexdigest())


def read_small(path: str | os.PathLike[str], size: int) -> bytes:
    """The content of a file expected to hold `size` bytes (at most `SMALL_FILE`), in one read.

    Reads up to `size + 1` bytes, so a file that grew comes back longer than `size`: the caller
    compares the length (and the file's stat data afterwards) with what it expected. One
    `open`, one `read`, one `close`: no `fstat`, no file object, for the 10,000 small files of
    a dataset.
    """
    fd = os.open(path, READ_NONBLOCK)  # a FIFO put there since: no wait, no bytes
    try:
        return os.read(fd, size + 1)
    finally:
        os.close(fd)


def copy_hashed(src: str | os.PathLike[str], dest: str | os.PathLike[str], *, mode: int = 0o644) -> Oid:
    """Copy `src` to a new file `dest` (which must not exist) and return the oid of the bytes copied.

    Hashing what is actually written, not what was read earlier, means a file that changes while
    it is being cached can never end up stored under an oid its bytes do not have.
    """
    h = xxhash.xxh3_128()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        fi = os.open(src, READ_NONBLOCK)
        try:
            # Reads the size of the file (up to 1 MiB), plus one byte to see the end: a fresh
            # 1 MiB buffer for each of 10,000 small files costs more than copying them. Plain
            # descriptors: a file object per small file is a fifth of the cost of copying it.
            st = os.fstat(fi)
            require_regular(st.st_mode, shown_path(src))
            n = min(_CHUNK, st.st_size + 1)
            while chunk := os.read(fi, n):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fi)
    except OSError as exc:
        if exc.filename is None:  # os.write names no file: say which one (a full disk is reported by path)
            exc.filename = os.fspath(dest)
        raise
    finally:
        os.close(fd)
    return Oid(h.hexdigest())


def is_dir_oid(oid: str) -> bool:
    """True when `oid` names a directory manifest."""
    return oid.endswith(DIR_SUFFIX)



def mismatch(actual: str, oid: str) -> Oid | None:
    """None when `actual` (a content hash) is the hash `oid` names, else `actual`.

    A manifest's oid is the hash of its bytes plus `.dir`: the suffix is not part of the hash.
    Every check of content against an oid goes through here (or `verify_file`/`verify_bytes`).
    """
    return None if actual == oid.removesuffix(DIR_SUFFIX) else Oid(actual)


def verify_file(path: str | os.PathLike[str], oid: str, size: int | None = None) -> Oid | None:
    """Hash the file at `path` against `oid`: None when it matches, else the hash it actually has.

    The one check every ingest and every read of an object uses (fetch, push before upload,
    checkout before linking, `pipe cache verify`), so a `.dir` oid is hashed the same way everywhere.
    Raises FileNotFoundError when `path` does not exist.
    """
    return mismatch(hash_file(path, size), oid)


def verify_bytes(data: bytes, oid: str) -> Oid | None:
    """`verify_file` for content already in memory (manifests, run records)."""
    return mismatch(hash_bytes(data), oid)
