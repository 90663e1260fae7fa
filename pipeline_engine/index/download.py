"""Fetch: download the objects of outs the store lacks, each verified before it enters the cache.

Every object is hashed against its oid once, as the remote writes it (`get_many(check=True)`),
before it enters the cache (`store.put_many(verified=True)`); a refused one is reported by path
and oid and never becomes an object. That check is remembered in the hash memo (its verification
record, by the object's stat data), so a later hardlink or symlink checkout does not read the
object again. A `FetchSink` hears which objects arrived, chunk by chunk, while the fetch goes on
(`pipe pull` places their files meanwhile: `index/pullplace.py`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from pipeline_engine.cache.memo import FileStamp, HashMemo, trusted_from_ns
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.layout import download_path
from pipeline_engine.core.progress import Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError, ObjectNotFoundError, PipeError
from pipeline_engine.index.objects import Failure, ObjectPlan, plan_objects
from pipeline_engine.index.sync import TransferResult, named_failures
from pipeline_engine.remote.remote import Remote

__all__ = ["FetchSink", "download_objects", "fetch_objects", "fetch_outs"]

# Objects fetched between two flushes of the cache (see fetch_objects).
_FETCH_CHUNK = 2000


class FetchSink(Protocol):
    """Hears what a fetch brings, while it runs (`fetch_outs(sink=...)`); called from the fetching thread."""

    def planned(self, plan: ObjectPlan, absent: Collection[str]) -> None:
        """The outs' objects (manifests parsed), and which of their file oids the store lacks: those will
        arrive through `arrived`, unless they fail. Called once per `fetch_outs`, before any download."""

    def arrived(self, oids: Sequence[str]) -> None:
        """These objects are in the store now, each verified (a chunk of up to a few thousand)."""


def fetch_outs(
    store: ObjectStore, rem: Remote, outs: Sequence[PathRecord], *, progress: Progress,
    memo: HashMemo | None = None, sink: FetchSink | None = None,
) -> TransferResult:
    """Fetch `outs` from `rem` into `store`: missing manifests first, then the files they list.

    With `memo`, each fetched object's verification is remembered there (see `fetch_objects`);
    `sink` hears the plan and each chunk of objects as it enters the store.
    """
    wanted_manifests: dict[str, str] = {
        o.oid: o.path for o in outs if is_dir_oid(o.oid) and not _has_intact_manifest(store, o.oid)
    }
    m_done, m_size, failures = download_objects(store, rem, wanted_manifests, progress, f"manifests from {rem.name}")
    plan = plan_objects(store, outs)
    failures.extend(f for f in plan.failures if f.oid not in wanted_manifests)
    absent = store.missing(plan.files)  # a listing per fan-out directory, not a stat per object
    wanted = [oid for oid in plan.files if oid in absent]
    if sink is not None:
        sink.planned(plan, absent)
    del absent
    f_done, f_size, f_failures = fetch_objects(
        store, rem, wanted, plan.paths_of, progress, f"fetch from {rem.name}", memo=memo,
        on_chunk=sink.arrived if sink is not None else None,
    )
    failures.extend(f_failures)
    present = len(plan.files) - len(wanted) + sum(1 for d in plan.dirs if d.oid not in wanted_manifests)
    return TransferResult(
        rem.name, rem.url, len(m_done) + len(f_done), present, tuple(failures), m_size + f_size
    )


def _has_intact_manifest(store: ObjectStore, oid: str) -> bool:
    """True when the manifest is in the store and intact; a corrupt one is quarantined (and fetched again)."""
    if not store.exists(oid):
        return False
    if store.is_intact(oid):
        return True
    store.quarantine(oid)
    return False


def download_objects(
    store: ObjectStore, rem: Remote, wanted: Mapping[str, str], progress: Progress, label: str
) -> tuple[set[str], int, list[Failure]]:
    """Download `wanted` (oid -> workspace path) into `store`; see `fetch_objects`."""
    return fetch_objects(store, rem, list(wanted), lambda _: wanted, progress, label)


def fetch_objects(
    store: ObjectStore, rem: Remote, oids: Collection[str], paths_of: Callable[[Iterable[str]], Mapping[str, str]],
    progress: Progress, label: str, *, memo: HashMemo | None = None,
    on_chunk: Callable[[Sequence[str]], None] | None = None,
) -> tuple[set[str], int, list[Failure]]:
    """Download `oids` into `store`, each hashed as it arrives before it is added; returns the oids
    added, their bytes, and the failures (named by the workspace paths `paths_of` finds for them).
    `on_chunk(oids)` runs after each chunk entered the store, with the oids it added.

    Objects are fetched in chunks; each chunk's verified objects enter the store together with
    one filesystem flush (`store.put_many(verified=True)`), so an interrupted fetch keeps the
    finished chunks. Download paths are made per chunk (a Path per object of a million costs
    hundreds of MB). The remote checks each object as it writes it (`get_many(check=True)`): a
    delivered object is never read again. Downloads are temporary files beside their object's
    final fan-out directory (thousands of files created in one directory serialise on its lock),
    named by `temp_name`, so they never look like objects and a killed fetch's are swept.

    With `memo`, the check each object passed is remembered by its stat data (taken as it was
    written; the rename into the store keeps inode and mtime) once the stamp is out of the memo's
    racy window (the memo refuses younger ones): a chunk or two later, or never for the last few.
    """
    if not oids:
        return set(), 0, []
    order = rem.transfer_order(oids)
    root = store.root
    for fanout in sorted({oid[:2] for oid in order}):
        (root / fanout).mkdir(parents=True, exist_ok=True)
    failed: list[tuple[str, str]] = []
    missing: set[str] = set()
    verified: list[tuple[str, Path]] = []
    done: set[str] = set()
    sizes: dict[str, int] = {}
    stamps: dict[str, FileStamp] = {}
    unrecorded: list[tuple[str, FileStamp]] = []
    total = 0
    temp: dict[str, Path] = {}
    task = progress.task(label, len(order), unit="objects")

    def finish(oid: str, error: PipeError | None) -> None:
        if error is not None:
            task.advance()
            failed.append((oid, str(error)))
            if isinstance(error, ObjectNotFoundError):
                missing.add(oid)
            return
        st = os.stat(temp[oid])
        sizes[oid] = st.st_size
        stamps[oid] = FileStamp(st.st_ino, st.st_mtime_ns, st.st_size)
        task.advance(nbytes=sizes[oid])
        verified.append((oid, temp[oid]))

    try:
        # Packed objects in pack and offset order: each chunk then reads few, contiguous ranges.
        for start in range(0, len(order), _FETCH_CHUNK):
            items = [(oid, download_path(root / oid[:2], oid)) for oid in order[start : start + _FETCH_CHUNK]]
            temp = dict(items)
            rem.get_many(items, on_done=finish, check=True)
            _add_to_store(store, verified)
            added = [oid for oid, _ in verified]
            done.update(added)
            total += sum(sizes.values())
            verified.clear()
            sizes.clear()
            _sweep(temp, done)
            temp = {}
            if on_chunk is not None and added:
                on_chunk(added)
            if memo is not None:
                unrecorded += [(oid, stamps[oid]) for oid in added]
                now = time.time_ns()
                if any(trusted_from_ns(st.mtime_ns) <= now for _, st in unrecorded):
                    memo.put_verified([r for r in unrecorded if trusted_from_ns(r[1].mtime_ns) <= now])
                    unrecorded = [r for r in unrecorded if trusted_from_ns(r[1].mtime_ns) > now]
            stamps.clear()
    finally:
        task.close()
        _sweep(temp, done)
    if memo is not None:
        memo.put_verified(unrecorded)
    return done, total, named_failures(failed, paths_of, missing=missing)


def _sweep(temp: Mapping[str, Path], done: Collection[str]) -> None:
    """Refused or interrupted downloads never stay (the adopted ones were renamed into the store)."""
    for oid, path in temp.items():
        if oid not in done:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _add_to_store(store: ObjectStore, verified: Sequence[tuple[str, Path]]) -> None:
    try:
        store.put_many(verified, verified=True)
    except OSError as exc:
        raise CacheError(f"cannot add fetched objects to the cache '{store.root}': {exc}") from exc
