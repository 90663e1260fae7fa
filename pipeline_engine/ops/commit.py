"""`pipe commit`: record the current outs of stages in pipeline.lock as if the stages had just run."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline_engine.cache.pointer import POINTER_SUFFIX
from pipeline_engine.core.fsutil import relpath_in
from pipeline_engine.errors import MissingOutputError, PathError, StageNotFoundError
from pipeline_engine.index import runcache
from pipeline_engine.index.outs import measure, save_outs
from pipeline_engine.index.pipeline import load_pipeline
from pipeline_engine.pipeline.graph import resolve_target, stages_producing
from pipeline_engine.pipeline.lock import StageLock, write_stage
from pipeline_engine.pipeline.plan import Decision, StageState, decide
from pipeline_engine.pipeline.spec import StageSpec
from pipeline_engine.project import Project

__all__ = ["changed_pointers", "changed_stages", "commit"]


def _names(root: Path, stages: Mapping[str, StageSpec], targets: Sequence[str]) -> list[str]:
    """The stages a target names: by name or group, or (as DVC) the stages producing an out path.

    Raises:
        StageNotFoundError: a target names no stage and no out (a pointer-tracked path: the hint is 'pipe add').
    """
    if not targets:
        return list(stages)
    names: list[str] = []
    for target in targets:
        try:
            names += resolve_target(stages, target)
        except StageNotFoundError:
            rel = relpath_in(root, target).rstrip("/")
            producing = stages_producing(stages, rel)
            if producing:
                names += producing
                continue
            data = rel.removesuffix(POINTER_SUFFIX)
            if (root / f"{data}{POINTER_SUFFIX}").is_file():
                raise StageNotFoundError(f"'{data}' is tracked by '{data}{POINTER_SUFFIX}', not by a stage",
                                         hint=f"run 'pipe add {shlex.quote(data)}' to record its current content") from None
            raise
    return list(dict.fromkeys(names))


def changed_stages(project: Project, targets: Sequence[str] = ()) -> list[Decision]:
    """The targeted stages (all when empty) whose lock entry differs from the workspace."""
    pipeline = load_pipeline(project)
    result = []
    for name in _names(project.root, pipeline.stages, targets):
        stage, lock = pipeline.stages[name], pipeline.lock.stages.get(name)
        d = decide(stage, lock, measure(project, stage, lock))
        if d.runs:
            result.append(d)
    return result


def changed_pointers(project: Project) -> list[str]:
    """Pointer-tracked paths whose workspace content differs from their pointer: `pipe add`, not commit, records
    them (DVC's `dvc commit` does both, so its users look here)."""
    from pipeline_engine.ops.status import DataState, data_status

    return [s.path for s in data_status(project) if DataState.MODIFIED in s.states]


def commit(project: Project, targets: Sequence[str] = ()) -> list[str]:
    """Cache the outs of the targeted stages that changed and write their lock entries.

    Every stage is checked before anything is written: a missing dep or out changes nothing.

    Raises:
        PathError: a dep is missing.
        MissingOutputError: an out is missing.
    """
    with project.mutex("pipe commit " + " ".join(targets)):
        pipeline = load_pipeline(project)
        todo: list[tuple[StageSpec, StageState]] = []
        for name in _names(project.root, pipeline.stages, targets):
            stage, lock = pipeline.stages[name], pipeline.lock.stages.get(name)
            state = measure(project, stage, lock)
            if stage.frozen or not decide(stage, lock, state).runs:
                continue
            _check(stage, state)
            todo.append((stage, state))
        for stage, state in todo:
            outs = save_outs(project, stage, keep_uncached=runcache.is_cacheable(stage))
            deps = tuple(r for r in state.deps.values() if r is not None)
            entry = StageLock(stage.cmd, deps, state.params, state.env, outs)
            write_stage(project.root, stage.name, entry)
            key = runcache.run_key(stage, state) if runcache.is_cacheable(stage) else None
            if key:
                runcache.store_run(project, key, entry)
        return [stage.name for stage, _ in todo]


def _check(stage: StageSpec, state: StageState) -> None:
    missing_deps = [p for p, r in state.deps.items() if r is None]
    if missing_deps:
        raise PathError(f"stage '{stage.name}': dep '{missing_deps[0]}' does not exist",
                        hint="create it, then commit again")
    missing_outs: list[str] = [p for p, r in state.outs.items() if r is None]
    if missing_outs:
        raise MissingOutputError(f"stage '{stage.name}': out '{missing_outs[0]}' does not exist",
                                 hint=f"run 'pipe repro {stage.name}' instead")


