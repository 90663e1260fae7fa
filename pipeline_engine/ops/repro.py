"""`pipe repro`: run the stages whose inputs changed, in parallel, caching outs and updating the lock.

Each stage is decided inside its scheduler job, after its upstream stages finished, so an
upstream stage that reran and produced identical outs does not make its dependents run
(early cutoff). A changed stage first tries the cached outs of its last run or the run cache.
A stage's life (decide, restore, run, record) is in `ops/repro_stage.py`; its command runs
through an executor (`runner/executor.py`), local processes unless the caller passes another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_engine.core import signals
from pipeline_engine.core.layout import running_dir
from pipeline_engine.errors import PipeError, PipeInterrupted
from pipeline_engine.index.outs import save_pointer_deps
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.ops.repro_dask import executor_kind, open_executor, stage_slots
from pipeline_engine.ops.repro_stage import Outcome, ReproListener, StageLife, StageOutcome
from pipeline_engine.pipeline.graph import select
from pipeline_engine.pipeline.lock import LockWriter
from pipeline_engine.pipeline.plan import Reason
from pipeline_engine.pipeline.spec import StageSpec
from pipeline_engine.project import Project
from pipeline_engine.runner.executor import Executor
from pipeline_engine.runner.orphans import end_leftovers
from pipeline_engine.runner.process import find_leftovers
from pipeline_engine.runner.scheduler import OnError, ScheduleResult, schedule

if TYPE_CHECKING:
    from pipeline_engine.ops.repro_pull import Puller

__all__ = ["Outcome", "ReproListener", "ReproOptions", "ReproResult", "StageOutcome", "repro"]


@dataclass(frozen=True, slots=True)
class ReproOptions:
    """The flags of `pipe repro`."""

    force: bool = False
    force_downstream: bool = False
    downstream: bool = False
    single: bool = False
    keep_going: bool = False
    jobs: int | None = None
    run_cache: bool = True
    wait: bool = False
    pull: bool = False
    executor: str | None = None  # "local" | "dask"; None: config's executor.type
    scheduler: str | None = None  # a Dask scheduler's address; None: config's, else a local cluster
    checkout: bool = True  # False (--no-checkout): the last stages' outs stay on the remote (Dask executor)


@dataclass(frozen=True, slots=True)
class ReproResult:
    """Every selected stage's outcome, in topological order, and the pointer files repro rewrote.

    `pointers` are the `.pipe` files of changed pointer-tracked deps that repro cached before
    running their dependents: the user commits them with pipeline.lock.
    """

    stages: tuple[StageOutcome, ...] = ()
    pointers: tuple[str, ...] = ()

    def of(self, outcome: Outcome) -> list[str]:
        """Names of the stages with this outcome."""
        return [s.stage for s in self.stages if s.outcome is outcome]

    def raise_for_failure(self) -> None:
        """Raise the first failed stage's error (StageFailedError: exit code 3).

        Raises:
            PipeError: a stage failed.
        """
        for s in self.stages:
            if s.error is not None:
                raise s.error


class _Silent:
    def started(self, stage: str, reasons: tuple[Reason, ...], log_path: Path | None) -> None:
        return None

    def leftover(self, stage: str, pid: int, *, wait: bool) -> None:
        return None

    def command(self, stage: str, cmd: str) -> None:
        return None

    def output(self, stage: str, line: str) -> None:
        return None

    def finished(self, outcome: StageOutcome) -> None:
        return None


def repro(
    project: Project, targets: Sequence[str], options: ReproOptions = ReproOptions(),
    listener: ReproListener | None = None, executor: Executor | None = None,
) -> ReproResult:
    """Bring the selected stages up to date, running their commands through `executor`.

    `executor` None: the one `options.executor` (or config's `executor.type`) names, closed at the
    end: a `LocalExecutor` with the run's `-j`, or a `DaskExecutor` (`ops/repro_dask.py`); an
    executor the caller passes is the caller's to close.

    Raises:
        SpecError: pipeline.yaml, a params file or pipeline.lock is invalid.
        StageNotFoundError: a target names no stage.
        LockedError: another pipe process is changing the project.
        PipeInterrupted: Ctrl-C, SIGTERM or SIGHUP; finished stages keep their lock entries.
    """
    listener = listener or _Silent()
    with project.mutex("pipe repro " + " ".join(targets), wait=options.wait):
        _end_leftovers(project, listener, wait=options.wait)
        index = ProjectIndex(project)
        pipeline = index.pipeline
        names = select(pipeline.graph, targets, downstream=options.downstream, single=options.single)
        kind = executor_kind(project, options.executor) if executor is None else "given"
        jobs = stage_slots(project, kind, options.scheduler, options.jobs)
        writer = LockWriter(project.root, pipeline.lock)
        puller = _puller(index, [pipeline.stages[n] for n in names]) if options.pull else None
        # Changed data that a stage reads through a pointer is cached and its pointer rewritten
        # first (DVC commits changed data sources), so the lock and the pointer agree.
        saved = save_pointer_deps(project, [pipeline.stages[n] for n in names if not pipeline.stages[n].frozen],
                                  pointers=index.pointers)
        if not targets:
            # Entries of stages removed from (or renamed in) pipeline.yaml would keep their outs alive.
            for stale in sorted(set(pipeline.lock.stages) - set(pipeline.stages)):
                writer.update(stale, None)
        chosen = set(names)
        upstream = {n: [u for u in pipeline.graph.upstream[n] if u in chosen] for n in names}
        # --no-checkout: only the outs no selected stage reads stay on the remote.
        read = {u for ups in upstream.values() for u in ups}
        remote_only = frozenset() if options.checkout else frozenset(chosen - read)
        with contextlib.ExitStack() as owned:
            if executor is None:
                selected = [pipeline.stages[n] for n in names]
                executor = owned.enter_context(open_executor(
                    project, kind, selected, jobs=jobs, scheduler=options.scheduler, checkout=options.checkout,
                    remote_only=remote_only,
                ))
            life = StageLife(
                project, pipeline, executor, listener, writer, log=jobs > 1, force=options.force,
                force_downstream=options.force_downstream, run_cache=options.run_cache, puller=puller,
                remote_only=remote_only,
            )
            result = _schedule(upstream, life, executor, jobs=jobs, keep_going=options.keep_going)
        if any(isinstance(e, PipeInterrupted) for e in result.failed.values()):
            raise PipeInterrupted("interrupted: finished stages were kept", hint="run 'pipe repro' again")
        return ReproResult(tuple(_outcome(n, result, life.failures) for n in names), tuple(saved))


def _schedule(
    upstream: Mapping[str, Sequence[str]], life: StageLife, executor: Executor, *, jobs: int, keep_going: bool
) -> ScheduleResult[StageOutcome]:
    """Run each stage's life as soon as its upstream stages are done; a stop signal cancels the executor.

    Raises:
        PipeInterrupted: Ctrl-C, SIGTERM or SIGHUP (exit code 128 + signal).
    """
    on_error = OnError.KEEP_GOING if keep_going else OnError.FAIL
    try:
        return schedule(upstream, life.run, jobs=jobs, on_error=on_error, on_stop=executor.cancel)
    except KeyboardInterrupt as exc:
        error = PipeInterrupted(
            "interrupted: stopped the running stages; finished stages were kept",
            hint="run 'pipe repro' again to continue",
        )
        error.exit_code = signals.exit_code(exc)
        raise error from None


def _end_leftovers(project: Project, listener: ReproListener, *, wait: bool) -> None:
    """Stop (or wait for) stage commands that an earlier, killed pipe left running.

    Such a command still writes its outs: running its stage again alongside it would record
    interleaved output, and a stage that does not run may read outs it is still writing.
    """
    leftovers = find_leftovers(running_dir(project.control_dir))
    for left in leftovers:
        listener.leftover(left.name, left.pid, wait=wait)
    end_leftovers(leftovers, wait=wait)


def _outcome(name: str, result: ScheduleResult[StageOutcome], failures: Mapping[str, StageOutcome]) -> StageOutcome:
    if name in result.done:
        return result.done[name]
    if name in result.failed:
        return failures.get(name) or _failed(name, result.failed[name])
    return StageOutcome(name, Outcome.SKIPPED)


def _puller(index: ProjectIndex, stages: Sequence[StageSpec]) -> Puller:
    """Open the default remote for --pull and bring missing pointer-tracked deps first."""
    from pipeline_engine.ops.repro_pull import Puller

    puller = Puller(index)
    puller.pull_deps(stages)
    return puller


def _failed(name: str, exc: BaseException) -> StageOutcome:
    if isinstance(exc, PipeError):
        return StageOutcome(name, Outcome.FAILED, error=exc)
    raise exc
