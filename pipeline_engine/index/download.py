"""Fetch: download the objects of outs the store lacks, each verified before it enters the cache.

Every object is hashed against its oid once, as the remote writes it (`get_many(check=True)`),
before it enters the cache (`store.put_many(verified=True)`); a refused one is reported by path
and oid and never becomes an object.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.layout import download_path
from pipeline_engine.core.progress import Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError, PipeError
from pipeline_engine.index.objects import Failure, plan_objects
from pipeline_engine.index.sync import TransferResult, named_failures
from pipeline_engine.remote.remote import Remote

__all__ = ["download_objects", "fetch_objects", "fetch_outs"]

# Objects fetched between two flushes of the cache (see fetch_objects).
_FETCH_CHUNK = 2000


def fetch_outs(
    store: ObjectStore, rem: Remote, outs: Sequence[PathRecord], *, progress: Progress
) -> TransferResult:
    """Fetch `outs` from `rem` into `store`: missing manifests first, then the files they list."""
    wanted_manifests: dict[str, str] = {
        o.oid: o.path for o in outs if is_dir_oid(o.oid) and not _has_intact_manifest(store, o.oid)
    }
    m_done, m_size, failures = download_objects(store, rem, wanted_manifests, progress, f"manifests from {rem.name}")
    plan = plan_objects(store, outs)
    failures.extend(f for f in plan.failures if f.oid not in wanted_manifests)
    absent = store.missing(plan.files)  # a listing per fan-out directory, not a stat per object
    wanted = [oid for oid in plan.files if oid in absent]
    del absent
    f_done, f_size, f_failures = fetch_objects(store, rem, wanted, plan.paths_of, progress, f"fetch from {rem.name}")
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
    progress: Progress, label: str,
) -> tuple[set[str], int, list[Failure]]:
    """Download `oids` into `store`, each hashed as it arrives before it is added; returns the oids
    added, their bytes, and the failures (named by the workspace paths `paths_of` finds for them).

    Objects are fetched in chunks; each chunk's verified objects enter the store together with
    one filesystem flush (`store.put_many(verified=True)`), so an interrupted fetch keeps the
    finished chunks. Download paths are made per chunk (a Path per object of a million costs
    hundreds of MB). The remote checks each object as it writes it (`get_many(check=True)`): a
    delivered object is never read again. Downloads are temporary files beside their object's
    final fan-out directory (thousands of files created in one directory serialise on its lock),
    named by `temp_name`, so they never look like objects and a killed fetch's are swept.
    """
    if not oids:
        return set(), 0, []
    order = rem.transfer_order(oids)
    root = store.root
    for fanout in sorted({oid[:2] for oid in order}):
        (root / fanout).mkdir(parents=True, exist_ok=True)
    failed: list[tuple[str, str]] = []
    verified: list[tuple[str, Path]] = []
    done: set[str] = set()
    sizes: dict[str, int] = {}
    total = 0
    temp: dict[str, Path] = {}
    task = progress.task(label, len(order), unit="objects")

    def finish(oid: str, error: PipeError | None) -> None:
        if error is not None:
            task.advance()
            failed.append((oid, str(error)))
            return
        sizes[oid] = os.stat(temp[oid]).st_size
        task.advance(nbytes=sizes[oid])
        verified.append((oid, temp[oid]))

    try:
        # Packed objects in pack and offset order: each chunk then reads few, contiguous ranges.
        for start in range(0, len(order), _FETCH_CHUNK):
            items = [(oid, download_path(root / oid[:2], oid)) for oid in order[start : start + _FETCH_CHUNK]]
            temp = dict(items)
            rem.get_many(items, on_done=finish, check=True)
            _add_to_store(store, verified)
            done.update(oid for oid, _ in verified)
            total += sum(sizes.values())
            verified.clear()
            sizes.clear()
            _sweep(temp, done)
            temp = {}
    finally:
        task.close()
        _sweep(temp, done)
    return done, total, named_failures(failed, paths_of)


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
