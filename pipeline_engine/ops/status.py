"""`pipe status`: which stages would run and why, and which tracked data the workspace or the cache no longer match.

Both halves read one `ProjectIndex`, so pipeline.yaml is parsed and the pointer files listed once.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline_engine.cache.compare import compare_dir
from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.pointer import POINTER_SUFFIX
from pipeline_engine.cache.tree import TreeDiff
from pipeline_engine.cache.workspace import is_cached, scan
from pipeline_engine.core.fsutil import relpath_in
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError
from pipeline_engine.index.pointers import deleted_pointers
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.targets import Target
from pipeline_engine.index.used import target_record
from pipeline_engine.ops.stage_status import StageStatus, stage_status
from pipeline_engine.pipeline.graph import stages_producing
from pipeline_engine.project import Project

__all__ = ["DataState", "DataStatus", "Status", "data_status", "status"]


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


@dataclass(frozen=True, slots=True)
class Status:
    """`pipe status`: the stages' decisions and problems, and the state of each tracked path."""

    stages: StageStatus
    data: tuple[DataStatus, ...]


def status(project: Project, targets: Sequence[str] = ()) -> Status:
    """Stage status for targets naming stages or their outs, data status for the others (everything when empty).

    Raises:
        SpecError: pipeline.yaml, pipeline.lock or a pointer file is invalid.
        StageNotFoundError: a target is close to a stage name and names nothing on disk.
        PathError: a data target tracks nothing, or its pointer file was deleted.
    """
    index = ProjectIndex(project)
    named, rest = _split(index, targets)
    stages = stage_status(index, named) if named or not targets else StageStatus(())
    data = data_status(project, rest, index=index) if rest or not targets else []
    return Status(stages, tuple(data))


def _split(index: ProjectIndex, targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """Targets for the stage half (stages, and the stages producing a targeted out path, as DVC) and for the data half."""
    if not targets or not index.has_pipeline:
        return [], list(targets)
    stages: list[str] = []
    data: list[str] = []
    for target in targets:
        selection = index.select([target])
        if selection.stages:
            stages.append(target)
            continue
        producing = stages_producing(index.spec.stages, relpath_in(index.project.root, target).rstrip("/"))
        stages.extend(producing)
        if selection.pointers or not producing:
            data.append(target)
    return list(dict.fromkeys(stages)), data


def data_status(project: Project, targets: Sequence[str] = (), *, index: ProjectIndex | None = None) -> list[DataStatus]:
    """The state of every pointer selected by `targets` (all when empty).

    Raises:
        PathError: a target selects no pointer (the hint names the stage that produces it, if one
            does), or its pointer file was deleted from the workspace.
    """
    index = index or ProjectIndex(project)
    chosen: dict[tuple[str, str], Target] = {}
    selections = [(t, index.select([t])) for t in targets] if targets else [(None, index.select(()))]
    for target, selection in selections:
        if target is not None and not selection.pointers:
            selection.raise_for_unknown(index, unmatched=target)
        chosen.update(((t.pointer.relpath, t.inside), t) for t in selection.pointers)
    found = [_status_of(project, target_record(project, t), t.pointer.relpath) for _, t in sorted(chosen.items())]
    if not targets:  # never silently recreated (see ops.checkout): reported here as well
        found += [DataStatus(p[: -len(POINTER_SUFFIX)], p, (DataState.POINTER_DELETED,))
                  for p in deleted_pointers(project)]
    return found


def _status_of(project: Project, out: PathRecord, pointer: str) -> DataStatus:
    rel, oid = out.path, out.oid
    store, memo = project.store, project.memo
    states: list[DataState] = []
    diff = None
    path = project.root / rel
    if not path.exists():
        states.append(DataState.MISSING)
    elif is_dir_oid(oid) and path.is_dir():
        # Only the directories whose files' stat data moved are compared: no manifest is parsed whole.
        compared = compare_dir(project.root, rel, memo, oid, store=store)
        if not compared.same:
            states.append(DataState.MODIFIED)
            diff = compared.diff
    else:
        current = scan(project.root, rel, memo, store=store)
        if current.oid != oid or (not is_dir_oid(oid) and current.isexec != out.isexec):
            states.append(DataState.MODIFIED)
    # A directory found complete before (memo) is not read again: a no-op status reads no manifest.
    if not is_cached(store, oid, memo=memo):
        diff = None
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
