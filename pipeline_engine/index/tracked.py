"""A project file's content at one revision, wherever it lives: the workspace, a git blob, or the cache.

Metrics, params and plots files are read at a revision without checking it out. A file git holds
is a blob; a file pipe tracks (a stage out with `cache: true`, which is git-ignored, or data added
with `pipe add`) is the object its record at that revision names: the lock entry or the pointer
file, and for a file inside a tracked directory, the entry of that directory's manifest. The
workspace is read as it is on disk. Shared by `pipe metrics`, `pipe plots`, `pipe params` and the
Python API (`pipeline_engine.api`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import ObjectNotFoundError
from pipeline_engine.index.project_index import ProjectIndex

__all__ = ["Located", "covering", "list_at", "locate", "missing_object", "read_at"]


@dataclass(frozen=True, slots=True)
class Located:
    """Where a tracked file's content is: its oid, and the record (a whole out or pointer) that named it."""

    oid: Oid
    record: PathRecord


def missing_object(path: str, oid: str, label: str) -> ObjectNotFoundError:
    """The one error for a tracked file whose object the local cache lacks, naming the fetch that brings it."""
    return ObjectNotFoundError(
        f"'{path}' at '{label}' is tracked by pipe (object '{oid}'), and that object is not in the local cache",
        hint=f"run 'pipe fetch --rev {label}' to download what that revision tracks",
    )


def _records(index: ProjectIndex, *, pointers: bool) -> Iterable[PathRecord]:
    yield from (o.record for o in index.stage_outs)
    if pointers:
        yield from (PathRecord(p.data_relpath, p.out.oid, p.out.size, p.out.nfiles) for p in index.pointers)


def covering(index: ProjectIndex, path: str, *, pointers: bool) -> PathRecord | None:
    """The tracked record (a cached stage out; with `pointers`, a pointer's out too) at `path`, or of the directory holding it."""
    for record in _records(index, pointers=pointers):
        if record.path == path or (record.isdir and path.startswith(record.path + "/")):
            return record
    return None


def _tree(index: ProjectIndex, record: PathRecord, path: str) -> Tree:
    from pipeline_engine.cache.manifests import tree_of

    try:
        return tree_of(index.project.store, record.oid)
    except ObjectNotFoundError:
        raise missing_object(path, record.oid, index.files.label) from None


def locate(index: ProjectIndex, path: str, *, pointers: bool = True) -> Located | None:
    """The oid of tracked file `path` (project-relative) at the index's revision; None when pipe does not track it.

    A file inside a tracked directory is looked up in the directory's manifest (from the local cache).

    Raises:
        ObjectNotFoundError: the directory's manifest is not in the local cache (the hint names `pipe fetch --rev`).
    """
    record = covering(index, path, pointers=pointers)
    if record is None:
        return None
    if record.path == path:
        return Located(record.oid, record)
    entry = _tree(index, record, path).by_path().get(path[len(record.path) + 1 :])
    return None if entry is None else Located(entry.oid, record)


def read_at(index: ProjectIndex, path: str) -> bytes | None:
    """The content of project file `path` at the index's revision; None when there is none.

    The workspace is read from disk. At a revision, a file pipe tracks there (a cached stage out, or
    a path a pointer file tracks) is read from the local cache by the oid its record names; any
    other file is read from git.

    Raises:
        ObjectNotFoundError: the tracked file's object (or its directory's manifest) is not in the local cache.
        CorruptObjectError: the object does not match its oid.
        UnsafePathError: the path gate refuses `path`.
    """
    files = index.files
    if index.is_workspace:
        return files.read_bytes(path)
    found = locate(index, path, pointers=False)
    if found is None:
        data = files.read_bytes(path)
        if data is not None:
            return data
        found = locate(index, path)  # pointer files are listed only when git does not hold the file
        if found is None:
            return None
    try:
        return index.project.store.read_bytes(found.oid)
    except ObjectNotFoundError:
        raise missing_object(path, found.oid, files.label) from None


def list_at(index: ProjectIndex, path: str, *, suffixes: Sequence[str] = ()) -> list[str]:
    """The files at or under `path` at the index's revision whose names end with one of `suffixes` (all when empty).

    Files in git (or on disk) and, at a revision, the files of a tracked directory (from its
    manifest) are listed, sorted and each once.

    Raises:
        ObjectNotFoundError: a tracked directory's manifest is not in the local cache.
    """
    ends = tuple(suffixes)
    found = {p for p in index.files.list_files(under=path) if not ends or p.lower().endswith(ends)}
    if not index.is_workspace:
        record = covering(index, path, pointers=not found)
        if record is not None and record.isdir:
            inner = path[len(record.path) + 1 :] if path != record.path else ""
            for entry in _tree(index, record, path).entries:
                if (not inner or entry.relpath == inner or entry.relpath.startswith(inner + "/")) and (
                    not ends or entry.relpath.lower().endswith(ends)
                ):
                    found.add(f"{record.path}/{entry.relpath}")
        elif record is not None and record.path == path and (not ends or path.lower().endswith(ends)):
            found.add(path)
    return sorted(found)
