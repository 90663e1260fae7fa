"""The pack format: small objects back to back in one immutable file, and the binary index that finds them.

A pack is the objects' bytes concatenated in oid order, nothing else; its name is the xxh3_128 of
those bytes, so the same objects always make the same pack. Its index (`<name>.idx`, documented in
docs/format.md, section *Packs*) is what makes the objects exist:

```
offset    size      field (integers big-endian)
0         8         magic b"PIPEPIDX"
8         4         format version (1)
12        4         row count N (at most MAX_ROWS)
16        8         pack size in bytes
24        16        pack name (the raw xxh3_128 digest of the pack's bytes)
40        33 * N    rows, sorted by oid: oid digest (16), kind (1: 0 file, 1 `.dir` manifest),
                    offset (8), length (8)
40+33N    16        xxh3_128 digest of every byte before it
```

An index comes from a remote, so it is untrusted: `parse_index` refuses (with a `RemoteError`
naming where it came from) a wrong size, magic, version or checksum, a row count above
`MAX_ROWS`, unsorted or repeated oids, unknown kinds, rows past the end of the pack and rows that
overlap. Parsing is linear in the index's size, which the caller bounds before reading it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import xxhash

from pipeline_engine.core.fsutil import temp_name
from pipeline_engine.core.hashing import DIR_SUFFIX, Oid, mismatch
from pipeline_engine.core.layout import is_valid_oid
from pipeline_engine.errors import RemoteError

__all__ = [
    "FORMAT_VERSION",
    "MAX_INDEX_BYTES",
    "MAX_ROWS",
    "LocalFile",
    "PackIndex",
    "PackRow",
    "PackWriter",
    "encode_index",
    "is_pack_name",
    "parse_index",
]

FORMAT_VERSION = 1
#: Objects in one pack at most: bounds an index (33 MB) and the memory to parse it.
MAX_ROWS = 1_000_000
_MAGIC = b"PIPEPIDX"
_HEADER = struct.Struct(">8sIIQ16s")
_ROW = struct.Struct(">16sBQQ")
_DIGEST = 16
#: The largest index file a reader accepts (checked against the listing before downloading).
MAX_INDEX_BYTES = _HEADER.size + _ROW.size * MAX_ROWS + _DIGEST
_CHUNK = 1 << 20
#: A pack file's write buffer (bytes).
_BUFFER = 1 << 20
#: A local file to upload: a plain string path (10,000 Path objects cost more than the copies) or a Path.
LocalFile = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class PackRow:
    """One object in a pack: its oid and where its bytes are (offset and length in bytes)."""

    oid: Oid
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class PackIndex:
    """A parsed index: the pack's `name` (32 hex), its `size` in bytes, its rows sorted by oid."""

    name: str
    size: int
    rows: tuple[PackRow, ...]


def is_pack_name(name: str) -> bool:
    """True when `name` (a pack's or index's file name without extension) is 32 lowercase hex digits."""
    return len(name) == 32 and is_valid_oid(name)


def encode_index(index: PackIndex) -> bytes:
    """The index file's bytes for `index` (rows must already be sorted by oid)."""
    parts = [_HEADER.pack(_MAGIC, FORMAT_VERSION, len(index.rows), index.size, bytes.fromhex(index.name))]
    for row in index.rows:
        kind = 1 if row.oid.endswith(DIR_SUFFIX) else 0
        parts.append(_ROW.pack(bytes.fromhex(row.oid.removesuffix(DIR_SUFFIX)), kind, row.offset, row.length))
    body = b"".join(parts)
    return body + xxhash.xxh3_128_digest(body)


def parse_index(data: bytes, *, name: str, where: str) -> PackIndex:
    """Parse and check an index file named `<name>.idx`; `where` names it in errors (remote and path).

    Raises:
        RemoteError: the index is malformed, damaged or inconsistent (see the module docstring).
    """

    def bad(reason: str) -> RemoteError:
        return RemoteError(
            f"pack index '{where}' is invalid: {reason}",
            hint="its objects count as absent; 'pipe push' uploads them again and 'pipe gc --cloud' lists it",
        )

    if len(data) < _HEADER.size + _DIGEST or len(data) > MAX_INDEX_BYTES:
        raise bad(f"{len(data)} bytes is not a possible index size")
    magic, version, count, size, digest = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise bad("not a pack index (wrong magic)")
    if version != FORMAT_VERSION:
        raise bad(f"format version {version} (this pipe reads {FORMAT_VERSION})")
    if count > MAX_ROWS or len(data) != _HEADER.size + _ROW.size * count + _DIGEST:
        raise bad(f"{count} rows do not fit its {len(data)} bytes")
    if xxhash.xxh3_128_digest(data[:-_DIGEST]) != data[-_DIGEST:]:
        raise bad("checksum mismatch")
    if digest.hex() != name:
        raise bad(f"it describes pack '{digest.hex()}', not '{name}'")
    rows = tuple(_rows(data, count, size, bad))
    return PackIndex(name, size, rows)


def _rows(data: bytes, count: int, size: int, bad: Callable[[str], RemoteError]) -> Iterator[PackRow]:
    previous = b""
    spans: list[tuple[int, int]] = []
    body = memoryview(data)[_HEADER.size : _HEADER.size + _ROW.size * count]
    for raw, kind, offset, length in _ROW.iter_unpack(body):
        if kind > 1:
            raise bad(f"unknown object kind {kind}")
        key = raw + bytes((kind,))
        if key <= previous:
            raise bad("rows are not sorted by oid, or an oid repeats")
        previous = key
        if offset + length > size:
            raise bad(f"object at {offset}+{length} ends past the pack's {size} bytes")
        spans.append((offset, length))
        yield PackRow(Oid(raw.hex() + (DIR_SUFFIX if kind else "")), offset, length)
    spans.sort()
    end = 0
    for offset, length in spans:
        if offset < end:
            raise bad(f"objects overlap at byte {offset}")
        end = offset + length


class PackWriter:
    """Build one pack as a local temporary file in `directory`, hashing as it writes (never held in memory).

    `add` appends an object read from a local file and checks its bytes against its oid; `finish`
    returns the file and its index. The caller adds objects in oid order (`PackIndex` rows are
    sorted) and removes the file when done.
    """

    def __init__(self, directory: Path, *, suffix: str = ".pack") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / temp_name(suffix)
        # A large buffer: objects of a few KiB each would otherwise cost a write(2) every 8 KiB.
        self._file = open(self.path, "xb", buffering=_BUFFER)  # noqa: SIM115 - closed by finish/abort
        self._hash = xxhash.xxh3_128()
        self._rows: list[tuple[str, int, int]] = []  # (oid, offset, length): PackRows are made once, in finish
        self.size = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, oid: str, src: LocalFile, *, offset: int = 0, length: int | None = None) -> Oid | None:
        """Append the object at `src` (or its `length` bytes at `offset`): None when they hash to `oid`,
        else their actual hash (then nothing is added).

        Raises:
            OSError: `src` cannot be read or the pack cannot be written.
        """
        start = self.size
        try:
            # A plain descriptor and reads of the object's size: a file object per small object
            # costs a good part of copying it.
            fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if offset:
                    os.lseek(fd, offset, os.SEEK_SET)
                if length is not None and length <= _CHUNK:
                    # A small object (most of a pack's): one read, checked before anything is written.
                    data = os.read(fd, length)
                    wrong = mismatch(xxhash.xxh3_128_hexdigest(data), oid)
                    if wrong is not None:
                        return wrong
                    self._write(data)
                    self._hash.update(data)
                    self.size += len(data)
                    wrong = None
                else:
                    wrong = self._copy(fd, oid, -1 if length is None else length)
            finally:
                os.close(fd)
        except OSError:
            self._cut(start)
            raise
        if wrong is not None:  # a pack holds only objects true to their oids
            self._cut(start)
            return wrong
        self._rows.append((oid, start, self.size - start))
        return None

    def _copy(self, fd: int, oid: str, remaining: int) -> Oid | None:
        """Append `remaining` bytes (-1: all) from `fd` in chunks; None when they hash to `oid`, else their hash."""
        check = xxhash.xxh3_128()
        while remaining and (chunk := os.read(fd, _CHUNK if remaining < 0 else min(_CHUNK, remaining))):
            check.update(chunk)
            self._write(chunk)
            self._hash.update(chunk)
            self.size += len(chunk)
            remaining -= len(chunk) if remaining > 0 else 0
        return mismatch(check.hexdigest(), oid)

    def _write(self, chunk: bytes) -> None:
        try:
            self._file.write(chunk)
        except OSError as exc:
            if exc.filename is None:  # a full disk is reported by the file it could not write: the pack
                exc.filename = os.fspath(self.path)
            raise

    def _cut(self, start: int) -> None:
        """Drop what the last `add` wrote from `start` on (and from the running hash)."""
        try:
            self._file.truncate(start)  # flushes first: on a full disk, fails like the write did
        except OSError as exc:
            if exc.filename is None:
                exc.filename = os.fspath(self.path)
            raise
        self._file.seek(start)
        self._hash = self._rehash(start)
        self.size = start

    def _rehash(self, upto: int) -> xxhash.xxh3_128:
        self._file.flush()
        h = xxhash.xxh3_128()
        with open(self.path, "rb") as f:
            remaining = upto
            while remaining and (chunk := f.read(min(_CHUNK, remaining))):
                h.update(chunk)
                remaining -= len(chunk)
        return h

    def finish(self) -> PackIndex:
        """Close the file and return the pack's index (its name is the hash of the bytes written).

        Raises:
            OSError: the pack cannot be flushed to disk.
        """
        try:
            self._file.close()
        except OSError as exc:
            if exc.filename is None:
                exc.filename = os.fspath(self.path)
            raise
        rows = sorted(self._rows)  # added in oid order: a linear pass
        return PackIndex(self._hash.hexdigest(), self.size, tuple(PackRow(Oid(o), off, n) for o, off, n in rows))

    def abort(self) -> None:
        """Close and delete the temporary file."""
        try:
            self._file.close()
        except OSError:  # flushing what is thrown away failed (a full disk): the caller reports the cause
            pass
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
