"""Running queued experiments: `pipe exp run` (the experiments it just queued, one at a time) and
`pipe exp run --run-all [-j N]` (every queued one, N at once, each in its own worktree).

They share the object store and the run cache, so a stage one experiment ran is restored, not
rerun, by the next with the same inputs. With N > 1 the first experiment runs alone before the
others start: two experiments that start together would both compute the stages they share (the
run cache only knows a stage once it finished), and experiments of a sweep usually share every
stage upstream of the swept params. A failed experiment is recorded as failed and the others go
on. Every experiment runs in a worker thread while the main thread watches for stop signals and
for `pipe queue kill` requests: Ctrl-C stops the running experiments and leaves them, and the
rest, queued; a kill stops one experiment, which is recorded as failed.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
from collections.abc import Callable, Sequence

from pipeline_engine.core import signals
from pipeline_engine.errors import PipeError, PipeInterrupted
from pipeline_engine.ops.exp.apply import apply
from pipeline_engine.ops.exp.records import (
    ExpEntry,
    ExpState,
    clear_kill,
    entries,
    kill_requests,
    queue_ref,
    remove_entry,
    save_entry,
)
from pipeline_engine.ops.exp.run import (
    DEFAULT_OPTIONS,
    DEFAULT_REPRO,
    ExecutorSet,
    ExpResult,
    ExpRunOptions,
    queue,
    run_entry,
)
from pipeline_engine.ops.exp.worktree import git_root
from pipeline_engine.ops.repro import ReproListener, ReproOptions
from pipeline_engine.pipeline.overrides import Sweep
from pipeline_engine.project import Project
from pipeline_engine.scm.exps import set_plain_ref

__all__ = ["run", "run_all", "run_entries"]

_POLL = 0.1


def run(project: Project, targets: Sequence[str], sweeps: Sequence[Sweep],
        options: ExpRunOptions = DEFAULT_OPTIONS, listener: ReproListener | None = None) -> list[ExpResult]:
    """Queue one experiment per combination of `sweeps`, then (unless `options.queue`) run them in turn.

    Raises:
        as `run.queue`; PipeInterrupted: Ctrl-C (the running experiment and those after it are dropped,
            the workspace is as it was).
    """
    queued = queue(project, targets, sweeps, options)
    if options.queue:
        return [ExpResult(e.name, e.baseline, ExpState.QUEUED, e.overrides) for e in queued]
    try:
        results = run_entries(project, queued, jobs=1, options=options.repro, listener=listener, force=options.force)
    except PipeInterrupted as err:
        # The user ran these, not queued them: the ones stopped or not started are dropped.
        pending = {e.key for e in entries(project, states=(ExpState.QUEUED,))}
        for entry in queued:
            if entry.key in pending:
                remove_entry(project, entry)
                set_plain_ref(git_root(project), queue_ref(entry), None)
        stopped = PipeInterrupted("interrupted: stopped the experiment(s) not finished; the workspace is as it was",
                                  hint="run 'pipe exp run' again, or queue them with 'pipe exp run --queue'")
        stopped.exit_code = err.exit_code
        raise stopped from err
    if options.apply and len(results) == 1 and results[0].state is ExpState.SUCCESS:
        done = results[0]
        try:
            saved = apply(project, done.ref, started_from=queued[0].snapshot).saved
        except PipeError as exc:
            raise PipeError(
                f"experiment '{done.name}' is recorded ({done.ref}), but applying it to the workspace "
                f"stopped: {exc}",
                hint=f"keep your version, or replace it with the experiment's: 'pipe exp apply {done.name}'",
            ) from exc
        results = [dataclasses.replace(done, saved=saved)]
    return results


def run_all(project: Project, *, jobs: int = 1, options: ReproOptions = DEFAULT_REPRO,
            listener: ReproListener | None = None) -> list[ExpResult]:
    """Run every queued experiment (oldest first), `jobs` at once; their results in queue order.

    Raises:
        PipeInterrupted: Ctrl-C, SIGTERM or SIGHUP; unfinished experiments stay queued.
    """
    return run_entries(project, entries(project, states=(ExpState.QUEUED,)), jobs=jobs, options=options,
                       listener=listener)


def run_entries(project: Project, queued: Sequence[ExpEntry], *, jobs: int = 1,
                options: ReproOptions = DEFAULT_REPRO, listener: ReproListener | None = None,
                force: bool = False) -> list[ExpResult]:
    """Run `queued`, `jobs` at once (the first alone when `jobs` > 1); `listener` hears stages when `jobs` is 1.

    Raises:
        PipeInterrupted: a stop signal; the experiments stopped and those not started stay queued.
    """
    if not queued:
        return []
    executors = ExecutorSet()
    heard = listener if jobs == 1 else None
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool, signals.deferred() as received:

        def submit(entry: ExpEntry) -> cf.Future[ExpResult]:
            return pool.submit(run_entry, project, entry, options, heard, force=force, executors=executors)

        waves = [queued[:1], queued[1:]] if jobs > 1 else [queued]
        futures: list[cf.Future[ExpResult]] = []
        for wave in waves:
            started = [submit(e) for e in wave]
            futures += started
            _watch(project, started, executors, received)
    results = []
    for entry, future in zip(queued, futures, strict=True):
        try:
            results.append(future.result())
        except PipeInterrupted:
            save_entry(project, entry)
    return results


def _watch(project: Project, futures: Sequence[cf.Future[ExpResult]], executors: ExecutorSet,
           received: Callable[[], int | None]) -> None:
    """Wait for `futures`, passing on kill requests; on a stop signal cancel everything and raise.

    Raises:
        PipeInterrupted: a stop signal arrived (exit code 128 + its number).
    """
    pending = set(futures)
    while pending:
        _, pending = cf.wait(pending, timeout=_POLL)
        for key in kill_requests(project):
            if executors.kill(key):
                clear_kill(project, key)
        signum = received()
        if signum is None:
            continue
        for f in futures:
            f.cancel()
        executors.cancel_all()
        cf.wait(pending)
        error = PipeInterrupted("interrupted: stopped the running experiments; they stay queued",
                                hint="run 'pipe exp run --run-all' to run them")
        error.exit_code = 128 + signum
        raise error
