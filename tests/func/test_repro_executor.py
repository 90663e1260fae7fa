"""The executor seam carries a non-local executor: `repro(..., executor=...)` with a stand-in for a remote
one (each job runs in a fresh scratch directory holding only its deps, fetched by oid; the executor
hashes and stores the outs and returns their records) records the same lock and outs as a local run."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import pytest

from pipeline_engine.cache.checkout import checkout
from pipeline_engine.cache.link import LinkType
from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.workspace import is_cached, save, scan
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import MissingOutputError, PipeInterrupted, StageFailedError
from pipeline_engine.ops.repro import Outcome, ReproOptions, StageOutcome, repro
from pipeline_engine.pipeline.plan import Reason
from pipeline_engine.runner.executor import JobEvents, JobResult, LocalExecutor, StageJob
from pipeline_engine.runner.process import run_command, terminate_all
from tests.conftest import Cli, Workspace, git
from tests.func.repro_helpers import lock_of

if TYPE_CHECKING:
    from typing_extensions import Self


class ScratchExecutor:
    """Runs each job in its own scratch directory, as a worker without the project's filesystem would.

    Deps whose objects are in the store (outs of upstream stages) are checked out by oid; code
    files (in git, never in the cache) are shipped from the project and checked against their oid.
    Outs are hashed in the scratch directory and put into the store, and their records returned.
    """

    def __init__(self, store_root: Path, scratch: Path) -> None:
        self.store = ObjectStore(store_root)
        self.scratch = scratch
        self.jobs: list[StageJob] = []
        self.roots: dict[str, Path] = {}
        self.closed = False
        self._pool = ThreadPoolExecutor(max_workers=4)
        self._lock = threading.Lock()

    def submit(self, job: StageJob, events: JobEvents) -> Future[JobResult]:
        with self._lock:
            self.jobs.append(job)
        return self._pool.submit(self._run, job, events)

    def cancel(self) -> None:
        terminate_all()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _run(self, job: StageJob, events: JobEvents) -> JobResult:
        root = Path(tempfile.mkdtemp(prefix=f"{job.name}-", dir=self.scratch))
        self.roots[job.name] = root
        memo = HashMemo(self.scratch / f"{root.name}.memo")
        for dep in job.deps:
            if is_cached(self.store, dep.oid):
                checkout(self.store, root, dep.path, dep.oid, memo, link_types=(LinkType.COPY,), isexec=dep.isexec)
            else:
                (root / dep.path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(job.root / dep.path, root / dep.path)
                assert scan(root, dep.path, memo).oid == dep.oid, f"dep '{dep.path}' differs from its record"
        for out in job.outs:
            (root / out).parent.mkdir(parents=True, exist_ok=True)
        cwd = root / job.wdir
        cwd.mkdir(parents=True, exist_ok=True)
        started: list[str] = []

        def on_start(cmd: str) -> None:
            started.append(cmd)
            events.command(cmd)

        ran = run_command(job.cmd, cwd=cwd, env={**os.environ, **job.env, "PIPE_ROOT": str(root)},
                          log_path=job.log_path, on_start=on_start, on_output=events.output)
        command = started[-1] if started else ""
        if ran.returncode != 0 or ran.interrupted:
            return JobResult(ran.returncode, command, ran.interrupted, 0.1, ran.log_path)
        outs = []
        for path in job.outs:
            if not (root / path).exists():
                continue  # the client names the missing out
            scanned = scan(root, path, memo)
            save(self.store, root, scanned, link_types=(LinkType.COPY,), memo=memo)
            outs.append(PathRecord(path, scanned.oid, scanned.size, scanned.nfiles, scanned.isexec))
        return JobResult(0, command, seconds=0.1, log_path=ran.log_path, outs=tuple(outs))


class Listener:
    """Keeps the commands each stage announced."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, str]] = []

    def started(self, stage: str, reasons: tuple[Reason, ...], log_path: Path | None) -> None:
        return None

    def command(self, stage: str, cmd: str) -> None:
        self.commands.append((stage, cmd))

    def output(self, stage: str, line: str) -> None:
        return None

    def finished(self, outcome: StageOutcome) -> None:
        return None

    def leftover(self, stage: str, pid: int, *, wait: bool) -> None:
        return None


PIPELINE = {
    "prepare": {
        "cmd": "mkdir -p data/parts && cp raw.txt data/parts/a.txt && seq ${n} > data/parts/b.txt",
        "deps": ["raw.txt"],
        "params": ["n"],
        "outs": ["data"],
    },
    "train": {
        "cmd": "sh train.sh > model.txt && chmod +x model.txt && echo '{\"files\": 2}' > m.json",
        "deps": ["train.sh", "data"],
        "outs": ["model.txt"],
        "metrics": [{"m.json": {"cache": False}}],
    },
    "evaluate": {
        "wdir": "eval",
        "cmd": ["wc -c < ../model.txt > ../score.txt", "echo ok >> ../score.txt"],
        "deps": ["../model.txt"],
        "outs": ["../score.txt"],
    },
}
# Each out, and the stage whose scratch directory made it.
OUTS = {"data/parts/a.txt": "prepare", "data/parts/b.txt": "prepare", "model.txt": "train", "m.json": "train",
        "score.txt": "evaluate"}


def test_a_non_local_executor_records_the_same_lock_and_outs_as_a_local_run(
    workspace: Workspace, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.write({"raw.txt": "raw\n", "params.yaml": "n: 3\n", "train.sh": "cat data/parts/*.txt\n",
                     "eval": {"README": "evaluation\n"}})
    workspace.write_pipeline(PIPELINE)
    workspace.commit("pipeline")
    local = Workspace(tmp_path / "local")
    git(tmp_path, "clone", "-q", str(workspace.root), str(local.root))
    monkeypatch.chdir(local.root)
    cli.run("repro")  # in the clone, with the default local executor

    monkeypatch.chdir(workspace.root)
    project = workspace.project()
    (tmp_path / "scratch").mkdir()
    listener = Listener()
    with ScratchExecutor(project.store.root, tmp_path / "scratch") as executor:
        result = repro(project, [], ReproOptions(jobs=2), listener, executor=executor)
        assert not executor.closed, "repro closed an executor it did not create"
    result.raise_for_failure()

    assert result.of(Outcome.RAN) == ["prepare", "train", "evaluate"]
    assert lock_of(workspace.root) == lock_of(local.root)
    for path, stage in OUTS.items():
        assert (workspace.root / path).read_bytes() == (local.root / path).read_bytes(), path
        assert (executor.roots[stage] / path).is_file(), f"'{path}' was not made in the scratch directory"
    assert os.stat(workspace.root / "model.txt").st_mode & stat.S_IXUSR
    assert os.stat(workspace.root / "m.json").st_nlink == 1, "the uncached metrics file is a plain copy"
    assert workspace.read(".gitignore") == local.read(".gitignore")

    jobs = {job.name: job for job in executor.jobs}
    assert {d.path: d.oid for d in jobs["train"].deps}["data"].endswith(".dir")
    assert (jobs["evaluate"].wdir, jobs["evaluate"].outs) == ("eval", ("score.txt",))
    assert ("evaluate", "echo ok >> ../score.txt") in listener.commands

    # The local executor finds nothing to do after the remote-style run.
    again = repro(workspace.project(), [])
    assert again.of(Outcome.UNCHANGED) == ["prepare", "train", "evaluate"]
    assert "up to date" in cli.run("status").stderr


def test_a_failure_and_a_missing_out_reported_by_an_executor_fail_their_stages(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.write_pipeline({
        "ok": {"cmd": "echo ok > ok.txt", "outs": ["ok.txt"]},
        "bad": {"cmd": ["true", "exit 3", "true"], "deps": ["ok.txt"], "outs": ["bad.txt"]},
        "lazy": {"cmd": "true", "outs": ["never.txt"]},
    })
    project = workspace.project()
    (tmp_path / "scratch").mkdir()
    with ScratchExecutor(project.store.root, tmp_path / "scratch") as executor:
        result = repro(project, [], ReproOptions(jobs=2, keep_going=True), executor=executor)

    failed = {s.stage: s.error for s in result.stages if s.outcome is Outcome.FAILED}
    assert isinstance(failed["bad"], StageFailedError) and failed["bad"].returncode == 3
    assert "its command 'exit 3' exited with code 3" in str(failed["bad"])
    assert isinstance(failed["lazy"], MissingOutputError) and "'never.txt'" in str(failed["lazy"])
    assert set(lock_of(workspace.root)["stages"]) == {"ok"}
    assert workspace.read("ok.txt") == "ok\n"


class GateExecutor:
    """Runs jobs locally, except stage 'slow', which stands for a remote task that ends only when cancelled."""

    def __init__(self) -> None:
        self.local = LocalExecutor(2)
        self.slow_submitted = threading.Event()
        self.cancelled = threading.Event()

    def submit(self, job: StageJob, events: JobEvents) -> Future[JobResult]:
        if job.name != "slow":
            return self.local.submit(job, events)
        future: Future[JobResult] = Future()

        def finish_when_cancelled() -> None:
            self.cancelled.wait(timeout=30)
            future.set_result(JobResult(-int(signal.SIGTERM), "touch slow.txt", interrupted=True))

        threading.Thread(target=finish_when_cancelled, daemon=True).start()
        self.slow_submitted.set()
        return future

    def cancel(self) -> None:
        self.cancelled.set()
        self.local.cancel()

    def close(self) -> None:
        self.local.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def test_ctrl_c_cancels_the_executor_and_keeps_finished_stages(workspace: Workspace) -> None:
    workspace.write_pipeline({
        "fast": {"cmd": "echo fast > fast.txt", "outs": ["fast.txt"]},
        "slow": {"cmd": "touch slow.txt", "deps": ["fast.txt"], "outs": ["slow.txt"]},
        "after": {"cmd": "touch after.txt", "deps": ["slow.txt"], "outs": ["after.txt"]},
    })

    def press_ctrl_c() -> None:
        if executor.slow_submitted.wait(timeout=30):
            os.kill(os.getpid(), signal.SIGINT)

    with GateExecutor() as executor:
        presser = threading.Thread(target=press_ctrl_c)
        presser.start()
        with pytest.raises(PipeInterrupted) as info:
            repro(workspace.project(), [], ReproOptions(jobs=2), executor=executor)
        presser.join(timeout=10)

    assert executor.cancelled.is_set(), "the stop signal did not reach the executor's cancel"
    assert info.value.exit_code == 130
    assert set(lock_of(workspace.root)["stages"]) == {"fast"}
    assert not (workspace.root / "after.txt").exists()
