"""pipe get: download a tracked file or directory (or a git file) from another pipe repository; nothing is tracked here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.cache.link import LinkType
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.workspace import checkout, tree_of
from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PathError
from pipeline_engine.index.external import External, open_external
from pipeline_engine.index.sync import TransferResult, download_objects, fetch_outs, raise_for_failures
from pipeline_engine.index.tracked import covering

__all__ = ["GetResult", "download_source", "get", "source_path"]


@dataclass(frozen=True, slots=True)
class GetResult:
    """What was written: `out` (as given, or the source path's name), the source commit, and whether it was tracked data."""

    out: str
    sha: str
    tracked: bool
    nfiles: int


def source_path(path: str) -> str:
    """PATH in the source, as a project-relative path (the path gate's rules).

    Raises:
        UnsafePathError: `path` is absolute, escapes with `..`, or names `.git`/`.pipe`.
    """
    return check_relpath(path, source="PATH")


def download_source(ext: External, path: str, store: ObjectStore, *, jobs: int | None = None,
                    progress: Progress | None = None) -> PathRecord | None:
    """Fetch the objects of tracked `path` in `ext` from its default remote into `store`, each verified by oid.

    Returns the record of `path` (a whole tracked path, or a file inside a tracked directory),
    or None when the source does not track it (it may be a git file).

    Raises:
        RemoteNotConfiguredError: the source has no default remote; RemoteError: objects failed.
        PathError: `path` is a directory inside a tracked directory (get the whole directory).
    """
    progress = progress or NullProgress()
    record = covering(ext.index, path, pointers=True)
    if record is None:
        return None
    rem = ext.open_remote(jobs=jobs)
    if record.path == path:
        raise_for_failures("fetch", fetch_outs(store, rem, [record], progress=progress))
        return record
    _, _, failed = download_objects(store, rem, {record.oid: record.path}, progress, f"manifest from {rem.name}")
    if failed:
        raise_for_failures("fetch", TransferResult(rem.name, rem.url, 0, 0, tuple(failed)))
    entry = tree_of(store, record.oid).by_path().get(path[len(record.path) + 1:])
    if entry is None:
        raise PathError(f"'{path}' is inside tracked directory '{record.path}' of '{ext.url}' but is not one of its files",
                        hint=f"get the whole directory: 'pipe get {ext.url} {record.path}'")
    inner = PathRecord(path, entry.oid, entry.size, None, entry.isexec)
    raise_for_failures("fetch", fetch_outs(store, rem, [inner], progress=progress))
    return inner


def get(url: str, path: str, *, out: str | None = None, rev: str | None = None, jobs: int | None = None,
        progress: Progress | None = None) -> GetResult:
    """Write `path` of the repository at `url` (at `rev`) to `out` (default: its name, in the current directory).

    Tracked data comes from the source's default remote (verified by oid) and is copied, never
    linked: nothing here refers to a cache. A git file or directory is written from git.

    Raises:
        PathError: `out` exists, or `path` names nothing in the source.
        ScmError, ConfigError, RemoteError: as `open_external` and `download_source`.
    """
    path = source_path(path)
    dest = Path(out or path.rpartition("/")[2]).absolute()
    if dest.exists() or dest.is_symlink():
        raise PathError(f"'{out or dest.name}' already exists", hint="remove it, or choose another name with '-o'")
    with open_external(None, url, rev) as ext:
        project = ext.index.project
        record = download_source(ext, path, project.store, jobs=jobs, progress=progress)
        if record is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            checkout(project.store, dest.parent, dest.name, record.oid, project.memo,
                     link_types=(LinkType.COPY,), isexec=record.isexec)
            return GetResult(str(out or dest.name), ext.sha, True, record.nfiles or 1)
        written = write_git_files(ext, path, dest)
        return GetResult(str(out or dest.name), ext.sha, False, written)


def write_git_files(ext: External, path: str, dest: Path) -> int:
    """Write git file `path` of the source (or every file under git directory `path`) to `dest`; returns how many.

    Raises:
        PathError: the source has nothing at `path`.
    """
    files = ext.index.files
    found = files.list_files(under=path)
    if not found:
        raise PathError(f"'{path}' does not exist in '{ext.url}' at '{ext.rev or 'HEAD'}'",
                        hint=f"run 'pipe ls {ext.url}' to list what it holds")
    for rel in found:
        target = dest if rel == path else dest / rel[len(path) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, files.read_bytes(rel) or b"")
        os.chmod(target, 0o644)
    return len(found)
