"""Reading objects out of a remote's packs: whole packs or merged byte ranges, streamed to destination files.

A pack most of which is wanted is downloaded whole to a local temporary file (`get_file`, one
request) and cut up; otherwise the wanted objects' byte ranges, merged where they are close, are
read with `cat_ranges` in batches of at most `_BATCH_BYTES` (memory stays bounded by that, not by
the pack). Every object read is hashed as it is written to its destination file, so an object
reported done through the batch holds its oid's bytes (fetch does not read it again); a corrupt
or cut-off object is a failure naming the pack's path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import xxhash

from pipeline_engine.core.fsutil import temp_name
from pipeline_engine.core.hashing import mismatch
from pipeline_engine.errors import CorruptObjectError, ObjectNotFoundError, PipeError, RemoteError
from pipeline_engine.remote.batch import Batch
from pipeline_engine.remote.packed import PACK_JOBS, Loc, Packs

__all__ = ["merge_ranges", "read_packed"]

# Two wanted ranges closer than this are read as one (the gap is read and dropped).
_GAP = 256 * 1024
# One merged range is at most this long, and one cat_ranges call reads at most _BATCH_BYTES.
_RANGE_CAP = 16 << 20
_BATCH_BYTES = 32 << 20
_COPY = 1 << 20


def read_packed(packs: Packs, items: Sequence[tuple[str, Path]], batch: Batch) -> None:
    """Write each packed (oid, dest) object to dest and report it to `batch` (whose caller verifies it).

    Every oid must be in `packs.where`.
    """
    by_pack: dict[str, list[tuple[Loc, str, Path]]] = {}
    for oid, dest in items:
        loc = packs.where[oid]
        by_pack.setdefault(loc.pack, []).append((loc, oid, dest))
    packs.each(lambda p: _read_pack(packs, p, by_pack[p], batch), sorted(by_pack), jobs=PACK_JOBS)


def _read_pack(packs: Packs, pack: str, wanted: list[tuple[Loc, str, Path]], batch: Batch) -> None:
    wanted.sort(key=lambda w: w[0].offset)
    path = f"{packs.dir}/{pack}.pack"
    try:
        if 2 * sum(w[0].length for w in wanted) >= packs.sizes.get(pack, 0):
            _read_whole(packs, path, pack, wanted, batch)
        else:
            _read_ranges(packs, path, pack, wanted, batch)
    except packs.site.errors as exc:
        if batch.stop_on(exc, path):
            return
        error = _read_error(packs, pack, exc)
        for _, oid, _ in wanted:
            if oid not in batch.finished:
                batch.finish(oid, error)


def _read_whole(packs: Packs, path: str, pack: str, wanted: list[tuple[Loc, str, Path]], batch: Batch) -> None:
    packs.site.work_dir.mkdir(parents=True, exist_ok=True)
    local = packs.site.work_dir / temp_name(".pack")
    try:
        packs.site.fs.get_file(path, str(local))
        with open(local, "rb") as src:
            for loc, oid, dest in wanted:
                if batch.stopped:
                    return
                src.seek(loc.offset)
                _deliver(packs, oid, dest, batch, pack, src)
    finally:
        with contextlib.suppress(FileNotFoundError):
            local.unlink()


def _read_ranges(packs: Packs, path: str, pack: str, wanted: list[tuple[Loc, str, Path]], batch: Batch) -> None:
    for ranges in _batches(merge_ranges(wanted)):
        if batch.stopped:
            return
        starts = [r[0] for r in ranges]
        ends = [r[1] for r in ranges]
        blobs = packs.site.fs.cat_ranges([path] * len(ranges), starts, ends, on_error="return")
        for (start, _end, members), blob in zip(ranges, blobs, strict=True):
            if isinstance(blob, BaseException):
                error = _read_error(packs, pack, blob)
                for _, oid, _ in members:
                    batch.finish(oid, error)
                continue
            view = memoryview(blob)
            for loc, oid, dest in members:
                part = view[loc.offset - start : loc.offset - start + loc.length]
                _deliver(packs, oid, dest, batch, pack, part)


def _deliver(packs: Packs, oid: str, dest: Path, batch: Batch, pack: str, source: BinaryIO | memoryview) -> None:
    """Write one object (bytes, or read from a file at its offset) to `dest`, hashing what is written, and report it.

    A short pack, or bytes that do not hash to `oid`, are the object's failure, named by the pack's path:
    the caller never reads a delivered object again to check it.
    """
    loc = packs.where[oid]
    h = xxhash.xxh3_128()
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            if isinstance(source, memoryview):
                h.update(source)
                _write_all(fd, source)
                written = len(source)
            else:
                written = _copy(source, fd, loc.length, h)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(dest)
        if not batch.stop_on(exc, str(dest)):
            batch.finish(oid, exc)
        return
    if written != loc.length:
        batch.finish(oid, RemoteError(
            f"{packs.site.label}: pack '{packs.relpath(pack)}' is shorter than its index says "
            f"(object '{oid}' is cut off)"
        ))
        return
    actual = mismatch(h.hexdigest(), oid)
    if actual is not None:
        batch.finish(oid, CorruptObjectError(
            f"corrupt in pack '{packs.relpath(pack)}' on {packs.site.label}: its content hashes to '{actual}'"
        ))
        return
    batch.finish(oid, None)


def _read_error(packs: Packs, pack: str, exc: BaseException) -> PipeError:
    if isinstance(exc, PipeError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFoundError(f"{packs.site.label}: pack '{packs.relpath(pack)}' is gone (its index is there)")
    return packs.error("read", packs.relpath(pack), exc)


def _copy(src: BinaryIO, fd: int, length: int, h: xxhash.xxh3_128) -> int:
    """Copy up to `length` bytes from `src` to `fd`, hashing them; returns how many there were."""
    done = 0
    while done < length:
        chunk = src.read(min(_COPY, length - done))
        if not chunk:
            break
        h.update(chunk)
        _write_all(fd, memoryview(chunk))
        done += len(chunk)
    return done


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


_Range = tuple[int, int, list[tuple[Loc, str, Path]]]


def merge_ranges(wanted: Sequence[tuple[Loc, str, Path]]) -> Iterator[_Range]:
    """Wanted objects (sorted by offset) as byte ranges, neighbours closer than `_GAP` merged up to `_RANGE_CAP`."""
    current: _Range | None = None
    for item in wanted:
        loc = item[0]
        end = loc.offset + loc.length
        if current is not None and loc.offset - current[1] <= _GAP and end - current[0] <= _RANGE_CAP:
            current = (current[0], max(current[1], end), [*current[2], item])
            continue
        if current is not None:
            yield current
        current = (loc.offset, end, [item])
    if current is not None:
        yield current


def _batches(ranges: Iterator[_Range]) -> Iterator[list[_Range]]:
    batch: list[_Range] = []
    size = 0
    for r in ranges:
        if batch and size + (r[1] - r[0]) > _BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(r)
        size += r[1] - r[0]
    if batch:
        yield batch
