"""`pipe repro`: run the stages whose inputs changed, in parallel, caching outs and updating the lock.

Each stage is decided inside its scheduler job, after its upstream stages finished, so an
upstream stage that reran and produced identical outs does not make its dependents run
(early cutoff). A changed stage first tries the cached outs of its last run or the run cache.
"""

from __future__ import annotations

import enum
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipeline_engine.core import signals
from pipeline_engine.core.fsutil import remove_path, temp_name
from pipeline_engine.core.layout import logs_dir, running_dir
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import MissingOutputError, PathError, PipeError, PipeInterrupted, StageFailedError
from pipeline_engine.index import runcache
from pipeline_engine.index.outs import measure, restore_outs, save_outs, save_pointer_deps
from pipeline_engine.index.pipeline import Pipeline, load_pipeline
from pipeline_engine.pipeline.graph import select
from pipeline_engine.pipeline.lock import LockWriter, StageLock
from pipeline_engine.pipeline.plan import Decision, Reason, ReasonKind, StageState, decide
from pipeline_engine.pipeline.spec import StageSpec
from pipeline_engine.project import Project
from pipeline_engine.runner.process import end_leftovers, find_leftovers, run_command
from pipeline_engine.runner.scheduler import OnError, ScheduleResult, schedule

if TYPE_CHECKING:
    from pipeline_engine.ops.repro_pull import Puller

__all__ = ["Outcome", "ReproListener", "ReproOptions", "ReproResult", "StageOutcome", "repro"]


class Outcome(enum.Enum):
    """What happened to one stage."""

    RAN = "ran"
    RESTORED = "restored"
    UNCHANGED = "unchanged"
    FROZEN = "frozen"
    FAILED = "failed"
    SKIPPED = "skipped"


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


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """One stage's result: outcome, the reasons it ran, how long it took, its log file."""

    stage: str
    outcome: Outcome
    reasons: tuple[Reason, ...] = ()
    seconds: float = 0.0
    log_path: Path | None = None
    error: PipeError | None = None


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


class ReproListener(Protocol):
    """Told when a stage starts and finishes (the CLI prints these; calls come from worker threads)."""

    def started(self, stage: str, reasons: tuple[Reason, ...], log_path: Path | None) -> None:
        """The stage's command is about to run (or its outs to be restored)."""

    def command(self, stage: str, cmd: str) -> None:
        """This command of the stage is about to run (each item of a `cmd` list in turn)."""

    def output(self, stage: str, line: str) -> None:
        """A line (with its newline) the running stage wrote, while it runs (only when output is logged)."""

    def finished(self, outcome: StageOutcome) -> None:
        """The stage is done, whatever the outcome."""

    def leftover(self, stage: str, pid: int, *, wait: bool) -> None:
        """An earlier, killed pipe left this stage's command running: it is being stopped (or waited for)."""


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
    listener: ReproListener | None = None,
) -> ReproResult:
    """Bring the selected stages up to date.

    Raises:
        SpecError: pipeline.yaml, a params file or pipeline.lock is invalid.
        StageNotFoundError: a target names no stage.
        LockedError: another pipe process is changing the project.
        PipeInterrupted: Ctrl-C, SIGTERM or SIGHUP; finished stages keep their lock entries.
    """
    listener = listener or _Silent()
    with project.mutex("pipe repro " + " ".join(targets), wait=options.wait):
        _end_leftovers(project, listener, wait=options.wait)
        pipeline = load_pipeline(project)
        names = select(pipeline.graph, targets, downstream=options.downstream, single=options.single)
        jobs = options.jobs or project.config.jobs or os.cpu_count() or 1
        writer = LockWriter(project.root, pipeline.lock)
        puller = _puller(project, [pipeline.stages[n] for n in names]) if options.pull else None
        # Changed data that a stage reads through a pointer is cached and its pointer rewritten
        # first (DVC commits changed data sources), so the lock and the pointer agree.
        saved = save_pointer_deps(project, [pipeline.stages[n] for n in names if not pipeline.stages[n].frozen])
        if not targets:
            # Entries of stages removed from (or renamed in) pipeline.yaml would keep their outs alive.
            for stale in sorted(set(pipeline.lock.stages) - set(pipeline.stages)):
                writer.update(stale, None)
        runner = _StageRunner(project, pipeline, options, listener, jobs > 1, writer, puller)
        chosen = set(names)
        upstream = {n: [u for u in pipeline.graph.upstream[n] if u in chosen] for n in names}
        on_error = OnError.KEEP_GOING if options.keep_going else OnError.FAIL
        try:
            result = schedule(upstream, runner.run, jobs=jobs, on_error=on_error)
        except KeyboardInterrupt as exc:
            error = PipeInterrupted(
                "interrupted: stopped the running stages; finished stages were kept",
                hint="run 'pipe repro' again to continue",
            )
            error.exit_code = signals.exit_code(exc)
            raise error from None
        if any(isinstance(e, PipeInterrupted) for e in result.failed.values()):
            raise PipeInterrupted("interrupted: finished stages were kept", hint="run 'pipe repro' again")
        return ReproResult(tuple(_outcome(n, result, runner.failures) for n in names), tuple(saved))


def _end_leftovers(project: Project, listener: ReproListener, *, wait: bool) -> None:
    """Stop (or wait for) stage commands that an earlier, killed pipe left running.

    Such a command still writes its outs: running its stage again alongside it would record
    interleaved output, and a stage that does not run may read outs it is still writing.
    """
    leftovers = find_leftovers(_records_dir(project))
    for left in leftovers:
        listener.leftover(left.name, left.pid, wait=wait)
    end_leftovers(leftovers, wait=wait)


def _records_dir(project: Project) -> Path:
    """Where each running stage command leaves its record (`runner.process`)."""
    return running_dir(project.control_dir)


def _outcome(name: str, result: ScheduleResult[StageOutcome], failures: Mapping[str, StageOutcome]) -> StageOutcome:
    if name in result.done:
        return result.done[name]
    if name in result.failed:
        return failures.get(name) or _failed(name, result.failed[name])
    return StageOutcome(name, Outcome.SKIPPED)


def _puller(project: Project, stages: Sequence[StageSpec]) -> Puller:
    """Open the default remote for --pull and bring missing pointer-tracked deps first."""
    from pipeline_engine.ops.repro_pull import Puller

    puller = Puller(project)
    puller.pull_deps(stages)
    return puller


def _failed(name: str, exc: BaseException) -> StageOutcome:
    if isinstance(exc, PipeError):
        return StageOutcome(name, Outcome.FAILED, error=exc)
    raise exc


# Reasons that ask for the command itself to run, so cached outs must not stand in for it.
_FORCING = frozenset({
    ReasonKind.FORCED, ReasonKind.UPSTREAM_CHANGED, ReasonKind.ALWAYS_CHANGED, ReasonKind.NO_DEPS_NO_OUTS,
})


@dataclass
class _StageRunner:
    """The scheduler's work function: decide, restore or run, then record one stage."""

    project: Project
    pipeline: Pipeline
    options: ReproOptions
    listener: ReproListener
    log: bool
    writer: LockWriter
    puller: Puller | None = None
    ran: set[str] = field(default_factory=set)
    failures: dict[str, StageOutcome] = field(default_factory=dict)

    def run(self, name: str) -> StageOutcome:
        started = time.monotonic()
        stage = self.pipeline.stages[name]
        old = self.pipeline.lock.stages.get(name)
        state = measure(self.project, stage, old)
        ups: Sequence[str] = ()
        if self.options.force_downstream:
            ups = sorted(u for u in self.pipeline.graph.upstream[name] if u in self.ran)
        decision = decide(stage, old, state, force=self.options.force, upstream=ups)
        if decision.frozen:
            self._check_frozen(stage, old)
            return StageOutcome(name, Outcome.FROZEN)
        if not decision.runs:
            return StageOutcome(name, Outcome.UNCHANGED)
        log_path = self._log_path(name) if self.log else None
        try:
            outcome = self._restore(stage, old, state, decision) or self._execute(stage, old, state, decision)
        except PipeError as exc:
            failed = StageOutcome(name, Outcome.FAILED, decision.reasons, time.monotonic() - started, log_path, exc)
            self.failures[name] = failed
            self.listener.finished(failed)
            raise
        self.ran.add(name)
        done = StageOutcome(name, outcome, decision.reasons, time.monotonic() - started,
                            log_path if outcome is Outcome.RAN else None)
        self.listener.finished(done)
        return done

    def _check_frozen(self, stage: StageSpec, old: StageLock | None) -> None:
        missing = [o.path for o in stage.outs if not (self.project.root / o.path).exists()]
        recorded = tuple(r for r in old.outs if r.path in missing) if old else ()
        if missing and self.puller is not None:
            self.puller.fetch(recorded)
        copies = frozenset(o.path for o in stage.outs if not o.cache)
        if missing and not (old and restore_outs(self.project, recorded, copies)):
            raise MissingOutputError(
                f"stage '{stage.name}' is frozen but its out '{missing[0]}' is missing",
                hint=f"run 'pipe unfreeze {stage.name}' and 'pipe repro {stage.name}'",
            )

    def _restore(self, stage: StageSpec, old: StageLock | None, state: StageState, d: Decision) -> Outcome | None:
        forced = any(r.kind in _FORCING for r in d.reasons)
        if not self.options.run_cache or not runcache.is_cacheable(stage) or forced:
            return None
        copies = frozenset(o.path for o in stage.outs if not o.cache)
        if old is not None and d.is_restorable:
            recorded = tuple(r for r in old.outs if r.path in {o.path for o in stage.outs})
            if self.puller is not None:
                self.puller.fetch(recorded)
            if restore_outs(self.project, recorded, copies):
                return Outcome.RESTORED
        key = runcache.run_key(stage, state)
        records = runcache.lookup(self.project, key) if key else None
        if records is None and key and self.puller is not None:
            records = self.puller.fetch_run(key)
        if records is None or sorted(r.path for r in records) != sorted(o.path for o in stage.outs):
            return None
        if self.puller is not None:
            self.puller.fetch(records)
        if not restore_outs(self.project, records, copies):
            return None
        self._record(stage, state, records)
        return Outcome.RESTORED

    def _missing_dep_hint(self, dep: str) -> str:
        """`pipe pull` for a dep a pointer tracks (it, or a directory holding it); else how to make one."""
        parts = dep.split("/")
        for i in range(len(parts), 0, -1):
            tracked = "/".join(parts[:i])
            if (self.project.root / f"{tracked}.pipe").is_file():
                return f"it is tracked by '{tracked}.pipe': run 'pipe pull {tracked}' (or 'pipe checkout {tracked}')"
        return "create it, or add a stage whose outs include it"

    def _execute(self, stage: StageSpec, old: StageLock | None, state: StageState, d: Decision) -> Outcome:
        missing = [p for p, r in state.deps.items() if r is None]
        if missing:
            raise PathError(
                f"stage '{stage.name}': dep '{missing[0]}' does not exist", hint=self._missing_dep_hint(missing[0])
            )
        self._clear_outs(stage)
        log_path = self._log_path(stage.name) if self.log else None
        self.listener.started(stage.name, d.reasons, log_path)
        env = {**os.environ, "PIPE_ROOT": str(self.project.root), "PIPE_STAGE": stage.name}
        if log_path is not None:
            env.setdefault("PYTHONUNBUFFERED", "1")  # its lines are shown as they come, not when it ends
        current = [stage.cmd if isinstance(stage.cmd, str) else ""]

        def on_start(cmd: str) -> None:
            current[0] = cmd
            self.listener.command(stage.name, cmd)

        def on_output(line: str) -> None:
            self.listener.output(stage.name, line)

        result = run_command(stage.cmd, cwd=self.project.root / stage.wdir, env=env, log_path=log_path,
                             record_dir=_records_dir(self.project), name=stage.name,
                             on_start=on_start, on_output=on_output)
        if result.interrupted:
            raise PipeInterrupted(f"stage '{stage.name}' was interrupted")
        if result.returncode != 0:
            shown = f"; its output is in '{log_path.relative_to(self.project.root)}'" if log_path else ""
            which = "its command" if isinstance(stage.cmd, str) else f"its command '{current[0]}'"
            raise StageFailedError(
                f"stage '{stage.name}' failed: {which} exited with code {result.returncode}{shown}",
                returncode=result.returncode,
                hint=f"fix the command, then run 'pipe repro {stage.name}'",
            )
        records = save_outs(self.project, stage, keep_uncached=runcache.is_cacheable(stage))
        entry = self._entry(stage, state, records)
        # Recorded even under --no-run-cache: that flag only stops restoring. And recorded before
        # the lock entry: a pipe killed between the two leaves a stage the rerun restores from this
        # entry (and then records), where the other order would lose the run-cache entry for good.
        if runcache.is_cacheable(stage):
            key = runcache.run_key(stage, state)
            if key:
                runcache.store_run(self.project, key, entry)
        self.writer.update(stage.name, entry)
        return Outcome.RAN

    def _clear_outs(self, stage: StageSpec) -> None:
        # Every out is checked before any is deleted: a symlinked parent leading outside the
        # project refuses the stage with nothing removed.
        where = f"stage '{stage.name}'"
        paths = [(out, resolve_in_project(self.project.root, out.path, source=where)) for out in stage.outs]
        for out, path in paths:
            if out.persist:
                _unprotect(path, self.project.store.root)
                continue
            remove_path(path)
            path.parent.mkdir(parents=True, exist_ok=True)

    def _record(self, stage: StageSpec, state: StageState, outs: tuple[PathRecord, ...]) -> StageLock:
        entry = self._entry(stage, state, outs)
        self.writer.update(stage.name, entry)
        return entry

    @staticmethod
    def _entry(stage: StageSpec, state: StageState, outs: tuple[PathRecord, ...]) -> StageLock:
        deps = tuple(r for r in state.deps.values() if r is not None)
        return StageLock(stage.cmd, deps, state.params, state.env, outs)

    def _log_path(self, name: str) -> Path:
        return logs_dir(self.project.control_dir) / f"{name}.log"



def _unprotect(path: Path, store_root: Path) -> None:
    """Turn cache links (hardlinks, symlinks to read-only objects) under `path` into private copies.

    A persistent out is kept for the command to extend, which must not write into the cache. Only
    symlinks into the store are copied: a committed symlink to elsewhere (say, a key outside the
    project) must never have its target's bytes pulled into the workspace, and then the cache.
    """
    files = [path] if not path.is_dir() or path.is_symlink() else [p for p in path.rglob("*") if not p.is_dir()]
    cache = os.path.realpath(store_root) + os.sep
    for file in files:
        if file.is_symlink():
            if not os.path.realpath(file).startswith(cache):
                continue
        elif not (file.exists() and file.stat().st_nlink > 1):
            continue
        tmp = file.with_name(temp_name())
        shutil.copyfile(file, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, file)
