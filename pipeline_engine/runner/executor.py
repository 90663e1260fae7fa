"""Where a prepared stage runs: the `Executor` contract, its plain values, and `LocalExecutor` (local processes).

A stage's life in `pipe repro` is decide -> restore -> run -> record (`ops/repro_stage.py`).
Only "run" goes through an executor; the rest stays in the client, the `pipe` process:

```
  client (pipe repro)                                   executor
  decide: measure deps/params/outs, plan.decide
  restore: last outs, or the run cache  -- done? stop
  run: clear outs, build a StageJob  ------ submit --->  run job.cmd in job.cwd (or a scratch copy)
                                      <---- Future -----  JobResult: returncode, log, timing, [out records]
  record: hash outs (or take the returned records),
          run-cache entry, then the pipeline.lock entry
```

The contract a new executor keeps (so that, say, a Dask executor is one new module here plus
the configuration that picks it in `ops/repro.py`):

- **Plain values in and out.** `StageJob` and `JobResult` are frozen, picklable dataclasses of
  paths, strings and `PathRecord`s: no Project, store or lock. An executor lives in `runner/`
  (layer 5) and imports nothing above `core`.
- **What runs where.** The executor runs `job.cmd` (a string: one shell script that stops at its
  first failing line; a tuple: each item in its own shell, in order, stopping at the first that
  fails) with the executor's own environment updated by `job.env`. A local executor runs it in
  `job.cwd`, inside the project. A remote one lays out a scratch directory like the project
  (`job.deps` name every input by oid and project-relative path, so a worker can fetch what it
  lacks), runs the command in `<scratch>/<job.wdir>` with `PIPE_ROOT` set to the scratch root,
  then hashes the outs (`job.outs`, project-relative), makes their objects available in the
  project's store and returns their records in `JobResult.outs`.
- **Who writes what.** The client alone writes pipeline.lock, the run cache, pointers and the
  workspace's `.gitignore`; an executor never does. It writes only the outs (locally, in the
  workspace; remotely, in its scratch directory and the store), the log at `job.log_path` (a
  remote executor copies the worker's log there) and, locally, the running-command record in
  `job.record_dir` that lets a later `pipe` stop an orphan.
- **Failure.** A command that exits non-zero is a result (`returncode`), not an exception: the
  client turns it into the stage's error. The future raises only a `PipeError` for a job that
  could not be started or an executor that broke (e.g. `StageFailedError` for a missing `wdir`,
  `RemoteError` for an unreachable cluster).
- **Threads.** `submit` is called from several threads at once (one per running stage) and must
  not wait for the job. `JobEvents` methods may be called from any thread, between `submit` and
  the future's resolution, never after it.
- **Idempotence.** A job may run again (a retry after a lost worker, a rerun after Ctrl-C) and
  must give the same outs: before submitting, the client removed the outs (persistent outs
  excepted); a remote attempt uses a fresh scratch directory.
- **Cancel.** `cancel()` (Ctrl-C, SIGTERM, SIGHUP) stops every running job and every pending
  one; their futures resolve promptly with `interrupted=True` (never `CancelledError`), and jobs
  submitted afterwards resolve the same way without running. It may be called from any thread,
  more than once. The client keeps every finished stage's lock entry.
- **Lifetime.** `close()` releases threads and connections after waiting for running jobs; an
  executor is a context manager whose exit closes it. Whoever creates an executor closes it.
- **Resources.** `job.resources` maps a resource name to the amount a stage needs (`cpus`,
  `memory` in bytes, `gpus`; issue 12). An executor that cannot honour a request refuses the
  job with a `PipeError`; `LocalExecutor` runs at most `jobs` stages at once and ignores them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from pipeline_engine.core.record import PathRecord
from pipeline_engine.runner.process import CommandGroup, run_command

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

__all__ = ["Executor", "JobEvents", "JobResult", "LocalExecutor", "NoEvents", "StageJob"]


@dataclass(frozen=True, slots=True)
class StageJob:
    """Everything needed to run one prepared stage, on this machine or another.

    `root` is the project's absolute root and `wdir` the stage's working directory relative
    to it ("" for the root; `cwd` joins them). `env` holds only what pipe adds to the executor's
    own environment (`PIPE_ROOT`, `PIPE_STAGE` and the stage's declared `env:` variables as the
    client saw them). `log_path` None: the output goes to pipe's own stdout/stderr (one stage at
    a time; an executor that cannot do that passes each line to `JobEvents.output`).
    `record_dir`: where a local command leaves its running record (None: none). `deps` are the
    records (path, oid) of the stage's deps as the client measured them; `outs` the
    project-relative paths the command must produce. `resources`: see the module docstring.
    """

    name: str
    cmd: str | tuple[str, ...]
    root: Path
    wdir: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    record_dir: Path | None = None
    deps: tuple[PathRecord, ...] = ()
    outs: tuple[str, ...] = ()
    resources: Mapping[str, float] = field(default_factory=dict)

    @property
    def cwd(self) -> Path:
        """The absolute directory the command runs in, on the client's filesystem."""
        return self.root / self.wdir


@dataclass(frozen=True, slots=True)
class JobResult:
    """How a job ended.

    `returncode`: the exit code of the command that ran last (negative: killed by that signal);
    `command`: that command (for a `cmd` list, the item that failed); `interrupted`: stopped by
    `cancel()`; `seconds`: the command's wall time; `log_path`: its output on the client's
    filesystem, or None. `outs` None: the outs are in the project's workspace and the client
    hashes them (a local run); otherwise their records, hashed by the executor, whose objects are
    in the project's store (the client checks them out and records them).
    """

    returncode: int
    command: str = ""
    interrupted: bool = False
    seconds: float = 0.0
    log_path: Path | None = None
    outs: tuple[PathRecord, ...] | None = None


class JobEvents(Protocol):
    """What the client shows live while a job runs; called from any thread."""

    def command(self, cmd: str) -> None:
        """This command (each item of a `cmd` list in turn) is about to run."""

    def output(self, line: str) -> None:
        """A line (with its newline) the command wrote to its log, while it runs."""


class NoEvents:
    """JobEvents that show nothing."""

    def command(self, cmd: str) -> None:
        return None

    def output(self, line: str) -> None:
        return None


class Executor(Protocol):
    """Runs prepared stages; the contract is in this module's docstring."""

    def submit(self, job: StageJob, events: JobEvents) -> Future[JobResult]:
        """Start `job` (or queue it) and return at once; the future resolves with its result.

        Raises (through the future):
            PipeError: the job could not be started, or the executor failed.
        """

    def cancel(self) -> None:
        """Stop every running and pending job; their futures resolve with `interrupted=True`."""

    def close(self) -> None:
        """Wait for running jobs, then release the executor's threads and connections."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class LocalExecutor:
    """Runs up to `jobs` stages at once as local processes, each in its own process group.

    A job runs `runner.process.run_command` in a worker thread: its output goes to its log (and,
    line by line, to `events.output`), and its running record to `job.record_dir`. `cancel()`
    stops the process groups of this executor's commands (SIGTERM, SIGKILL after 3 s), including
    one that is starting at that moment; other executors' commands run on.
    """

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pipe-run")
        self._commands = CommandGroup()

    def submit(self, job: StageJob, events: JobEvents | None = None) -> Future[JobResult]:
        """Run `job` in a worker thread (see `Executor.submit`)."""
        return self._pool.submit(self._run, job, events or NoEvents())

    def cancel(self) -> None:
        """Stop every running command (SIGTERM to its group, SIGKILL after 3 s); later jobs do not start."""
        self._commands.stop()

    def close(self) -> None:
        """Wait for the running jobs and end the worker threads."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self.cancel()
        self.close()

    def _run(self, job: StageJob, events: JobEvents) -> JobResult:
        command = job.cmd if isinstance(job.cmd, str) else ""
        if self._commands.is_stopped:
            return JobResult(-int(signal.SIGTERM), command, interrupted=True, log_path=None)
        env = {**os.environ, **job.env}
        if job.log_path is not None:
            env.setdefault("PYTHONUNBUFFERED", "1")  # its lines are shown as they come, not when it ends
        started = [command]

        def on_start(cmd: str) -> None:
            started[0] = cmd
            events.command(cmd)

        clock = time.monotonic()
        result = run_command(job.cmd, cwd=job.cwd, env=env, log_path=job.log_path, record_dir=job.record_dir,
                             name=job.name, on_start=on_start, on_output=events.output, group=self._commands)
        return JobResult(result.returncode, started[0], result.interrupted, time.monotonic() - clock, result.log_path)
