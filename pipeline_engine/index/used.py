"""Which outs the workspace references (pointers, and stage outs from pipeline.lock)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline_engine.cache.tree import Tree, TreeEntry
from pipeline_engine.cache.workspace import tree_of
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import ObjectNotFoundError, PathError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.targets import Target
from pipeline_engine.project import Project

__all__ = ["target_record", "used_outs"]


def used_outs(
    project: Project, *, targets: Sequence[str] = (), remote: str | None = None, fetch_manifests: bool = False,
    index: ProjectIndex | None = None,
) -> list[PathRecord]:
    """Every out that pointer files (and the lock file) of the workspace reference, chosen by `targets`.

    `PathRecord.path` is project-relative. Targets follow `index/targets.py`'s rules; a target
    inside a tracked directory selects only that file or sub-directory (see `target_record`); with
    `fetch_manifests` (fetch, pull), the directory's manifest is first downloaded from `remote` (or
    the default) when the cache lacks it. `index`: the command's index, when it has one already.

    Raises:
        PathError: a target tracks nothing, or its pointer file was deleted from the workspace.
        ObjectNotFoundError: a target inside a directory whose manifest is not in the cache.
    """
    index = index or ProjectIndex(project)
    chosen = index.select(targets)
    chosen.raise_for_unknown(index)
    if fetch_manifests:
        _fetch_manifests(index, [t for t in chosen.pointers if t.inside], remote)
    return [*(target_record(project, t) for t in chosen.pointers), *(o.record for o in chosen.outs)]


def _fetch_manifests(index: ProjectIndex, inner: Sequence[Target], remote: str | None) -> None:
    """Download the manifests of the directories that granular targets point into, if missing."""
    project = index.project
    from pipeline_engine.core.progress import NullProgress
    from pipeline_engine.index.sync import download_objects, open_remotes_for

    wanted = {t.pointer.out.oid: t.pointer.data_relpath for t in inner if not project.store.exists(t.pointer.out.oid)}
    if not wanted:
        return
    whole = [PathRecord(path, Oid(oid), 0) for oid, path in wanted.items()]
    for rem, group in open_remotes_for(project, whole, remote, own=index.out_remotes):
        download_objects(project.store, rem, {o.oid: o.path for o in group}, NullProgress(), "manifests")


def target_record(project: Project, target: Target) -> PathRecord:
    """The record of what `target` selects, project-relative.

    For a path inside a tracked directory: its file entry, or for a sub-directory a manifest of
    the entries under it (stored in the cache, so checkout, status and transfers handle it as
    any directory out).

    Raises:
        ObjectNotFoundError: the directory's manifest is not in the cache (it lists the files).
        PathError: the directory's manifest has no such file or sub-directory.
    """
    out = target.pointer.out
    if not target.inside:
        return PathRecord(target.pointer.data_relpath, out.oid, out.size, out.nfiles, out.isexec)
    try:
        tree = tree_of(project.store, out.oid)
    except ObjectNotFoundError:
        data = target.pointer.data_relpath
        raise ObjectNotFoundError(
            f"'{target.data_relpath}': the manifest of '{data}' (object '{out.oid}') is not in the cache, "
            "so the files inside it are not known",
            hint=f"run 'pipe fetch {data}' to fetch it",
        ) from None
    sub = target.inside
    entry = tree.by_path().get(sub)
    if entry is not None:
        return PathRecord(target.data_relpath, entry.oid, entry.size, None, entry.isexec)
    under = [TreeEntry(e.relpath[len(sub) + 1:], e.oid, e.size, e.isexec)
             for e in tree.entries if e.relpath.startswith(sub + "/")]
    if not under:
        raise PathError(
            f"'{target.data_relpath}' is not in the tracked version of '{target.pointer.data_relpath}'",
            hint=f"run 'pipe status {target.pointer.data_relpath}' to see what it holds",
        )
    part = Tree.from_entries(under)
    oid: Oid = project.store.put_bytes(part.to_bytes(), suffix=".dir")
    return PathRecord(target.data_relpath, oid, part.size, len(part.entries))
