"""Writing new packs: objects grouped into packs, each pack built whole, then published before its index.

Building a pack of 10,000 objects of a few KiB is bound by the interpreter (an open, a read, a
hash and a write per object), not by the disk. For a remote that is a directory on this machine
(packs built in its own `tmp/` and published by a rename), a push of thousands of objects is
therefore shared between forked processes (`core.forked`), one contiguous range of oids each,
so each writes one pack of about its share of the bytes, when another core is free right now
(on a busy machine the fork's own cost is not won back). No garbage collection runs meanwhile:
after a fork it would copy every page holding an object. A child only builds: it reports each
object's failure to an `Outcome` that travels back with its packs, and the caller replays those
into the transfer's `Batch` and publishes every pack (pack, then index) itself. A pack is thus
visible only once the caller has received it whole; a child that fails has its share built again
by the caller (a share is only temporary files until then, so doing it twice is harmless).
Remotes over a network are not forked: their clients run threads (a fork copies their locks),
and their time goes to requests, which `Packs.each` overlaps with threads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipeline_engine.core.forked import fork_jobs, free_cores, map_forked
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.tempsweep import sweep_pid
from pipeline_engine.errors import CorruptObjectError, ObjectNotFoundError
from pipeline_engine.remote.batch import FATAL_ERRNOS, Batch
from pipeline_engine.remote.pack import MAX_ROWS, LocalFile, PackIndex, PackRow, PackWriter

if TYPE_CHECKING:
    from pipeline_engine.remote.packed import Packs

__all__ = ["FORK_MIN", "PACK_JOBS", "Built", "Outcome", "group_items", "write_packs"]

#: Packs read or written at once: each holds up to one batch in memory or one pack on local disk.
PACK_JOBS = 4
#: A local remote's packs are built by forked processes when each gets at least this many objects
#: (a fork and the results sent back cost a few milliseconds: ~100 objects' worth).
FORK_MIN = 2000

Item = tuple[str, LocalFile, int]  # (oid, local path, size in bytes)


class Sink(Protocol):
    """Where building a pack reports what failed: the transfer's `Batch`, or a child's `Outcome`."""

    @property
    def stopped(self) -> bool: ...
    @property
    def finished(self) -> set[str]: ...
    def stop_on(self, exc: BaseException, where: str) -> bool: ...
    def finish(self, oid: str, exc: BaseException | None) -> None: ...


@dataclass(frozen=True, slots=True)
class Built:
    """A complete pack file not yet published (`path`, in the build directory) and its index."""

    path: str
    index: PackIndex

    def __reduce__(self) -> tuple[Callable[..., Built], tuple[str, str, int, list[tuple[str, int, int]]]]:
        # Sent back from a child as plain tuples: unpickling 5,000 frozen dataclasses runs
        # Python code for each (~20 ms in the parent of a 10k push), making them anew ~4 ms.
        rows: list[tuple[str, int, int]] = [(r.oid, r.offset, r.length) for r in self.index.rows]
        return _built, (self.path, self.index.name, self.index.size, rows)


def _built(path: str, name: str, size: int, rows: list[tuple[str, int, int]]) -> Built:
    return Built(path, PackIndex(name, size, tuple(PackRow(Oid(o), offset, n) for o, offset, n in rows)))


class Outcome:
    """What one forked share reported: failed objects, a condition that stopped it, the packs it built.

    It pickles (exceptions keep their type, message and hint) and is replayed into the caller's
    `Batch` in the order the share met them.
    """

    def __init__(self) -> None:
        self.failed: list[tuple[str, BaseException]] = []
        self.finished: set[str] = set()
        self.fatal: tuple[OSError, str] | None = None
        self.built: list[Built] = []

    @property
    def stopped(self) -> bool:
        return self.fatal is not None

    def stop_on(self, exc: BaseException, where: str) -> bool:
        """As `Batch.stop_on`: True (the share stops) for a local condition that fails every object."""
        if not isinstance(exc, OSError) or exc.errno not in FATAL_ERRNOS:
            return False
        self.fatal = self.fatal or (exc, where)
        return True

    def finish(self, oid: str, exc: BaseException | None) -> None:
        self.finished.add(oid)
        if exc is not None:
            self.failed.append((oid, exc))

    def replay(self, batch: Batch) -> None:
        """Report this share's failures (and what stopped it) to `batch`."""
        for oid, exc in self.failed:
            batch.finish(oid, exc)
        if self.fatal is not None:
            batch.stop_on(*self.fatal)


def group_items(items: Sequence[Item], *, pack_size: int, shares: int = 1) -> list[list[Item]]:
    """`items` sorted by oid (each oid once) in groups of at most `pack_size` bytes and `MAX_ROWS`
    objects; with `shares` > 1, also cut where a running total of bytes crosses each
    `1/shares` of the whole, so `shares` processes get about the same bytes each."""
    unique: list[Item] = []
    last = ""
    for item in sorted(items, key=_oid_of):
        if item[0] != last:  # an object listed twice is packed once (the first of its paths)
            unique.append(item)  # the caller's tuple, not a copy (a million of them show)
            last = item[0]
    whole = max(1, sum(size for _, _, size in unique))
    groups: list[list[Item]] = [[]]
    total = 0
    running = 0
    share = 0
    for item in unique:
        size = item[2]
        now = running * shares // whole if shares > 1 else 0
        if groups[-1] and (total + size > pack_size or len(groups[-1]) >= MAX_ROWS or now != share):
            groups.append([])
            total = 0
        share = now
        groups[-1].append(item)
        total += size
        running += size
    return groups


def write_packs(
    packs: Packs, items: Sequence[Item], batch: Batch, *, pack_size: int, hold_last: bool = False
) -> list[Item]:
    """`Packs.write`: bundle items into packs, build, publish, report each object to `batch`."""
    local = packs.site.build_dir is not None
    n = min(fork_jobs(len(items), min_per_process=FORK_MIN), free_cores()) if local else 1
    # A push's last part is cut into one share per process; full packs of a big push's earlier
    # parts are shared out as they are.
    groups = group_items(items, pack_size=pack_size, shares=1 if hold_last else n)
    held = groups.pop() if hold_last else []
    groups = [g for g in groups if g]
    n = min(n, len(groups))
    if n <= 1:
        packs.each(lambda g: _write_one(packs, g, batch), groups, jobs=PACK_JOBS)
        return held

    def share(k: int) -> Outcome:
        outcome = Outcome()
        for group in groups[k::n]:
            built = None if outcome.stopped else build(packs, group, outcome)
            if built is not None:
                outcome.built.append(built)
        return outcome

    # A child that dies leaves its half-built pack in the build directory.
    built_in = [os.fspath(packs.site.build_dir)] if packs.site.build_dir else []
    outcomes = map_forked(share, n, sweep=lambda pid: sweep_pid(pid, built_in))
    pending = [b for outcome in outcomes for b in outcome.built]
    try:
        for outcome in outcomes:
            outcome.replay(batch)
        for built in pending:
            if not batch.stopped:
                publish(packs, built, batch)
    finally:  # what was not published (an interrupt, a stop) is not left in the build directory
        for built in pending:
            with contextlib.suppress(OSError):
                os.unlink(built.path)
    return held


def _write_one(packs: Packs, group: Sequence[Item], batch: Batch) -> None:
    built = build(packs, group, batch)
    if built is None:
        return
    try:
        publish(packs, built, batch)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(built.path)


def build(packs: Packs, group: Sequence[Item], sink: Sink) -> Built | None:
    """Write `group`'s objects (sorted by oid) into a new pack file; None when none could be.

    Every object is hashed against its oid as it is copied in; what fails is reported to `sink`
    (by oid), the others are in the pack. The caller publishes the pack and removes its file.
    """
    site = packs.site
    try:
        writer = PackWriter(site.build_dir or site.work_dir, suffix=site.build_suffix)
    except site.errors as exc:  # a local remote's tmp/ cannot be made: nothing of it can be sent
        if not sink.stop_on(exc, str(site.build_dir or site.work_dir)):
            error = packs.error("write a pack in", "tmp", exc)
            for oid, _, _ in group:
                sink.finish(oid, error)
        return None
    kept = False
    try:
        for oid, path, size in group:
            if sink.stopped:
                return None
            try:
                wrong = writer.add(oid, path, length=size)  # a file that grew or shrank is refused
            except FileNotFoundError:  # the object's own problem, not one that stops the transfer
                sink.finish(oid, ObjectNotFoundError(f"its local copy '{path}' is missing; not uploaded"))
                continue
            except OSError as exc:
                if not sink.stop_on(exc, str(path)):
                    sink.finish(oid, exc)
                continue
            if wrong is not None:  # the one read of the object is the one that checks it
                sink.finish(oid, CorruptObjectError(f"its local copy '{path}' hashes to '{wrong}'; not uploaded"))
        try:
            index = writer.finish()
        except OSError as exc:  # the last buffered bytes could not be written (a full disk)
            if not sink.stop_on(exc, str(writer.path)):
                for oid, _, _ in group:
                    if oid not in sink.finished:
                        sink.finish(oid, exc)
            return None
        if not index.rows:
            return None
        kept = True
        return Built(os.fspath(writer.path), index)
    finally:
        if not kept:
            writer.abort()


def publish(packs: Packs, built: Built, batch: Batch) -> None:
    """Upload a built pack, then its index, and report its objects to `batch` (sent, or why not)."""
    try:
        packs.upload(Path(built.path), built.index)
    except packs.site.errors as exc:
        if batch.stop_on(exc, built.path):
            return
        error = packs.error("upload", packs.relpath(built.index.name), exc)
        for row in built.index.rows:
            batch.finish(row.oid, error)
        return
    for row in built.index.rows:
        batch.finish(row.oid, None)


def _oid_of(item: Item) -> str:
    return item[0]
