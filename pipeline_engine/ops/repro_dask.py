"""Which executor `pipe repro` runs stage commands through: local processes (default) or a Dask cluster.

`--executor dask` (or `executor.type: dask`) sends each stage to a Dask scheduler
(`--scheduler` / `executor.scheduler`; none: a local cluster of worker processes). Without a
shared filesystem, data moves through the project's default remote (`index/remote_run.py`);
with `executor.shared_fs: true` workers run in the project directory and share its cache.
The worker function that needs the cache and the remote lives in `index/` and reaches the
executor as an `Exchange`: `runner/` (layer 5) may import neither.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pipeline_engine.config import EXECUTORS
from pipeline_engine.errors import ConfigError, RemoteNotConfiguredError
from pipeline_engine.pipeline.spec import StageSpec
from pipeline_engine.project import Project
from pipeline_engine.runner.executor import Executor, LocalExecutor

__all__ = ["DASK_STAGES_IN_FLIGHT", "executor_kind", "open_executor", "stage_slots"]

#: Stages prepared and waiting on a remote scheduler at once, when neither -j nor core.jobs says:
#: waiting costs a client thread only; the cluster's workers decide what runs.
DASK_STAGES_IN_FLIGHT = 64


def executor_kind(project: Project, kind: str | None) -> str:
    """`kind` (the --executor flag), else `executor.type` from config.

    Raises:
        ConfigError: an unknown executor.
    """
    chosen = kind or project.config.executor
    if chosen not in EXECUTORS:
        raise ConfigError(f"unknown executor '{chosen}' (known: {', '.join(EXECUTORS)})")
    return chosen


def stage_slots(project: Project, kind: str, scheduler: str | None, jobs: int | None) -> int:
    """How many stages run (or wait on the cluster) at once: -j, else core.jobs, else a default per executor."""
    cpus = os.cpu_count() or 1
    if jobs or project.config.jobs:
        return int(jobs or project.config.jobs or cpus)
    remote_cluster = kind == "dask" and (scheduler or project.config.scheduler)
    return DASK_STAGES_IN_FLIGHT if remote_cluster else cpus


def open_executor(
    project: Project, kind: str, stages: Sequence[StageSpec], *, jobs: int, scheduler: str | None = None,
    checkout: bool = True, remote_only: frozenset[str] = frozenset(),
) -> Executor:
    """A LocalExecutor, or a DaskExecutor that has checked every stage's `resources` against its workers.

    A local Dask cluster gets `jobs` worker processes (one thread each). `remote_only`: stages
    whose outs the client leaves on the remote (`checkout` False, `pipe repro --no-checkout`).

    Raises:
        ConfigError: --no-checkout without an exchange through the remote.
        RemoteError: the scheduler cannot be reached. RemoteNotConfiguredError: no default remote
            (needed unless executor.shared_fs). SpecError: a stage needs resources no worker has.
    """
    if not checkout and (kind == "local" or project.config.shared_fs):
        raise ConfigError("--no-checkout leaves outs on the remote: it needs the Dask executor without "
                          "executor.shared_fs", hint="add '--executor dask', or drop --no-checkout")
    if kind == "local":
        return LocalExecutor(jobs)
    from pipeline_engine.index.remote_run import RemoteExchange
    from pipeline_engine.runner.dask_executor import DaskExecutor

    try:
        exchange = None if project.config.shared_fs else RemoteExchange(project, keep=remote_only)
    except RemoteNotConfiguredError as exc:  # the generic hint does not say why a repro needs a remote
        raise RemoteNotConfiguredError(
            f"{exc.message}: Dask workers receive deps and send outs through the default remote",
            hint="add one with 'pipe remote add -d NAME URL', or, when every worker sees the project at "
                 "the same path, 'pipe config executor.shared_fs true'") from None
    executor = DaskExecutor(scheduler or project.config.scheduler, jobs=jobs, exchange=exchange)
    try:
        executor.check_resources({s.name: dict(s.resources) for s in stages if s.resources and not s.frozen})
    except BaseException:
        executor.close()
        raise
    return executor
