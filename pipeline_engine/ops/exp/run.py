"""`pipe exp run`: run the pipeline with param overrides in a private worktree and record the result
as a commit under `refs/exps/`, one experiment per combination of the `-S` sweeps; or queue them.

An experiment's life: the workspace is snapshotted into a commit (child of HEAD, made in a scratch
index) and an entry is saved (`records.py`); to run, a detached worktree of the snapshot gets the
overrides and a local config that points its cache at the main project's store (`worktree.py`);
pointer-tracked data is checked out from the store, `ops.repro.repro` runs there (stages the run
cache knows are restored, not rerun), and the worktree's files are committed as a child of the
baseline and the ref set with `update-ref` against its old value. A failure leaves the entry as
failed, with its log. The user's workspace, index and branches are never touched by the run; a single
experiment run in the foreground is applied to the workspace afterwards unless `--temp`, as DVC's
`exp run` leaves its result there (`ExpRunOptions.apply`, `ops.exp.apply`).
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline_engine.errors import PipeError, PipeInterrupted, ScmError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.ops.checkout import checkout
from pipeline_engine.ops.exp.records import (
    ExpEntry,
    ExpState,
    claim,
    entries,
    exps_dir,
    log_path,
    new_name,
    now,
    queue_ref,
    release,
    remove_entry,
    save_entry,
    start_guard,
)
from pipeline_engine.ops.exp.worktree import apply_to_files, git_root, open_worktree, private_paths
from pipeline_engine.ops.repro import ReproListener, ReproOptions, ReproResult, StageOutcome, repro
from pipeline_engine.ops.repro_dask import executor_kind, open_executor, stage_slots
from pipeline_engine.pipeline.overrides import Override, Sweep, combinations
from pipeline_engine.pipeline.plan import Reason
from pipeline_engine.project import Project
from pipeline_engine.runner.executor import Executor, LocalExecutor
from pipeline_engine.scm.exps import (
    ExpRef,
    commit_all,
    is_valid_name,
    list_exp_refs,
    rev_parse,
    set_plain_ref,
    set_ref,
    snapshot_workspace,
)

DEFAULT_REPRO = ReproOptions()

__all__ = ["DEFAULT_OPTIONS", "DEFAULT_REPRO", "ExecutorSet", "ExpResult", "ExpRunOptions", "LogListener", "choose_names",
           "queue", "run_entry"]


@dataclass(frozen=True, slots=True)
class ExpRunOptions:
    """The flags of `pipe exp run` besides targets and `-S`."""

    name: str | None = None
    force: bool = False
    queue: bool = False
    repro: ReproOptions = DEFAULT_REPRO
    # As DVC's `exp run` without `--temp`: a single experiment that succeeds is applied to the
    # workspace (`ops.exp.apply`); it still runs in its own worktree, so a failed or interrupted
    # one leaves the workspace as it was.
    apply: bool = False


DEFAULT_OPTIONS = ExpRunOptions()


@dataclass(frozen=True, slots=True)
class ExpResult:
    """One experiment's outcome: `rev` is its commit (SUCCESS), `error` why it failed (FAILED)."""

    name: str
    baseline: str
    state: ExpState
    overrides: tuple[Override, ...] = ()
    rev: str | None = None
    error: PipeError | None = None
    stages: tuple[StageOutcome, ...] = ()
    # Applied to the workspace (`pipe exp run` without --temp): the commit holding the workspace's
    # changes it replaced (refs/exps/apply/stash), if there were any.
    saved: str | None = None

    @property
    def ref(self) -> str:
        """The experiment's ref name."""
        return ExpRef(self.baseline, self.name).ref


def queue(project: Project, targets: Sequence[str], sweeps: Sequence[Sweep],
          options: ExpRunOptions = DEFAULT_OPTIONS) -> list[ExpEntry]:
    """Snapshot the workspace and save one queued entry per combination of `sweeps`; nothing runs.

    Raises:
        ScmError: no git, no commit yet, or git failed.
        SpecError: an override names a missing file or key; a sweep is malformed.
        PipeError: a name is taken (and not `force`) or invalid.
    """
    root = git_root(project)
    baseline = rev_parse(root, "HEAD")
    if baseline is None:
        raise ScmError("experiments need a baseline commit, and this repository has none",
                       hint="commit your pipeline first: git add . && git commit")
    combos = combinations(sweeps)
    apply_to_files(project.root, combos[0], write=False)  # every file and key exists: nothing queued otherwise
    names = choose_names(project, baseline, options.name, len(combos), force=options.force)
    index_file = exps_dir(project) / f"index-{secrets.token_hex(4)}"
    index_file.parent.mkdir(parents=True, exist_ok=True)
    snapshot = snapshot_workspace(root, parent=baseline, index_file=index_file, exclude=private_paths(project))
    queued = []
    for name, combo in zip(names, combos, strict=True):
        entry = ExpEntry(name, baseline, snapshot, combo, tuple(targets), ExpState.QUEUED, now())
        set_plain_ref(root, queue_ref(entry), snapshot)
        save_entry(project, entry)
        queued.append(entry)
    return queued


def run_entry(project: Project, entry: ExpEntry, options: ReproOptions = DEFAULT_REPRO,
              listener: ReproListener | None = None, *, force: bool = False,
              executors: ExecutorSet | None = None) -> ExpResult:
    """Run one queued experiment in its own worktree and record it; a PipeError records it as failed.

    `executors` holds the running experiment's executor under its key, so the thread watching
    for signals and kill requests can stop it.

    Raises:
        PipeInterrupted: a stop signal (here, or `executors` stopping); the entry is queued again.
    """
    if not claim(project, entry):  # another pipe process runs it
        return ExpResult(entry.name, entry.baseline, ExpState.RUNNING, entry.overrides)
    try:
        return _run_claimed(project, entry, options, listener, force=force, executors=executors)
    finally:
        release(project, entry)


def _run_claimed(project: Project, entry: ExpEntry, options: ReproOptions, listener: ReproListener | None, *,
                 force: bool, executors: ExecutorSet | None) -> ExpResult:
    running = dataclasses.replace(entry, state=ExpState.RUNNING)
    with start_guard(project, f"pipe exp run ({entry.name})"):  # never while gc decides what is unused
        save_entry(project, running)
    path = log_path(project, entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as log_file:
        log = LogListener(log_file, listener)

        def started(executor: Executor) -> None:
            if executors is not None:
                executors.add(entry.key, executor)

        try:
            rev, result = _run_in_worktree(project, entry, options, log, started)
            _record(project, entry, rev, force=force)
        except PipeError as exc:
            killed = executors is not None and executors.was_killed(entry.key)
            if not killed and (isinstance(exc, PipeInterrupted) or (executors is not None and executors.stopping)):
                save_entry(project, entry)
                raise PipeInterrupted(f"experiment '{entry.name}' interrupted; it stays queued") from exc
            if killed:
                exc = PipeError(f"experiment '{entry.name}' was killed ('pipe queue kill')")
            log.line(f"error: {exc}")
            save_entry(project, dataclasses.replace(entry, state=ExpState.FAILED, error=str(exc)))
            return ExpResult(entry.name, entry.baseline, ExpState.FAILED, entry.overrides, error=exc)
        finally:
            if executors is not None:
                executors.discard(entry.key)
    remove_entry(project, entry)
    set_plain_ref(git_root(project), queue_ref(entry), None)
    return ExpResult(entry.name, entry.baseline, ExpState.SUCCESS, entry.overrides, rev, stages=result.stages)


def _run_in_worktree(project: Project, entry: ExpEntry, options: ReproOptions, log: LogListener,
                     started: Callable[[Executor], None]) -> tuple[str, ReproResult]:
    with open_worktree(project, entry.snapshot, entry.name, entry.overrides) as wt:
        try:  # data added with `pipe add`; stage outs are restored by repro itself
            checkout(wt)
        except PipeInterrupted:
            raise
        except PipeError as exc:
            log.line(f"checkout: {exc}")
        with _open_executor(wt, options) as executor:
            started(executor)
            result = repro(wt, entry.targets, options, log, executor)
        result.raise_for_failure()
        assert wt.git is not None
        rev = commit_all(wt.git.root, parent=entry.baseline, message=f"pipe exp: {entry.name}",
                         exclude=private_paths(wt))
    return rev, result


def _open_executor(wt: Project, options: ReproOptions) -> Executor:
    """The executor of one experiment, opened in its worktree: local processes, or Dask (`--executor dask`).

    Opened here, not by `repro`, so the thread watching for Ctrl-C and `pipe queue kill` can cancel
    it. The Dask exchange ships deps from the worktree (where the overrides are), through the shared
    store and the project's remote; give `--scheduler` for a sweep, or each experiment starts its own
    local cluster.
    """
    kind = executor_kind(wt, options.executor)
    jobs = stage_slots(wt, kind, options.scheduler, options.jobs)
    if kind == "local":
        return LocalExecutor(jobs)
    return open_executor(wt, kind, list(ProjectIndex(wt).spec.stages.values()), jobs=jobs,
                         scheduler=options.scheduler)


def _record(project: Project, entry: ExpEntry, rev: str, *, force: bool) -> None:
    root = git_root(project)
    ref = ExpRef(entry.baseline, entry.name)
    old = rev_parse(root, ref.ref)
    if old is not None and not force:
        raise PipeError(f"experiment '{entry.name}' was recorded by another run meanwhile",
                        hint=f"rerun it with another name, or with -f to replace '{entry.name}'")
    set_ref(root, ref, rev, old=old)


def choose_names(project: Project, baseline: str, name: str | None, count: int, *, force: bool) -> list[str]:
    """The experiments' names: `name` (`name-1`, `name-2`, ... for a sweep) or generated ones.

    A name held by a queued or running experiment of the baseline is refused; one held by a
    recorded experiment only without `force`; a failed one's entry is simply replaced.
    """
    refs = {r.name for r, _, _ in list_exp_refs(git_root(project), baseline, commits_only=False)}
    pending = {e.name for e in entries(project, states=(ExpState.QUEUED, ExpState.RUNNING))
               if e.baseline == baseline}
    if name is None:
        names: list[str] = []
        for _ in range(count):
            names.append(new_name(refs | pending | set(names)))
        return names
    names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
    for n in names:
        if not is_valid_name(n):
            raise PipeError(f"'{n}' is not a valid experiment name",
                            hint="use letters, digits and '._+=-', starting with a letter or digit")
        if n in pending or (n in refs and not force):
            raise PipeError(f"experiment '{n}' already exists for baseline {baseline[:7]}",
                            hint="choose another name with -n, or replace it with -f")
    return names


class ExecutorSet:
    """The executors of the experiments running now, by entry key (threads add and remove theirs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Executor] = {}
        self._killed: set[str] = set()
        self.stopping = False

    def add(self, key: str, executor: Executor) -> None:
        """Register a running experiment's executor."""
        with self._lock:
            self._items[key] = executor

    def discard(self, key: str) -> None:
        """Forget it (its experiment ended)."""
        with self._lock:
            self._items.pop(key, None)

    def kill(self, key: str) -> bool:
        """Stop one experiment's commands; False when it is not running here."""
        with self._lock:
            executor = self._items.get(key)
            if executor is not None:
                self._killed.add(key)
        if executor is not None:
            executor.cancel()
        return executor is not None

    def was_killed(self, key: str) -> bool:
        """True when `kill(key)` stopped that experiment."""
        with self._lock:
            return key in self._killed

    def cancel_all(self) -> None:
        """Stop every running experiment's commands (a stop signal): they go back to the queue."""
        with self._lock:
            self.stopping = True
            items = list(self._items.values())
        for executor in items:
            executor.cancel()


class LogListener:
    """Writes an experiment's stage events and output to its log, and passes them on to `forward`."""

    def __init__(self, file: TextIO, forward: ReproListener | None) -> None:
        self._file = file
        self._forward = forward
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """Append one line to the log."""
        with self._lock:
            self._file.write(text.rstrip("\n") + "\n")
            self._file.flush()

    def started(self, stage: str, reasons: tuple[Reason, ...], log_path: Path | None) -> None:
        self.line(f"Running stage '{stage}' ({', '.join(r.describe() for r in reasons)})")
        if self._forward is not None:
            self._forward.started(stage, reasons, log_path)

    def command(self, stage: str, cmd: str) -> None:
        self.line(f"> {cmd}")
        if self._forward is not None:
            self._forward.command(stage, cmd)

    def output(self, stage: str, line: str) -> None:
        with self._lock:
            self._file.write(line)
        if self._forward is not None:
            self._forward.output(stage, line)

    def finished(self, outcome: StageOutcome) -> None:
        self.line(f"stage '{outcome.stage}': {outcome.outcome.value}"
                  + (f": {outcome.error}" if outcome.error is not None else ""))
        if self._forward is not None:
            self._forward.finished(outcome)

    def leftover(self, stage: str, pid: int, *, wait: bool) -> None:
        if self._forward is not None:
            self._forward.leftover(stage, pid, wait=wait)
