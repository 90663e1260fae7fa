"""Push: upload the objects of outs the remote lacks, verified as they are read.

Push uploads only what the remote lacks, file objects before the manifest that lists them, so a
remote never holds a directory manifest whose files are missing (packed files count once their
pack's index is uploaded: `Remote.put_many` returns only then). Each object is hashed against its
oid once, as it is copied into a pack or just before a loose upload (`put_many(check=True)`), so a
corrupt one is never sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.layout import is_valid_oid, oid_to_relpath
from pipeline_engine.core.progress import Progress, ProgressTask
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CorruptObjectError, PipeError
from pipeline_engine.index.objects import Failure, plan_objects, present_on_remote
from pipeline_engine.index.sync import TransferResult, named_failures
from pipeline_engine.remote.pack import LocalFile
from pipeline_engine.remote.remote import Remote

__all__ = ["push_outs"]

_CORRUPT_LOCAL = "corrupt in the cache (run 'pipe cache verify'); not uploaded"


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
    return sent, sum(sizes[oid] for oid in sent), named_failures(failed, paths_of)
