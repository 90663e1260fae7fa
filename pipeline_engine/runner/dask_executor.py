"""`DaskExecutor`: stage jobs as tasks on a Dask `distributed` cluster (an existing scheduler, or a local one).

```
  scheduler thread (pipe repro)          DaskExecutor thread                 Dask worker
  submit(job) -> Future ----------->     exchange.ship(job)   (deps -> remote)
                                          client.submit(work, job, run_id,
                                            key=unique per attempt,  ----->  work(job, run_id):
                                            resources=..., retries=...)       fetch deps, run, hash,
                                          reply = dask_future.result() <----  push outs; WorkerReply
                                          write reply.log at job.log_path
                                          exchange.receive(job, outs) (remote -> store)
  Future resolves with the JobResult <---
```
The executor stays generic (layer 5 holds no store or remote): what moves data, and the worker
function that needs the cache and the remote, come as an `Exchange` from the layer that wires
them (`index/remote_run.py`). Without one, the shared-filesystem mode: workers run the job in
the project directory itself (`dask_worker.run_in_place`) and the client hashes the outs.

Resources: a stage's `cpus`, `memory` (bytes) and `gpus` are the Dask worker resources `CPU`,
`MEMORY` and `GPU` (`dask worker --resources "CPU=8 MEMORY=32e9 GPU=2"`); a task runs only on
a worker that declared enough of them. `check_resources` refuses, before anything runs, a stage
that no connected worker could take (Dask would otherwise wait for such a worker for ever).
A local cluster's workers declare the machine's CPUs and memory.

Retries: a task whose worker is lost is run again elsewhere by Dask's scheduler; one that
raised is retried `retries` times. Each submission has its own key, each attempt its own
scratch directory. Cancel: Dask futures are cancelled and every worker
stops this run's commands (`dask_worker.stop_run`, through `Client.run`).
`distributed` is imported in the constructor only: `pipe` never pays for it otherwise.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import replace
from threading import Event, Lock
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from pipeline_engine import errors
from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PipeError, RemoteError, SpecError
from pipeline_engine.runner.dask_worker import WorkerReply, run_in_place, stop_run
from pipeline_engine.runner.executor import JobEvents, JobResult, NoEvents, StageJob

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["DASK_RESOURCES", "DaskExecutor", "Exchange", "WorkFn"]

#: Stage resource name -> Dask worker resource name.
DASK_RESOURCES: Mapping[str, str] = {"cpus": "CPU", "memory": "MEMORY", "gpus": "GPU"}
#: A picklable function run on a worker: (job, run id) -> its reply.
WorkFn = Callable[[StageJob, str], WorkerReply]
_CONNECT_TIMEOUT = "20s"
# Errors a worker function reports that the client re-raises as the same kind.
_KINDS = ("CacheError", "CorruptObjectError", "ObjectNotFoundError", "PathError", "RemoteError",
          "RemoteNotConfiguredError", "StageFailedError")


class Exchange(Protocol):
    """How a job's inputs reach workers without the project's filesystem, and its outs come back."""

    @property
    def work(self) -> WorkFn:
        """The worker function (picklable; it must not capture the client's objects)."""

    def ship(self, job: StageJob) -> None:
        """Make every object of `job.deps` available to workers (before the task is submitted).

        Raises:
            PipeError: a dep changed since it was measured, or the transfer failed.
        """

    def receive(self, job: StageJob, outs: tuple[PathRecord, ...]) -> None:
        """Bring the objects of the outs a worker stored into the project's store.

        Raises:
            PipeError: the transfer failed.
        """


class DaskExecutor:
    """Runs each job as one Dask task; `address` None starts a local cluster of worker processes.

    `jobs`: the local cluster's worker count (one thread each) and the number of jobs this
    executor prepares at once; `exchange` None: shared-filesystem mode; `retries`: how many
    times Dask runs a task again after it raised (say, a worker's disk filled up). A task whose
    worker is lost is rescheduled by Dask itself, up to its `distributed.scheduler.allowed-failures`.

    Raises:
        RemoteError: the scheduler cannot be reached, or the local cluster cannot start.
    """

    def __init__(self, address: str | None, *, jobs: int, exchange: Exchange | None = None, retries: int = 2) -> None:
        from distributed import Client, KilledWorker, LocalCluster

        # distributed's constructors are untyped: call them through Any.
        cluster_type: Any = LocalCluster
        client_type: Any = Client

        self._broken: tuple[type[BaseException], ...] = (KilledWorker, OSError, TimeoutError)

        self._cluster: Any = None
        failure: str | None = None
        try:
            if address is None:
                cpus = os.cpu_count() or 1
                self._cluster = cluster_type(
                    n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                    resources={"CPU": cpus, "MEMORY": _memory() or 2**40},
                )
                self._client: Any = client_type(self._cluster)
            else:
                self._client = client_type(address, timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:  # ValueError: an address Dask cannot parse
            failure = str(exc) or type(exc).__name__
            if self._cluster is not None:
                self._cluster.close()
        if failure is not None:
            # The half-built Client is still referenced by the exception's frames until here. Left to
            # a later garbage collection, its __del__ may run inside another Client's start and
            # deadlock on distributed's loop lock; collected now, nothing else holds that lock.
            gc.collect()
            where = f"the Dask scheduler at '{address}'" if address else "a local Dask cluster"
            raise RemoteError(f"cannot connect to {where}: {failure}",
                              hint="check 'executor.scheduler' (pipe config) or --scheduler")
        self._work: WorkFn = exchange.work if exchange is not None else run_in_place
        self._exchange = exchange
        self._retries = retries
        self._run_id = uuid.uuid4().hex
        self._pool = ThreadPoolExecutor(max_workers=max(jobs, 1), thread_name_prefix="pipe-dask")
        self._futures: set[Any] = set()
        self._lock = Lock()
        self._cancelled = Event()

    @property
    def address(self) -> str:
        """The scheduler's address (the local cluster's too)."""
        return str(self._client.scheduler.address)

    def worker_resources(self) -> dict[str, dict[str, float]]:
        """Each connected worker's name -> the resources it declared."""
        workers = self._client.scheduler_info(n_workers=-1)["workers"]
        return {str(w.get("name") or addr): dict(w.get("resources") or {}) for addr, w in workers.items()}

    def check_resources(self, requests: Mapping[str, Mapping[str, float]], *, wait: float = 60.0) -> None:
        """Refuse, before anything runs, a stage whose `resources` no connected worker has.

        `requests` is stage name -> its resources. With no worker connected yet (a cluster that
        is starting), waits up to `wait` seconds for one.

        Raises:
            SpecError: a stage needs more than any worker has (the message names stage and resource).
        """
        wanted = {name: _dask_resources(r) for name, r in requests.items() if r}
        if not wanted:
            return
        if not self._client.scheduler_info()["workers"]:
            try:
                self._client.wait_for_workers(1, timeout=wait)
            except TimeoutError:
                pass
        workers = self.worker_resources()
        for stage, need in sorted(wanted.items()):
            if not any(all(have.get(k, 0) >= v for k, v in need.items()) for have in workers.values()):
                shown = ", ".join(f"{k}={v:g}" for k, v in sorted(need.items()))
                offered = "; ".join(f"'{n}': {_shown(r)}" for n, r in sorted(workers.items())) or "no workers"
                raise SpecError(
                    f"pipeline.yaml: stage '{stage}': 'resources' asks for {shown}, which no Dask worker has "
                    f"({offered})",
                    hint="start workers with 'dask worker --resources \"CPU=N MEMORY=BYTES GPU=N\"', "
                         "or lower the stage's resources",
                )

    def submit(self, job: StageJob, events: JobEvents | None = None) -> Future[JobResult]:
        """Ship the job's deps, submit it to Dask and return at once (see `Executor.submit`)."""
        return self._pool.submit(self._run, job, events or NoEvents())

    def cancel(self) -> None:
        """Cancel pending and running tasks and stop this run's commands on every worker."""
        self._cancelled.set()
        with self._lock:
            futures = list(self._futures)
        try:
            if futures:
                self._client.cancel(futures, force=True)
            self._client.run(stop_run, self._run_id, on_error="ignore")
        except (OSError, TimeoutError):
            pass  # a cluster that is gone runs nothing more

    def close(self) -> None:
        """Wait for the jobs in flight, then close the client (and the local cluster)."""
        self._pool.shutdown(wait=True)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self.cancel()
        self.close()

    def _run(self, job: StageJob, events: JobEvents) -> JobResult:
        if self._cancelled.is_set():
            return JobResult(-15, interrupted=True)
        if self._exchange is not None:
            self._exchange.ship(job)
        future = self._client.submit(
            self._work, job, self._run_id, key=f"pipe-{job.name}-{uuid.uuid4().hex}", pure=False,
            retries=self._retries, resources=_dask_resources(job.resources) or None,
        )
        with self._lock:
            self._futures.add(future)
        if self._cancelled.is_set():
            future.cancel()
        try:
            reply: WorkerReply = future.result()
        except CancelledError:
            return JobResult(-15, interrupted=True)
        except self._broken as exc:  # every attempt's worker was lost, or the cluster went away
            raise RemoteError(f"stage '{job.name}': its Dask task failed: {type(exc).__name__}: {exc}",
                              hint=f"run 'pipe repro {job.name}' again") from exc
        finally:
            with self._lock:
                self._futures.discard(future)
        return self._finish(job, reply, events)

    def _finish(self, job: StageJob, reply: WorkerReply, events: JobEvents) -> JobResult:
        """Show and write the shipped log, re-raise a worker's error, bring the outs in."""
        for command in reply.commands:
            events.command(command)
        if job.log_path is not None:
            job.log_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(job.log_path, reply.log, fsync=False)
        # Shown as a local stage's lines are (they arrive when the task ends, not as they are written).
        for line in reply.log.splitlines(keepends=True):
            events.output(line)
        if reply.error is not None:
            kind = getattr(errors, reply.error_kind) if reply.error_kind in _KINDS else PipeError
            raise kind(f"{reply.error} (on Dask worker '{reply.worker}')", hint=reply.hint)
        result = replace(reply.result, log_path=job.log_path)
        if self._exchange is not None and result.outs and result.returncode == 0 and not result.interrupted:
            self._exchange.receive(job, result.outs)
        return result


def _dask_resources(resources: Mapping[str, float]) -> dict[str, float]:
    return {DASK_RESOURCES[k]: v for k, v in resources.items() if k in DASK_RESOURCES}


def _shown(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(resources.items())) or "none declared"


def _memory() -> int | None:
    """This machine's memory in bytes (what a local cluster's workers declare as MEMORY)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
