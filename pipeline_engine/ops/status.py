"""`pipe status` for tracked data: which pointers the workspace or the cache no longer match."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline_engine.cache.pointer import POINTER_SUFFIX
from pipeline_engine.cache.tree import Tree, TreeDiff, diff_trees
from pipeline_engine.cache.workspace import is_cached, scan, scan_tree, tree_of
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError
from pipeline_engine.index.pointers import deleted_pointers, resolve_pointers
from pipeline_engine.index.used import target_record
from pipeline_engine.project import Project

__all__ = ["DataState", "DataStatus", "data_status"]


class DataState(enum.Enum):
    """The state of one tracked path."""

    UP_TO_DATE = "up to date"
    MODIFIED = "modified"
    MISSING = "missing from workspace"
    NOT_IN_CACHE = "not in cache"
    CORRUPT_IN_CACHE = "corrupt in cache ('pipe cache verify' sets it aside, 'pipe pull' fetches a good copy)"
    POINTER_DELETED = "pointer file deleted from the workspace ('git checkout -- <path>.pipe' restores it)"


@dataclass(frozen=True, slots=True)
class DataStatus:
    """One pointer's state; `diff` lists changed files of a directory when they can be known."""

    path: str
    pointer: str
    states: tuple[DataState, ...]
    diff: TreeDiff | None = None

    @property
    def is_clean(self) -> bool:
        """True when the workspace and the cache both match the pointer."""
        return self.states == (DataState.UP_TO_DATE,)


def data_status(project: Project, targets: Sequence[str] = ()) -> list[DataStatus]:
    """The state of every pointer selected by `targets` (all when empty)."""
    found = [_status_of(project, target_record(project, t), t.pointer.relpath)
             for t in resolve_pointers(project, targets)]
    if not targets:  # never silently recreated (see ops.checkout): reported here as well
        found += [DataStatus(p[: -len(POINTER_SUFFIX)], p, (DataState.POINTER_DELETED,))
                  for p in deleted_pointers(project)]
    return found


def _status_of(project: Project, out: PathRecord, pointer: str) -> DataStatus:
    rel, oid = out.path, out.oid
    states: list[DataState] = []
    diff = None
    cached = is_cached(project.store, oid)
    if not (project.root / rel).exists():
        states.append(DataState.MISSING)
    else:
        current = scan(project.root, rel, project.memo, store=project.store)
        if current.oid != oid or (not is_dir_oid(oid) and current.isexec != out.isexec):
            states.append(DataState.MODIFIED)
            if is_dir_oid(oid) and cached:
                diff = _dir_diff(project, rel, oid, current.tree)
    if not cached:
        states.append(DataState.CORRUPT_IN_CACHE if _is_corrupt_manifest(project, oid) else DataState.NOT_IN_CACHE)
    return DataStatus(rel, pointer, tuple(states) or (DataState.UP_TO_DATE,), diff)


def _is_corrupt_manifest(project: Project, oid: str) -> bool:
    """True when the directory manifest `oid` is in the cache but unreadable (not merely absent)."""
    if not is_dir_oid(oid) or not project.store.exists(oid):
        return False
    try:
        tree_of(project.store, oid)
    except CacheError:
        return True
    return False


def _dir_diff(project: Project, rel: str, oid: str, current: Tree | None) -> TreeDiff | None:
    root = project.root
    if not (root / rel).is_dir():
        return None
    now = current if current is not None else scan_tree(root, rel, project.memo, store=project.store)
    return diff_trees(tree_of(project.store, oid).by_path(), now.by_path())
