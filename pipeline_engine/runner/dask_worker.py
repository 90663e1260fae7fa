"""What runs inside a Dask worker process: a stage's command with its log, GPUs and cancel switch, and its reply.

Worker functions are top-level functions, pickled by reference: every worker has
`pipeline_engine` installed (`pip install 'pipeline-engine[dask]'`, plus the remote's extra).
`run_in_place` serves the shared-filesystem mode; the no-shared-filesystem worker function,
which needs the cache and the remote, lives above this layer (`index/remote_run.py`) and uses
`run_stage_command` from here. `distributed` is imported only inside these functions.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.runner.executor import JobResult, StageJob
from pipeline_engine.runner.process import CommandGroup, CommandResult, run_command

__all__ = ["WORKER_DIR_ENV", "StageRun", "WorkerReply", "run_in_place", "run_stage_command", "stop_run",
           "worker_dir", "worker_name"]

#: Where a worker keeps its object cache and scratch directories (default: Dask's local directory).
WORKER_DIR_ENV = "PIPE_WORKER_DIR"


@dataclass(frozen=True, slots=True)
class WorkerReply:
    """A worker function's return value: the job's result plus what the client shows and writes.

    `result.log_path` is None (the client writes `log` at `job.log_path`); `commands` are the
    commands that started, in order; `error`/`error_kind`/`hint`: a PipeError raised on the
    worker (say, a dep the remote lacks), re-raised by the client as that kind of error.
    """

    result: JobResult
    log: str = ""
    commands: tuple[str, ...] = ()
    worker: str = ""
    error: str | None = None
    error_kind: str = ""
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class StageRun:
    """How a command ran on a worker: its result, its output, the commands that started."""

    result: CommandResult
    log: str
    commands: tuple[str, ...]
    seconds: float

    def reply(self) -> WorkerReply:
        """The reply for a command that failed or was stopped (no outs), or ran in place."""
        command = self.commands[-1] if self.commands else ""
        result = JobResult(self.result.returncode, command, self.result.interrupted, self.seconds)
        return WorkerReply(result, self.log, self.commands, worker_name())


# One group per pipe run (its run id): `stop_run` stops that run's commands on this worker only.
_groups: dict[str, CommandGroup] = {}
_groups_lock = threading.Lock()
# GPU indices this worker process hands out; Dask's resource accounting guarantees enough are free.
_free_gpus: list[int] | None = None
_gpus_lock = threading.Lock()


def worker_name() -> str:
    """This Dask worker's name (its address when unnamed), or the host name outside a worker."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:
        return socket.gethostname()
    return str(worker.name) if worker.name is not None else str(worker.address)


def worker_dir() -> Path:
    """This worker's directory for pipe: `$PIPE_WORKER_DIR`, else `pipe/` in Dask's local directory."""
    configured = os.environ.get(WORKER_DIR_ENV)
    if configured:
        return Path(configured)
    try:
        from distributed import get_worker

        return Path(get_worker().local_directory) / "pipe"
    except ValueError:
        return Path(tempfile.gettempdir()) / "pipe-worker"


def stop_run(run_id: str) -> None:
    """Stop this worker's running commands of run `run_id`, and any it would start (called by `Client.run`).

    Returns at once: the commands get SIGTERM, then SIGKILL after 3 s, from a thread.
    """
    group = _group(run_id)
    threading.Thread(target=group.stop, name="pipe-stop", daemon=True).start()


def run_stage_command(job: StageJob, cwd: Path, env: dict[str, str], run_id: str) -> StageRun:
    """Run `job.cmd` in `cwd` on this worker: output to a private log, GPUs held, stoppable by `stop_run`."""
    env = {**os.environ, **env, "DASK_WORKER_NAME": worker_name(), "PYTHONUNBUFFERED": "1"}
    commands: list[str] = []
    logs = Path(tempfile.mkdtemp(prefix="pipe-log-"))
    try:
        with _held_gpus(int(job.resources.get("gpus", 0))) as gpus:
            if gpus is not None:
                env["CUDA_VISIBLE_DEVICES"] = gpus
            clock = time.monotonic()
            result = run_command(job.cmd, cwd=cwd, env=env, log_path=logs / "stage.log", name=job.name,
                                 on_start=commands.append, group=_group(run_id))
            seconds = time.monotonic() - clock
        log = (logs / "stage.log").read_text(encoding="utf-8", errors="replace") if result.log_path else ""
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    return StageRun(result, log, tuple(commands), seconds)


def run_in_place(job: StageJob, run_id: str) -> WorkerReply:
    """The shared-filesystem worker function: run the job in the project directory itself.

    The client hashes and caches the outs as after a local run (`JobResult.outs` None). No running
    record is written: a later pipe on another machine could not stop this worker's process anyway.
    """
    if not job.cwd.is_dir():
        return WorkerReply(JobResult(1), worker=worker_name(), error_kind="StageFailedError",
                           error=f"stage '{job.name}': its wdir '{job.cwd}' is not a directory on worker "
                                 f"'{worker_name()}'", hint="shared_fs needs the project at the same path on every worker")
    return run_stage_command(job, job.cwd, dict(job.env), run_id).reply()


def _group(run_id: str) -> CommandGroup:
    with _groups_lock:
        return _groups.setdefault(run_id, CommandGroup())


@contextmanager
def _held_gpus(count: int) -> Iterator[str | None]:
    """Hold `count` of this worker's GPUs (its `GPU` resource): their indices for CUDA_VISIBLE_DEVICES."""
    global _free_gpus
    if count <= 0:
        yield None
        return
    with _gpus_lock:
        if _free_gpus is None:
            from distributed import get_worker

            _free_gpus = list(range(int(get_worker().state.total_resources.get("GPU", 0))))
        held, _free_gpus[:] = _free_gpus[:count], _free_gpus[count:]
    try:
        yield ",".join(str(i) for i in held)
    finally:
        with _gpus_lock:
            _free_gpus.extend(held)
            _free_gpus.sort()
