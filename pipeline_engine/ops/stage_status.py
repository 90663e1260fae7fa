"""`pipe status` for stages and `pipe why`: which stages would run, and every reason with old/new values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline_engine.errors import SpecError
from pipeline_engine.index import runcache
from pipeline_engine.index.outs import is_cached, measure
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.pipeline.graph import resolve_target, select
from pipeline_engine.pipeline.plan import Decision, decide, propagate
from pipeline_engine.project import Project

__all__ = ["StageProblem", "StageStatus", "Why", "plan_commands", "plan_stages", "stage_status", "why"]


def plan_stages(
    project: Project, targets: Sequence[str], *, force: bool = False, downstream: bool = False,
    single: bool = False,
) -> list[Decision]:
    """Every selected stage's decision, predicted without running anything, in topological order."""
    return [d for d, _ in plan_commands(project, targets, force=force, downstream=downstream, single=single)]


def plan_commands(
    project: Project, targets: Sequence[str], *, force: bool = False, downstream: bool = False,
    single: bool = False,
) -> list[tuple[Decision, tuple[str, ...]]]:
    """As `plan_stages`, each decision with the commands the stage would run (`repro --dry`, as DVC's)."""
    return _plan(ProjectIndex(project), targets, force=force, downstream=downstream, single=single)


def _plan(
    index: ProjectIndex, targets: Sequence[str], *, force: bool = False, downstream: bool = False,
    single: bool = False,
) -> list[tuple[Decision, tuple[str, ...]]]:
    project, pipeline = index.project, index.pipeline
    names = select(pipeline.graph, targets, downstream=downstream, single=single)
    decisions = {}
    for name in names:
        stage, lock = pipeline.stages[name], pipeline.lock.stages.get(name)
        decisions[name] = decide(stage, lock, measure(project, stage, lock), force=force)
    commands = {
        name: (spec.cmd,) if isinstance(spec.cmd, str) else spec.cmd
        for name, spec in pipeline.stages.items()
    }
    return [(d, commands[d.stage]) for d in propagate(names, pipeline.graph.upstream, decisions)]


@dataclass(frozen=True, slots=True)
class StageProblem:
    """A stage whose state could not be measured (a params key that is missing, a params file that is invalid)."""

    stage: str
    error: SpecError


@dataclass(frozen=True, slots=True)
class StageStatus:
    """`pipe status` for stages: the decisions of those that could be measured, and the problems of the rest."""

    decisions: tuple[Decision, ...]
    problems: tuple[StageProblem, ...] = ()


def stage_status(index: ProjectIndex, targets: Sequence[str] = ()) -> StageStatus:
    """Decisions for the stages named by `targets` (all when empty); empty without a pipeline.yaml.

    One stage's invalid params (a key that is not in its params file) make a problem row for that
    stage only: every other stage is still reported, and stages below it are predicted from their own
    state (nothing is known about what the broken stage would produce).

    Raises:
        SpecError: pipeline.yaml or pipeline.lock is invalid.
        StageNotFoundError: a target names no stage.
    """
    if not index.has_pipeline:
        return StageStatus(())
    project, pipeline = index.project, index.pipeline
    names = select(pipeline.graph, targets)
    decisions: dict[str, Decision] = {}
    problems: dict[str, StageProblem] = {}
    for name in names:
        stage, lock = pipeline.stages[name], pipeline.lock.stages.get(name)
        try:
            decisions[name] = decide(stage, lock, measure(project, stage, lock))
        except SpecError as exc:
            problems[name] = StageProblem(name, exc)
    planned = propagate([n for n in names if n in decisions], pipeline.graph.upstream, decisions)
    wanted = {n for t in targets for n in resolve_target(pipeline.stages, t)} if targets else set(names)
    return StageStatus(
        tuple(d for d in planned if d.stage in wanted), tuple(p for n, p in problems.items() if n in wanted)
    )


@dataclass(frozen=True, slots=True)
class Why:
    """The explanation for one stage: its decision, its upstream stages that run, the run cache."""

    decision: Decision
    upstream: tuple[Decision, ...]
    restorable: bool


def why(project: Project, target: str) -> list[Why]:
    """Why each stage of `target` (one stage, or every item of a foreach/matrix) would run.

    Raises:
        StageNotFoundError: the target names no stage.
    """
    index = ProjectIndex(project)
    pipeline = index.pipeline
    result = []
    for name in resolve_target(pipeline.stages, target):
        decisions = [d for d, _ in _plan(index, [name])]
        mine = decisions[-1]
        stage, lock = pipeline.stages[name], pipeline.lock.stages.get(name)
        restorable = False
        if mine.runs and runcache.is_cacheable(stage):
            key = runcache.run_key(stage, measure(project, stage, lock))
            records = runcache.lookup(project, key) if key else None
            restorable = records is not None and all(is_cached(project, r.oid) for r in records)
        result.append(Why(mine, tuple(d for d in decisions[:-1] if d.runs), restorable))
    return result
