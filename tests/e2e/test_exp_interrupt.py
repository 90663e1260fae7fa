"""`pipe exp run` as a real process: Ctrl-C stops running experiments and leaves them queued; a failed
experiment exits 1 naming it, and the others are recorded."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.procutil import pipe_process, start_pipe

pytestmark = pytest.mark.e2e

# train: marks that it started (marks/started-<lr>), sleeps for lr 0.3 and 0.4, fails for lr 0.9.
TRAIN = ("python -c \"import yaml, pathlib, time; lr = yaml.safe_load(open('params.yaml'))['lr'];"
         " pathlib.Path(r'MARKS', f'started-{lr}').touch(); time.sleep(60 if lr in (0.3, 0.4) else 0);"
         " assert lr != 0.9; open('m.json', 'w').write('{\\\"lr\\\": %s}' % lr)\"")


def _project(ws: Workspace, marks: Path) -> None:
    marks.mkdir()
    ws.write({"params.yaml": "lr: 0.1\n"})
    ws.write_pipeline({"train": {"cmd": TRAIN.replace("MARKS", str(marks)), "params": ["lr"],
                                 "metrics": [{"m.json": {"cache": False}}]}})
    ws.commit("baseline")


def _refs(ws: Workspace) -> list[str]:
    return ws.git("for-each-ref", "--format=%(refname)", "refs/exps").split()


def test_ctrl_c_during_run_all_stops_running_experiments_and_keeps_them_queued(
    workspace: Workspace, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    _project(workspace, marks)
    pipe_process("exp", "run", "--queue", "-S", "lr=0.2,0.3,0.4", cwd=workspace.root, check=0)
    proc = start_pipe("exp", "run", "--run-all", "-j", "2", cwd=workspace.root)
    deadline = time.monotonic() + 90
    while not ((marks / "started-0.3").exists() and (marks / "started-0.4").exists()):
        assert time.monotonic() < deadline and proc.poll() is None, "the experiments never started"
        time.sleep(0.05)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 30, "the sleeping stages were not stopped"
    assert "interrupted" in err and "Traceback" not in err
    assert len(_refs(workspace)) == 1  # lr=0.2 finished before the signal
    status = pipe_process("queue", "status", cwd=workspace.root, check=0).stdout
    assert status.count("queued") == 2, status
    assert not list((workspace.root / ".pipe" / "tmp" / "exps" / "run").iterdir())
    assert "exps" not in workspace.git("worktree", "list")


def test_a_failed_experiment_exits_1_naming_it_and_the_rest_are_recorded(workspace: Workspace, tmp_path: Path) -> None:
    _project(workspace, tmp_path / "marks")
    done = pipe_process("exp", "run", "-n", "sweep", "-S", "lr=0.9,0.2", cwd=workspace.root, check=1)
    assert "experiment 'sweep-1' failed" in done.stderr and "1 of 2 experiment(s) failed" in done.stderr
    assert "pipe queue logs sweep-1" in done.stderr
    assert [r.rsplit("/", 1)[1] for r in _refs(workspace)] == ["sweep-2"]
    log = pipe_process("queue", "logs", "sweep-1", cwd=workspace.root, check=0).stdout
    assert "AssertionError" in log or "exited" in log


def test_queue_start_runs_in_the_background_and_kill_stops_one_experiment(workspace: Workspace, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    _project(workspace, marks)
    pipe_process("exp", "run", "--queue", "-n", "s", "-S", "lr=0.2,0.3", cwd=workspace.root, check=0)
    started = pipe_process("queue", "start", "-j", "2", cwd=workspace.root, check=0)
    assert "started a worker" in started.stderr
    deadline = time.monotonic() + 90
    while not (marks / "started-0.3").exists():
        assert time.monotonic() < deadline, "the background worker never ran 's-2'"
        time.sleep(0.05)
    assert "running" in pipe_process("queue", "status", cwd=workspace.root, check=0).stdout
    pipe_process("queue", "kill", "s-2", cwd=workspace.root, check=0)
    # `logs -f` follows the experiment until it ends (killed: well before its 60 s sleep)
    followed = pipe_process("queue", "logs", "-f", "s-2", cwd=workspace.root, check=0).stdout
    assert "killed" in followed
    status = pipe_process("queue", "status", cwd=workspace.root, check=0).stdout
    assert "failed" in status and "queued" not in status and "running" not in status
    assert [r.rsplit("/", 1)[1] for r in _refs(workspace)] == ["s-1"]
    assert "no running experiment 's-2'" in pipe_process("queue", "kill", "s-2", cwd=workspace.root, check=1).stderr


def test_ctrl_c_during_a_plain_exp_run_records_and_queues_nothing(workspace: Workspace, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    _project(workspace, marks)
    proc = start_pipe("exp", "run", "-S", "lr=0.3,0.2", cwd=workspace.root)
    deadline = time.monotonic() + 90
    while not (marks / "started-0.3").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the experiment never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stay queued" not in err and "--run-all" not in err  # nothing is queued: the hint said it was
    assert _refs(workspace) == []
    assert "lr" not in pipe_process("queue", "status", cwd=workspace.root, check=0).stdout
    assert workspace.git("for-each-ref", "refs/pipe") == ""
