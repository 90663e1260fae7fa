"""`pipe exp run --run-all [-j N]`: run the queued experiments, N at once, each in its own worktree.

They share the object store and the run cache, so a stage one experiment ran is restored, not
rerun, by the next with the same inputs. With N > 1 the first queued experiment runs alone
before the others start: two experiments that start together would both compute the stages they
share (the run cache only knows a stage once it finished), and experiments of a sweep usually
share every stage upstream of the swept params. A failed experiment is recorded as failed and the
others go on. Ctrl-C stops the running experiments and leaves them, and the rest, queued.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Sequence

from pipeline_engine.core import signals
from pipeline_engine.errors import PipeInterrupted
from pipeline_engine.ops.exp.records import ExpEntry, ExpState, entries, save_entry
from pipeline_engine.ops.exp.run import DEFAULT_REPRO, ExecutorSet, ExpResult, run_entry
from pipeline_engine.ops.repro import ReproListener, ReproOptions
from pipeline_engine.project import Project

__all__ = ["run_all"]

_POLL = 0.1


def run_all(project: Project, *, jobs: int = 1, options: ReproOptions = DEFAULT_REPRO,
            listener: ReproListener | None = None) -> list[ExpResult]:
    """Run every queued experiment (oldest first), `jobs` at once; their results in queue order.

    `listener` hears the stages of experiments run one at a time (jobs 1) only; with several at
    once each writes its log (`pipe queue logs NAME`).

    Raises:
        PipeInterrupted: Ctrl-C, SIGTERM or SIGHUP; unfinished experiments stay queued.
    """
    queued = entries(project, states=(ExpState.QUEUED,))
    if jobs <= 1 or len(queued) <= 1:
        return [run_entry(project, e, options, listener) for e in queued]
    results = [run_entry(project, queued[0], options, None)]
    executors = ExecutorSet()
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool, signals.deferred() as received:
        futures = [pool.submit(run_entry, project, e, options, None, executors=executors) for e in queued[1:]]
        pending = set(futures)
        while pending:
            _, pending = cf.wait(pending, timeout=_POLL)
            signum = received()
            if signum is not None:
                for f in futures:
                    f.cancel()
                executors.cancel_all()
                cf.wait(pending)
                _requeue(project, queued[1:], futures)
                error = PipeInterrupted("interrupted: stopped the running experiments; they stay queued",
                                        hint="run 'pipe exp run --run-all' again")
                error.exit_code = 128 + signum
                raise error
    for f in futures:
        try:
            results.append(f.result())
        except PipeInterrupted:
            continue
    return results


def _requeue(project: Project, started: Sequence[ExpEntry], futures: Sequence[cf.Future[ExpResult]]) -> None:
    """Experiments stopped by the interrupt (they ended as failed) go back to the queue."""
    for entry, future in zip(started, futures, strict=True):
        if future.cancelled() or future.exception() is not None:
            continue
        if future.result().state is ExpState.FAILED:
            save_entry(project, entry)
