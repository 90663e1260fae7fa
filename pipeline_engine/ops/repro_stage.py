"""One stage's life in `pipe repro`: decide, restore, run (through an executor), record.

```
  decide ──> unchanged / frozen: done
    │ runs
  restore ─> its last outs, or the run cache's outs for these inputs: record the lock entry, done
    │ nothing to restore
  run ─────> clear the outs, submit a StageJob to the executor, wait for its JobResult
    │ exit 0
  record ──> hash and cache the outs (or take the executor's records), run-cache entry, lock entry
```
Every step but "run" happens in the `pipe` process: an executor (`runner/executor.py`) only runs
the prepared command, and never writes pipeline.lock or the run cache.
"""

from __future__ import annotations

import enum
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipeline_engine.core.fsutil import make_parents, remove_path, temp_name
from pipeline_engine.core.layout import logs_dir, running_dir
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import MissingOutputError, PathError, PipeError, PipeInterrupted, StageFailedError
from pipeline_engine.index import runcache
from pipeline_engine.index.outs import measure, restore_outs, save_outs
from pipeline_engine.index.pipeline import Pipeline
from pipeline_engine.ops.repro_outs import forget_cleared, mark_cleared, set_aside_losses
from pipeline_engine.pipeline.lock import LockWriter, StageLock
from pipeline_engine.pipeline.plan import Decision, Reason, ReasonKind, StageState, decide
from pipeline_engine.pipeline.spec import StageSpec
from pipeline_engine.project import Project
from pipeline_engine.runner.executor import Executor, JobResult, StageJob

if TYPE_CHECKING:
    from pipeline_engine.ops.repro_pull import Puller

__all__ = ["Decided", "Outcome", "ReproListener", "StageLife", "StageOutcome"]


class Outcome(enum.Enum):
    """What happened to one stage."""

    RAN = "ran"
    RESTORED = "restored"
    UNCHANGED = "unchanged"
    FROZEN = "frozen"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """One stage's result: outcome, the reasons it ran, how long it took, its log file."""

    stage: str
    outcome: Outcome
    reasons: tuple[Reason, ...] = ()
    seconds: float = 0.0
    log_path: Path | None = None
    error: PipeError | None = None


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


@dataclass(frozen=True, slots=True)
class Decided:
    """The decide step's result: the stage, its lock entry, what its paths are now, and the decision."""

    stage: StageSpec
    old: StageLock | None
    state: StageState
    decision: Decision


# Reasons that ask for the command itself to run, so cached outs must not stand in for it.
_FORCING = frozenset({
    ReasonKind.FORCED, ReasonKind.UPSTREAM_CHANGED, ReasonKind.ALWAYS_CHANGED, ReasonKind.NO_DEPS_NO_OUTS,
})


@dataclass
class StageLife:
    """The scheduler's work function (`run`): one stage's decide, restore, run and record steps.

    `log`: each running stage's output goes to `.pipe/tmp/logs/<stage>.log` (and, line by
    line, to the listener) instead of straight to the terminal; set when stages run in parallel.
    `remote_only`: stages whose outs, hashed and stored by a remote executor, stay on the remote
    (`pipe repro --no-checkout`): recorded in the lock, neither fetched nor checked out.
    """

    project: Project
    pipeline: Pipeline
    executor: Executor
    listener: ReproListener
    writer: LockWriter
    log: bool = False
    force: bool = False
    force_downstream: bool = False
    run_cache: bool = True
    puller: Puller | None = None
    remote_only: frozenset[str] = frozenset()
    ran: set[str] = field(default_factory=set)
    failures: dict[str, StageOutcome] = field(default_factory=dict)

    def run(self, name: str) -> StageOutcome:
        """Bring stage `name` up to date; its upstream stages are done.

        Raises:
            PipeError: the stage failed (StageFailedError, MissingOutputError, PathError, ...);
                its outcome is in `failures`. PipeInterrupted: its command was stopped.
        """
        started = time.monotonic()
        d = self.decide(name)
        if d.decision.frozen:
            self._check_frozen(d.stage, d.old)
            return StageOutcome(name, Outcome.FROZEN)
        if not d.decision.runs:
            return StageOutcome(name, Outcome.UNCHANGED)
        log_path = self._log_path(name) if self.log else None
        try:
            for line in set_aside_losses(self.project, d.stage, d.old, d.state.outs):
                self.listener.output(name, line + "\n")
            if self.restore(d):
                outcome = Outcome.RESTORED
            else:
                self.record(d, self.execute(d))
                outcome = Outcome.RAN
        except PipeError as exc:
            failed = StageOutcome(name, Outcome.FAILED, d.decision.reasons, time.monotonic() - started, log_path, exc)
            self.failures[name] = failed
            self.listener.finished(failed)
            raise
        self.ran.add(name)
        forget_cleared(self.project, name)
        done = StageOutcome(name, outcome, d.decision.reasons, time.monotonic() - started,
                            log_path if outcome is Outcome.RAN else None)
        self.listener.finished(done)
        return done

    def decide(self, name: str) -> Decided:
        """Measure the stage's deps, params and outs now, and decide whether it runs (`plan.decide`)."""
        stage = self.pipeline.stages[name]
        old = self.pipeline.lock.stages.get(name)
        state = measure(self.project, stage, old)
        ups: Sequence[str] = ()
        if self.force_downstream:
            ups = sorted(u for u in self.pipeline.graph.upstream[name] if u in self.ran)
        return Decided(stage, old, state, decide(stage, old, state, force=self.force, upstream=ups))

    def restore(self, d: Decided) -> bool:
        """Check out the outs of the last run, or of the run cache's entry for these inputs; True if done.

        Restored from the run cache, the stage's lock entry is written too.
        """
        stage, old = d.stage, d.old
        forced = any(r.kind in _FORCING for r in d.decision.reasons)
        if not self.run_cache or not runcache.is_cacheable(stage) or forced:
            return False
        copies = frozenset(o.path for o in stage.outs if not o.cache)
        if old is not None and d.decision.is_restorable:
            recorded = tuple(r for r in old.outs if r.path in {o.path for o in stage.outs})
            if self.puller is not None:
                self.puller.fetch(recorded)
            if restore_outs(self.project, recorded, copies):
                return True
        key = runcache.run_key(stage, d.state)
        records = runcache.lookup(self.project, key) if key else None
        if records is None and key and self.puller is not None:
            records = self.puller.fetch_run(key)
        if records is None or sorted(r.path for r in records) != sorted(o.path for o in stage.outs):
            return False
        if self.puller is not None:
            self.puller.fetch(records)
        if not restore_outs(self.project, records, copies):
            return False
        self.writer.update(stage.name, _entry(stage, d.state, records))
        return True

    def execute(self, d: Decided) -> JobResult:
        """The run step: clear the outs, run the stage's command through the executor, check how it ended.

        Raises:
            PathError: a dep does not exist. StageFailedError: the command failed (or could not start).
            PipeInterrupted: the command was stopped (Ctrl-C).
        """
        stage = d.stage
        missing = [p for p, r in d.state.deps.items() if r is None]
        if missing:
            raise PathError(
                f"stage '{stage.name}': dep '{missing[0]}' does not exist", hint=self._missing_dep_hint(missing[0])
            )
        mark_cleared(self.project, stage)  # what is there after this is this stage's output
        self._clear_outs(stage)
        job = self._job(d)
        self.listener.started(stage.name, d.decision.reasons, job.log_path)
        result = self.executor.submit(job, _StageEvents(self.listener, stage.name)).result()
        if result.interrupted:
            raise PipeInterrupted(f"stage '{stage.name}' was interrupted")
        if result.returncode != 0:
            log_path = result.log_path or job.log_path
            shown = f"; its output is in '{log_path.relative_to(self.project.root)}'" if log_path else ""
            which = "its command" if isinstance(stage.cmd, str) else f"its command '{result.command}'"
            raise StageFailedError(
                f"stage '{stage.name}' failed: {which} exited with code {result.returncode}{shown}",
                returncode=result.returncode,
                hint=f"fix the command, then run 'pipe repro {stage.name}'",
            )
        return result

    def record(self, d: Decided, result: JobResult) -> StageLock:
        """Cache the outs (or place the executor's), then write the run-cache entry and the lock entry.

        Raises:
            MissingOutputError: an out was not produced (or its object is not in the store).
        """
        stage = d.stage
        if result.outs is None:
            records = save_outs(self.project, stage, keep_uncached=runcache.is_cacheable(stage))
        else:
            records = self._place(stage, result.outs, checkout=stage.name not in self.remote_only)
        entry = _entry(stage, d.state, records)
        # Recorded even under --no-run-cache: that flag only stops restoring. And recorded before
        # the lock entry: a pipe killed between the two leaves a stage the rerun restores from this
        # entry (and then records), where the other order would lose the run-cache entry for good.
        if runcache.is_cacheable(stage):
            key = runcache.run_key(stage, d.state)
            if key:
                runcache.store_run(self.project, key, entry)
        self.writer.update(stage.name, entry)
        return entry

    def _job(self, d: Decided) -> StageJob:
        stage = d.stage
        env = {"PIPE_ROOT": str(self.project.root), "PIPE_STAGE": stage.name}
        # The declared env variables as the decision saw them, for an executor on another machine.
        env.update({k: v for k, v in d.state.env.items() if v is not None})
        return StageJob(
            name=stage.name, cmd=stage.cmd, root=self.project.root, wdir=stage.wdir, env=env,
            log_path=self._log_path(stage.name) if self.log else None,
            record_dir=running_dir(self.project.control_dir),
            deps=tuple(r for r in d.state.deps.values() if r is not None),
            outs=tuple(o.path for o in stage.outs),
            resources=dict(stage.resources),
        )

    def _place(self, stage: StageSpec, outs: tuple[PathRecord, ...], *, checkout: bool = True) -> tuple[PathRecord, ...]:
        """Check out (unless not `checkout`) the outs an executor hashed and stored, git-ignoring the cached ones."""
        by_path = {r.path: r for r in outs}
        for out in stage.outs:
            if out.path not in by_path:
                raise MissingOutputError(
                    f"stage '{stage.name}' did not create its out '{out.path}'",
                    hint="make the command write it, or remove it from the stage's outs",
                )
        records = tuple(by_path[o.path] for o in stage.outs)
        copies = frozenset(o.path for o in stage.outs if not o.cache)
        if checkout and not restore_outs(self.project, records, copies):
            raise MissingOutputError(
                f"stage '{stage.name}': the executor returned outs whose objects are not in the cache",
                hint=f"run 'pipe repro {stage.name}' again",
            )
        git = self.project.git
        if git is not None:
            for out in stage.outs:
                if out.cache:
                    git.ignore(self.project.relpath_from_git(out.path))
        return records

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

    def _missing_dep_hint(self, dep: str) -> str:
        """`pipe pull` for a dep a pointer tracks (it, or a directory holding it); else how to make one."""
        parts = dep.split("/")
        for i in range(len(parts), 0, -1):
            tracked = "/".join(parts[:i])
            if (self.project.root / f"{tracked}.pipe").is_file():
                return f"it is tracked by '{tracked}.pipe': run 'pipe pull {tracked}' (or 'pipe checkout {tracked}')"
        return "create it, or add a stage whose outs include it"

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
            make_parents(path)

    def _log_path(self, name: str) -> Path:
        return logs_dir(self.project.control_dir) / f"{name}.log"


@dataclass(frozen=True, slots=True)
class _StageEvents:
    """A job's live events, passed on to the repro listener with the stage's name."""

    listener: ReproListener
    stage: str

    def command(self, cmd: str) -> None:
        self.listener.command(self.stage, cmd)

    def output(self, line: str) -> None:
        self.listener.output(self.stage, line)


def _entry(stage: StageSpec, state: StageState, outs: tuple[PathRecord, ...]) -> StageLock:
    deps = tuple(r for r in state.deps.values() if r is not None)
    return StageLock(stage.cmd, deps, state.params, state.env, outs)


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
