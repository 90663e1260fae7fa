"""`--run-cache` for push / fetch / pull: share run-cache entries (and the outs they name) via a remote.

Entries live under `<remote>/runs/` in the object layout (`runs/<2 hex>/<30 hex>`), named by
their run key, so a teammate's `pipe repro` can restore outputs instead of rerunning. An entry
is named by its key, not by its content's hash, so a downloaded entry is validated by parsing
it (schema and every out record) before it enters `.pipe/cache/runs/`; a bad one is reported
and skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pipeline_engine.core.layout import RUNS_DIR, download_path, oid_to_relpath, relpath_to_oid, tmp_dir
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.index.download import fetch_outs
from pipeline_engine.index.objects import Failure
from pipeline_engine.index.remotes import open_project_remote
from pipeline_engine.index.runcache import lookup, read_entry, runs_dir
from pipeline_engine.index.sync import TransferResult, raise_for_failures
from pipeline_engine.index.upload import push_outs
from pipeline_engine.project import Project

__all__ = ["RUNS_SUBDIR", "adopt_entry", "fetch_runs", "push_runs"]

#: The run cache on a remote: `<remote>/runs/`, in the object layout.
RUNS_SUBDIR = RUNS_DIR


def push_runs(
    project: Project, *, remote: str | None = None, jobs: int | None = None, progress: Progress | None = None
) -> TransferResult:
    """Upload the run-cache entries the remote lacks, then the objects of every entry's outs.

    Raises:
        RemoteError: the remote is unreachable, or some entries or objects failed.
    """
    progress = progress or NullProgress()
    runs_remote = open_project_remote(project, remote, jobs=jobs, subdir=RUNS_SUBDIR)
    objects_remote = open_project_remote(project, remote, jobs=jobs)
    with project.mutex("pipe push --run-cache"):
        keys = list(_local_keys(project))
        have = set(keys) - runs_remote.missing(keys)
        todo = [(k, runs_dir(project) / oid_to_relpath(k)) for k in keys if k not in have]
        errors = runs_remote.put_many(todo)
        outs = [o for k in keys for o in lookup(project, k) or ()]
        objects = push_outs(project.store, objects_remote, outs, progress=progress)
    failed = tuple(Failure(f"run-cache entry {k}", k, str(e)) for k, e in errors.items())
    result = _combine(objects, len(todo) - len(errors), len(have), failed)
    raise_for_failures("push", result)
    return result


def fetch_runs(
    project: Project, *, remote: str | None = None, jobs: int | None = None, progress: Progress | None = None
) -> TransferResult:
    """Download the run-cache entries the cache lacks, then the objects of every entry's outs.

    Raises:
        RemoteError: the remote is unreachable, or some entries or objects failed (the rest arrived).
    """
    progress = progress or NullProgress()
    runs_remote = open_project_remote(project, remote, jobs=jobs, subdir=RUNS_SUBDIR)
    objects_remote = open_project_remote(project, remote, jobs=jobs)
    with project.mutex("pipe fetch --run-cache"):
        local = set(_local_keys(project))
        remote_keys = [k for k in runs_remote.iter_oids() if k not in local]
        scratch = tmp_dir(project.control_dir)
        scratch.mkdir(parents=True, exist_ok=True)
        items = [(k, download_path(scratch, f"run-{k}")) for k in remote_keys]
        errors = runs_remote.get_many(items)
        failed = [Failure(f"run-cache entry {k}", k, str(e)) for k, e in errors.items()]
        arrived = 0
        for key, tmp in items:
            if key in errors:
                continue
            if adopt_entry(project, key, tmp):
                arrived += 1
            else:
                failed.append(Failure(f"run-cache entry {key}", key, "not a valid run-cache entry; skipped"))
        keys = [*local, *(k for k, _ in items if k not in errors)]
        outs: list[PathRecord] = [o for k in keys for o in lookup(project, k) or ()]
        objects = fetch_outs(project.store, objects_remote, outs, progress=progress)
    result = _combine(objects, arrived, 0, tuple(failed))
    raise_for_failures("fetch", result)
    return result


def _local_keys(project: Project) -> Iterator[str]:
    root = runs_dir(project)
    if not root.is_dir():
        return
    for fanout in sorted(os.listdir(root)):
        if len(fanout) == 2 and (root / fanout).is_dir():
            for name in sorted(os.listdir(root / fanout)):
                key = relpath_to_oid(f"{fanout}/{name}")
                if key is not None:
                    yield key


def adopt_entry(project: Project, key: str, tmp: Path) -> bool:
    """Move a downloaded entry into the run cache if it parses as one; False (and deleted) if not."""
    try:
        if read_entry(tmp) is None:
            return False
        dest = runs_dir(project) / oid_to_relpath(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        return True
    finally:
        if tmp.exists():
            tmp.unlink()


def _combine(
    objects: TransferResult, entries: int, entries_present: int, failed: tuple[Failure, ...]
) -> TransferResult:
    return TransferResult(
        objects.remote,
        objects.url,
        objects.transferred + entries,
        objects.present + entries_present,
        objects.failed + failed,
        objects.bytes,
    )
