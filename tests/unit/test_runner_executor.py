"""The LocalExecutor keeps the Executor contract: a job's result, log and live events; cancel stops
running and pending jobs, whose futures resolve as interrupted; jobs and results are plain values."""

from __future__ import annotations

import os
import pickle
import threading
import time
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import StageFailedError
from pipeline_engine.runner.executor import Executor, JobResult, LocalExecutor, StageJob
from pipeline_engine.runner.process import running_count
from tests.procutil import wait_for_file, wait_gone


class Recorder:
    """JobEvents that keep what they were told, from whichever thread."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def command(self, cmd: str) -> None:
        with self._lock:
            self.commands.append(cmd)

    def output(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)


def test_a_job_runs_in_its_wdir_with_its_env_added_to_the_executors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.setenv("FROM_PIPE_ENV", "kept")
    job = StageJob("s", 'echo "$PWD $PIPE_STAGE $FROM_PIPE_ENV" > seen.txt', root=tmp_path, wdir="sub",
                   env={"PIPE_STAGE": "s"})
    with LocalExecutor(2) as executor:
        result = executor.submit(job, Recorder()).result(timeout=30)

    assert result.returncode == 0 and not result.interrupted
    assert result.outs is None, "a local run leaves the outs in the workspace for the client to hash"
    assert result.log_path is None and result.seconds > 0
    seen = (tmp_path / "sub" / "seen.txt").read_text().split()
    assert seen == [str(tmp_path / "sub"), "s", "kept"]


def test_a_cmd_list_stops_at_the_failing_item_which_the_result_names(tmp_path: Path) -> None:
    events = Recorder()
    job = StageJob("s", ("true", "exit 4", "touch never"), root=tmp_path)
    with LocalExecutor(1) as executor:
        result = executor.submit(job, events).result(timeout=30)

    assert (result.returncode, result.command, result.interrupted) == (4, "exit 4", False)
    assert events.commands == ["true", "exit 4"]
    assert not (tmp_path / "never").exists()


def test_a_logged_job_writes_its_log_and_streams_its_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    events = Recorder()
    log = tmp_path / "logs" / "s.log"
    job = StageJob("s", 'echo one\necho "unbuffered=$PYTHONUNBUFFERED" >&2', root=tmp_path, log_path=log)
    with LocalExecutor(1) as executor:
        result = executor.submit(job, events).result(timeout=30)

    assert result.returncode == 0 and result.log_path == log
    assert log.read_text() == "one\nunbuffered=1\n"
    assert events.lines == ["one\n", "unbuffered=1\n"]


def test_a_running_job_leaves_a_record_for_orphans_which_goes_when_it_ends(tmp_path: Path) -> None:
    records = tmp_path / "running"
    job = StageJob("s", "echo x > started; for i in $(seq 500); do [ -e go ] && break; sleep 0.01; done",
                   root=tmp_path, record_dir=records)
    with LocalExecutor(1) as executor:
        future = executor.submit(job, Recorder())
        wait_for_file(tmp_path / "started")
        assert [p.suffix for p in records.iterdir()] == [".json"]
        (tmp_path / "go").touch()
        assert future.result(timeout=30).returncode == 0
    assert list(records.iterdir()) == []


def test_cancel_stops_a_running_sleep_and_its_result_says_interrupted(tmp_path: Path) -> None:
    job = StageJob("s", 'sleep 30 &\necho $! > grandchild\necho $$ > child\nwait\ntouch ran', root=tmp_path)
    executor: Executor = LocalExecutor(2)
    with executor:
        future = executor.submit(job, Recorder())
        pids = [int(wait_for_file(tmp_path / name)) for name in ("child", "grandchild")]
        started = time.monotonic()
        executor.cancel()
        result = future.result(timeout=10)

    assert result.interrupted and result.returncode != 0
    assert time.monotonic() - started < 5
    assert all(wait_gone(pid) for pid in pids)
    assert not (tmp_path / "ran").exists()
    assert running_count() == 0


def test_cancel_stops_this_executors_jobs_only(tmp_path: Path) -> None:
    with LocalExecutor(1) as mine, LocalExecutor(1) as other:
        stopped = mine.submit(StageJob("a", "echo x > a.started; sleep 30", root=tmp_path), Recorder())
        running = other.submit(StageJob("b", "echo x > b.started; for i in $(seq 500); do [ -e go ] && break; "
                                            "sleep 0.01; done", root=tmp_path), Recorder())
        for name in ("a", "b"):
            wait_for_file(tmp_path / f"{name}.started")
        mine.cancel()
        assert stopped.result(timeout=10).interrupted
        assert not running.done(), "cancelling one executor stopped another's job"
        (tmp_path / "go").touch()
        assert running.result(timeout=10).returncode == 0


def test_cancel_resolves_pending_jobs_as_interrupted_without_running_them(tmp_path: Path) -> None:
    with LocalExecutor(1) as executor:
        running = executor.submit(StageJob("a", "echo x > a.started; sleep 30", root=tmp_path), Recorder())
        pending = executor.submit(StageJob("b", "touch b.ran", root=tmp_path), Recorder())
        wait_for_file(tmp_path / "a.started")
        executor.cancel()
        later = executor.submit(StageJob("c", "touch c.ran", root=tmp_path), Recorder())
        results = [f.result(timeout=10) for f in (running, pending, later)]

    assert all(r.interrupted for r in results), results
    assert not (tmp_path / "b.ran").exists() and not (tmp_path / "c.ran").exists()


def test_a_command_that_cannot_start_fails_through_the_future(tmp_path: Path) -> None:
    with LocalExecutor(1) as executor:
        future = executor.submit(StageJob("s", "true", root=tmp_path, wdir="missing"), Recorder())
        with pytest.raises(StageFailedError, match="cannot start the command"):
            future.result(timeout=30)


def test_close_waits_for_running_jobs_and_then_refuses_new_ones(tmp_path: Path) -> None:
    executor = LocalExecutor(1)
    future = executor.submit(StageJob("s", "sleep 0.2; touch done", root=tmp_path), Recorder())
    executor.close()
    assert future.done() and (tmp_path / "done").exists()
    with pytest.raises(RuntimeError):
        executor.submit(StageJob("t", "true", root=tmp_path), Recorder())


def test_jobs_and_results_are_plain_values_a_remote_executor_can_ship(tmp_path: Path) -> None:
    dep = PathRecord("data", Oid("0123456789abcdef0123456789abcdef.dir"), 10, 2)
    out = PathRecord("model.bin", Oid("fedcba9876543210fedcba9876543210"), 3, None, True)
    job = StageJob("train", ("a", "b"), root=tmp_path, wdir="src", env={"PIPE_STAGE": "train"},
                   log_path=tmp_path / "train.log", deps=(dep,), outs=("model.bin",), resources={"cpus": 2})
    result = JobResult(0, "b", seconds=1.5, log_path=tmp_path / "train.log", outs=(out,))

    assert pickle.loads(pickle.dumps(job)) == job
    assert pickle.loads(pickle.dumps(result)) == result
    assert job.cwd == tmp_path / "src"
    assert StageJob("s", "true", root=tmp_path).cwd == tmp_path


def test_local_jobs_run_at_once_up_to_jobs(tmp_path: Path) -> None:
    # Each command waits (bounded) until both started: with jobs=2 both finish quickly.
    script = 'touch "$PIPE_STAGE.started"\nfor i in $(seq 500); do [ $(ls *.started | wc -l) -ge 2 ] && exit 0; ' \
             "sleep 0.01; done\nexit 1"
    with LocalExecutor(2) as executor:
        futures = [executor.submit(StageJob(n, script, root=tmp_path, env={"PIPE_STAGE": n}), Recorder())
                   for n in "ab"]
        assert [f.result(timeout=30).returncode for f in futures] == [0, 0]
    assert os.listdir(tmp_path) and running_count() == 0
