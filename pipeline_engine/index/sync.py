"""Moving objects between the local store and a remote: the transfer plan's execution, shared by commands.

Push uploads only what the remote lacks, file objects before the manifest that lists them, so a
remote never holds a directory manifest whose files are missing (packed files count once their
pack's index is uploaded: `Remote.put_many` returns only then). Every object is hashed against
its oid once, as it is read: fetch's downloads as the remote writes them (`get_many(check=True)`),
before they enter the cache (`store.put_many(verified=True)`); push's as they are copied into a
pack or just before a loose upload (`put_many(check=True)`), so a corrupt one is never sent.
A failed object never stops the others; the caller raises a `RemoteError` listing the failures
(path and oid) once everything else has been transferred (`raise_for_failures`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.layout import download_path, is_valid_oid, oid_to_relpath
from pipeline_engine.core.progress import Progress, ProgressTask
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import (
    CacheError,
    CorruptObjectError,
    PipeError,
    RemoteError,
    RemoteNotConfiguredError,
)
from pipeline_engine.index.objects import Failure, plan_objects, present_on_remote
from pipeline_engine.index.remotes import open_project_remote
from pipeline_engine.project import Project
from pipeline_engine.remote.pack import LocalFile
from pipeline_engine.remote.remote import Remote

__all__ = [
    "Failure",
    "TransferResult",
    "download_objects",
    "fetch_objects",
    "fetch_outs",
    "open_remotes_for",
    "out_remotes",
    "own_remote",
    "push_outs",
    "raise_for_failures",
]

_SHOWN_FAILURES = 20
_CORRUPT_LOCAL = "corrupt in the cache (run 'pipe cache verify'); not uploaded"
# Objects fetched between two flushes of the cache (see download_objects).
_FETCH_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class TransferResult:
    """Objects transferred, already present on the receiving side, and failed."""

    remote: str
    url: str
    transferred: int
    present: int
    failed: tuple[Failure, ...] = ()
    bytes: int = 0


def open_remotes_for(
    project: Project, outs: Sequence[PathRecord], remote: str | None, *, jobs: int | None = None,
    own: Mapping[str, str] | None = None,
) -> list[tuple[Remote, list[PathRecord]]]:
    """The remotes `outs` go to or come from, each with its outs (DVC's per-output `remote:`).

    An out of a stage that declares `remote: NAME` uses NAME; the others use `remote`, or the
    default remote when it is None. As in DVC, an explicit `remote` skips the outs that name a
    different one (`pipe push -r backup` sends only what belongs on 'backup' or has no remote).
    Without outs (or when all were skipped), the remote the command would use is still opened (and must exist).

    `own` is out path -> its `remote:` (`ProjectIndex.out_remotes`; read from pipeline.yaml when None).

    Raises:
        RemoteNotConfiguredError: no remote given and no default set for outs without their own,
            or an out names a remote that is not configured (the message names the out).
    """
    if own is None:
        own = out_remotes(project)
    groups: dict[str | None, list[PathRecord]] = {}
    for out in outs:
        name = own_remote(out.path, own)
        if remote is not None and name is not None and name != remote:
            continue
        groups.setdefault(name or remote, []).append(out)
    if not groups:
        groups[remote] = []
    opened = []
    for name, group in sorted(groups.items(), key=lambda item: item[0] or ""):
        try:
            rem = open_project_remote(project, name, jobs=jobs)
        except RemoteNotConfiguredError as exc:
            mine = [o.path for o in group if own_remote(o.path, own) == name]
            if name is None or not mine:
                raise
            raise RemoteNotConfiguredError(
                f"out '{mine[0]}' names remote '{name}' in pipeline.yaml: {exc}", hint=exc.hint
            ) from exc
        opened.append((rem, group))
    return opened


def out_remotes(project: Project) -> Mapping[str, str]:
    """Stage out path -> the remote its `remote:` names in pipeline.yaml (outs without one are absent)."""
    from pipeline_engine.index.project_index import ProjectIndex

    return ProjectIndex(project).out_remotes


def own_remote(path: str, own: Mapping[str, str]) -> str | None:
    """The remote of the out at `path`, or of the out directory holding it (a granular target)."""
    parts = path.split("/")
    for i in range(len(parts), 0, -1):
        name = own.get("/".join(parts[:i]))
        if name is not None:
            return name
    return None


def push_outs(
    store: ObjectStore, rem: Remote, outs: Sequence[PathRecord], *, progress: Progress, verify: bool = False
) -> TransferResult:
    """Push `outs` to `rem`: missing file objects first, then the manifests whose files all arrived.

    `verify` looks every object up on the remote (see `present_on_remote`).
    """
    plan = plan_objects(store, outs)
    failures = list(plan.failures)
    files = plan.files
    on_remote = present_on_remote(rem, plan, verify=verify)
    todo = [oid for oid in files if oid not in on_remote]
    task = progress.task(
        f"push to {rem.name}", len(todo) + sum(1 for d in plan.dirs if d.oid not in on_remote), unit="objects"
    )
    sent, size, bad = _upload(store, rem, todo, plan.paths_of, task)
    del todo
    failures.extend(bad)
    manifests: dict[str, str] = {}
    for d in plan.dirs:
        if d.oid in on_remote:
            continue
        if all(oid in on_remote or oid in sent for oid in d.files):
            manifests.setdefault(d.oid, d.path)
        else:
            failures.append(
                Failure(d.path, d.oid, "manifest not pushed: some of its files are not on the remote")
            )
    m_sent, m_size, m_bad = _upload(store, rem, list(manifests), lambda _: manifests, task)
    task.close()
    failures.extend(m_bad)
    present = sum(1 for oid in files if oid in on_remote) + sum(1 for d in plan.dirs if d.oid in on_remote)
    return TransferResult(rem.name, rem.url, len(sent) + len(m_sent), present, tuple(failures), size + m_size)


def _upload(
    store: ObjectStore, rem: Remote, oids: Sequence[str], paths_of: Callable[[Iterable[str]], Mapping[str, str]],
    task: ProgressTask,
) -> tuple[set[str], int, list[Failure]]:
    """Upload `oids`, each checked against its oid as it is read; returns the oids sent, their
    bytes, the failures (named by the workspace paths `paths_of` finds for them).

    Each object is read once: `put_many(check=True)` hashes a packed object while it copies it
    into the pack and a loose one right before its upload; a corrupt one is never sent.
    Only the failures are named: a path string per object would cost ~100 bytes a file.
    """
    failed: list[tuple[str, str]] = []
    ready: list[tuple[str, LocalFile]] = []
    sizes: dict[str, int] = {}
    root = os.fspath(store.root)
    for oid in oids:
        if not is_valid_oid(oid):
            failed.append((oid, "not a valid object id"))
            continue
        local = f"{root}/{oid_to_relpath(oid)}"  # a string: 10,000 Path objects cost more than their copies
        try:
            sizes[oid] = os.stat(local).st_size  # one stat per object: 10,000 of them show
        except FileNotFoundError:
            failed.append((oid, "not in the cache"))
            continue
        ready.append((oid, local))

    def done(oid: str, error: PipeError | None) -> None:
        task.advance(nbytes=sizes[oid] if error is None else 0)

    errors = rem.put_many(ready, on_done=done, sizes=sizes, check=True)
    for oid, exc in errors.items():
        failed.append((oid, _CORRUPT_LOCAL if isinstance(exc, CorruptObjectError) else str(exc)))
    sent = {oid for oid, _ in ready if oid not in errors}
    return sent, sum(sizes[oid] for oid in sent), _named(failed, paths_of)


def _named(failed: Sequence[tuple[str, str]], paths_of: Callable[[Iterable[str]], Mapping[str, str]]) -> list[Failure]:
    """Failures with the workspace path of each object, looked up once for all of them."""
    if not failed:
        return []
    paths = paths_of(oid for oid, _ in failed)
    return [Failure(paths.get(oid, ""), oid, reason) for oid, reason in failed]


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
    return done, total, _named(failed, paths_of)


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


def raise_for_failures(verb: str, result: TransferResult) -> None:
    """Raise one RemoteError listing every failed object (path and oid), with the counts.

    Raises:
        RemoteError: `result` has failures.
    """
    if not result.failed:
        return
    direction = "to" if verb == "push" else "from"
    lines = [f"  {f.path} ({f.oid}): {f.reason}" for f in result.failed[:_SHOWN_FAILURES]]
    if len(result.failed) > _SHOWN_FAILURES:
        lines.append(f"  ... and {len(result.failed) - _SHOWN_FAILURES} more")
    hint = (
        "rerun 'pipe push' to retry; objects missing or corrupt in the cache "
        "must be fetched or added again first"
        if verb == "push"
        else "rerun to retry; a missing or corrupt object must be pushed again from a clone that has it"
    )
    raise RemoteError(
        f"{verb} {direction} remote '{result.remote}' ({result.url}): {len(result.failed)} object(s) failed "
        f"({result.transferred} transferred, {result.present} already present)\n" + "\n".join(lines),
        hint=hint,
    )
