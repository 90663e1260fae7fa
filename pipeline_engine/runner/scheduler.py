"""Runs work over a DAG in up to `jobs` threads, each node as soon as everything it waits for is done.

```
    prepare ──> featurize ──> train ──> evaluate
       └──────> report
```
With `jobs=2`, `featurize` and `report` run at the same time once `prepare` is done. A node
whose work raised is failed; everything downstream of it is skipped. `OnError.FAIL` starts
nothing new after the first failure (running nodes finish); `OnError.KEEP_GOING` goes on with
nodes that do not depend on the failure. With `jobs=1` the order is the topological order
with ties broken by name, so runs are reproducible.

The scheduler knows nothing of processes: on a stop signal it calls the caller's `on_stop`
(`pipe repro` passes its executor's `cancel`) until every running node's work has returned.

Pure Python (Kahn's algorithm on a heap); no networkx, so the runner stays cheap to import.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from pipeline_engine.core import signals

__all__ = ["OnError", "ScheduleResult", "schedule", "topological_order"]

T = TypeVar("T")

# The main thread waits in short slices and checks for a stop signal between them.
_WAIT_SLICE = 0.1


class OnError(Enum):
    """What the scheduler does after a node fails."""

    FAIL = "fail"
    KEEP_GOING = "keep-going"


@dataclass(frozen=True, slots=True)
class ScheduleResult(Generic[T]):
    """Per node: its work's return value, the exception it raised, or skipped (in topological order)."""

    done: Mapping[str, T]
    failed: Mapping[str, BaseException]
    skipped: tuple[str, ...]


@dataclass(slots=True)
class _State:
    """Bookkeeping of one schedule() call; lives in the calling thread only."""

    downstream: dict[str, list[str]]
    waiting: dict[str, int]
    ready: list[str] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    stopped: bool = False


def schedule(
    upstream: Mapping[str, Collection[str]],
    work: Callable[[str], T],
    *,
    jobs: int,
    on_error: OnError = OnError.FAIL,
    on_stop: Callable[[], None] | None = None,
) -> ScheduleResult[T]:
    """Run `work(name)` for every node of `upstream` (node -> nodes it waits for), in dependency order.

    On a stop signal no new node starts, and `on_stop()` is called (again every 0.1 s, so work
    that started something meanwhile is stopped too) until every running `work` has returned;
    it must make them return soon (e.g. `Executor.cancel`). None: running work ends on its own.

    Raises:
        ValueError: an upstream name that is not a node, a cycle, or `jobs < 1` (caller bugs).
        signals.Interrupt: a stop signal (Ctrl-C, SIGTERM, SIGHUP) arrived; raised after `on_stop`
            was called and every running work returned.
    """
    order = topological_order(upstream)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    state = _initial_state(upstream)
    done: dict[str, T] = {}
    failed: dict[str, BaseException] = {}
    running: dict[Future[T], str] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pipe-stage")
    # Stop signals are only recorded while the pool runs: raised asynchronously inside
    # `wait()`, they can leave a future's lock held, and the worker finishing that future
    # then blocks forever (a `repro -j 2` that never exits after Ctrl-C).
    with signals.deferred() as received:
        try:
            while received() is None:
                _start_ready(state, pool, work, running, jobs)
                if not running:
                    break
                finished, _ = wait(running, timeout=_WAIT_SLICE, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=running.__getitem__):
                    _record(state, running.pop(future), future, done, failed, on_error)
            signum = received()
            if signum is not None:
                _stop(running, on_stop)
                raise signals.Interrupt(signum)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    skipped = tuple(name for name in order if name not in done and name not in failed)
    return ScheduleResult(done=done, failed=failed, skipped=skipped)


def topological_order(upstream: Mapping[str, Collection[str]]) -> list[str]:
    """Every node after the nodes it waits for, ties broken by name.

    Raises:
        ValueError: an upstream name that is not a node, or a cycle.
    """
    state = _initial_state(upstream)
    order: list[str] = []
    while state.ready:
        name = heapq.heappop(state.ready)
        order.append(name)
        _release(state, name)
    if len(order) != len(upstream):
        stuck = sorted(set(upstream) - set(order))
        raise ValueError(f"cycle among nodes {stuck}")
    return order


def _initial_state(upstream: Mapping[str, Collection[str]]) -> _State:
    downstream: dict[str, list[str]] = {name: [] for name in upstream}
    for name, ups in upstream.items():
        for up in set(ups):
            if up not in downstream:
                raise ValueError(f"node {name!r} waits for {up!r}, which is not a node")
            downstream[up].append(name)
    waiting = {name: len(set(ups)) for name, ups in upstream.items()}
    ready = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    return _State(downstream=downstream, waiting=waiting, ready=ready)


def _release(state: _State, name: str) -> None:
    """`name` is done: its dependents whose upstream is now all done become ready."""
    for child in state.downstream[name]:
        state.waiting[child] -= 1
        if state.waiting[child] == 0 and child not in state.blocked:
            heapq.heappush(state.ready, child)


def _block_downstream(state: _State, name: str) -> None:
    """Mark every transitive dependent of a failed node so that it never starts."""
    stack = list(state.downstream[name])
    while stack:
        child = stack.pop()
        if child not in state.blocked:
            state.blocked.add(child)
            stack.extend(state.downstream[child])


def _start_ready(
    state: _State,
    pool: ThreadPoolExecutor,
    work: Callable[[str], T],
    running: dict[Future[T], str],
    jobs: int,
) -> None:
    while state.ready and not state.stopped and len(running) < jobs:
        name = heapq.heappop(state.ready)
        running[pool.submit(work, name)] = name


def _record(
    state: _State,
    name: str,
    future: Future[T],
    done: dict[str, T],
    failed: dict[str, BaseException],
    on_error: OnError,
) -> None:
    exc = future.exception()
    if exc is None:
        done[name] = future.result()
        _release(state, name)
        return
    failed[name] = exc
    _block_downstream(state, name)
    if on_error is OnError.FAIL:
        state.stopped = True


def _stop(running: Mapping[Future[T], str], on_stop: Callable[[], None] | None) -> None:
    """Stop every running work, including what a worker starts while we wait, until every worker returned."""
    pending = set(running)
    while pending:
        if on_stop is not None:
            on_stop()
        _, pending = wait(pending, timeout=_WAIT_SLICE)
