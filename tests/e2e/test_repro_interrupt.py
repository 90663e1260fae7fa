"""Stopping `pipe repro` (a real process): Ctrl-C, SIGTERM and SIGHUP stop the children, keep finished
stages and exit 128+signum; after a SIGKILL, the next repro stops (or waits for) the stage command
the killed pipe left running before it runs anything."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import Workspace
from tests.procutil import is_running, pipe_process, start_pipe, wait_for_file, wait_gone

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_ctrl_c_stops_children_keeps_finished_stages_and_exits_130(
    workspace: Workspace, sig: signal.Signals, code: int
) -> None:
    workspace.write_pipeline({
        "fast": {"cmd": "echo fast > fast.txt", "outs": ["fast.txt"]},
        "slow": {"cmd": "echo $$ > slow.pid; sleep 60 & echo $! > child.pid; wait", "deps": ["fast.txt"],
                 "outs": ["slow.txt"]},
    })
    # start_pipe restores SIGINT's default: a suite run as a background job inherits it ignored,
    # and then `pipe` rightly ignored this test's Ctrl-C (the 30 s timeouts seen in such runs).
    proc = start_pipe("repro", "-j", "2", cwd=workspace.root)
    wait_for_file(workspace.root / "child.pid", timeout=30)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    lock = yaml.safe_load((workspace.root / "pipeline.lock").read_text())
    assert list(lock["stages"]) == ["fast"]
    for name in ("slow.pid", "child.pid"):
        pid = int((workspace.root / name).read_text())
        assert wait_gone(pid, timeout=10), f"{name} process {pid} still runs"
    leftovers = [p.name for p in workspace.root.rglob("*") if ".pipetmp-" in p.name or p.name.endswith(".tmp")]
    assert not leftovers and not (workspace.root / "slow.txt").exists()
    assert not list((workspace.root / ".pipe" / "tmp" / "running").glob("*")), "run records left behind"


def test_sigterm_during_a_single_job_repro_exits_143_and_the_rerun_completes(workspace: Workspace) -> None:
    workspace.write_pipeline({"s": {"cmd": "echo $$ > s.pid; sleep 60; echo done > o", "outs": ["o"]}})
    proc = start_pipe("repro", "-j", "1", cwd=workspace.root)
    pid = int(wait_for_file(workspace.root / "s.pid", timeout=30))
    proc.terminate()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert wait_gone(pid, timeout=10)
    workspace.write_pipeline({"s": {"cmd": "echo done > o", "outs": ["o"]}})
    pipe_process("repro", cwd=workspace.root, check=0)
    assert workspace.read("o") == "done\n"


COUNTER = 'echo $$ > "{tmp}/c.pid"; for i in $(seq 10); do echo $i >> out.txt; sleep 0.2; done; touch "{tmp}/done.$$"'


def _kill_repro_mid_stage(workspace: Workspace, tmp_path: Path) -> int:
    """The issue's reproduction: SIGKILL `pipe repro` while its stage writes out.txt; return the stage's PID."""
    workspace.write_pipeline({"c": {
        "cmd": COUNTER.format(tmp=tmp_path), "outs": ["out.txt"],
    }})
    proc = start_pipe("repro", cwd=workspace.root, new_session=True)  # like `setsid pipe repro &`
    stage_pid = int(wait_for_file(tmp_path / "c.pid", timeout=30))
    deadline = time.monotonic() + 30
    while not (workspace.root / "out.txt").exists() or len(workspace.read("out.txt").split()) < 2:
        assert time.monotonic() < deadline, "the stage never wrote"
        time.sleep(0.02)
    proc.kill()
    proc.communicate(timeout=30)
    assert is_running(stage_pid), "the stage should outlive a SIGKILLed pipe (that is the problem)"
    return stage_pid


def test_rerun_after_sigkill_stops_the_orphaned_stage_command_first(workspace: Workspace, tmp_path: Path) -> None:
    stage_pid = _kill_repro_mid_stage(workspace, tmp_path)

    rerun = pipe_process("repro", cwd=workspace.root)

    assert rerun.returncode == 0, rerun.stderr
    assert "stage 'c'" in rerun.stderr and f"process group {stage_pid}" in rerun.stderr
    assert not is_running(stage_pid)
    assert not (tmp_path / f"done.{stage_pid}").exists(), "the orphan was not stopped, it finished"
    assert workspace.read("out.txt").split() == [str(i) for i in range(1, 11)]
    status = pipe_process("status", cwd=workspace.root)
    assert status.returncode == 0 and "up to date" in status.stdout + status.stderr, status
    assert not list((workspace.root / ".pipe" / "tmp" / "running").glob("*"))


def test_rerun_with_wait_lets_the_orphaned_stage_command_finish(workspace: Workspace, tmp_path: Path) -> None:
    stage_pid = _kill_repro_mid_stage(workspace, tmp_path)

    rerun = pipe_process("repro", "--wait", cwd=workspace.root)

    assert rerun.returncode == 0, rerun.stderr
    assert "stage 'c'" in rerun.stderr and f"process group {stage_pid}" in rerun.stderr
    assert (tmp_path / f"done.{stage_pid}").exists(), "--wait must let the orphan finish, not stop it"
    assert workspace.read("out.txt").split() == [str(i) for i in range(1, 11)]


def test_a_stale_run_record_of_a_reused_pid_stops_nothing(workspace: Workspace) -> None:
    """A record whose PID now belongs to another process (different create time) is dropped, not killed."""
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        running = workspace.root / ".pipe" / "tmp" / "running"
        running.mkdir(parents=True, exist_ok=True)
        (running / f"{bystander.pid}.json").write_text(
            f'{{"schema": 1, "name": "c", "pid": {bystander.pid}, "pgid": {bystander.pid}, '
            '"create_time": 1000.0, "cmd": "sleep 60"}'
        )
        workspace.write_pipeline({"c": {"cmd": "echo hi > o", "outs": ["o"]}})
        rerun = pipe_process("repro", cwd=workspace.root)
        assert rerun.returncode == 0, rerun.stderr
        assert "stopping" not in rerun.stderr
        assert bystander.poll() is None, "an unrelated process was killed"
        assert not list(running.glob("*"))
    finally:
        bystander.kill()
        bystander.wait()


def holds_open(pid: int, path: Path) -> bool:
    """True when process `pid` has `path` open."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.path.realpath(fd) == str(path) for fd in fds.iterdir())
    except OSError:
        return False


def test_repro_wait_blocks_until_the_project_lock_is_released(workspace: Workspace, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    workspace.write_pipeline({"s": {"cmd": f"touch {marker} && echo > o", "outs": ["o"]}})
    project = workspace.project()
    lock_path = (workspace.root / ".pipe" / "tmp" / "lock").resolve()
    with project.mutex("pipe test (holder)"):
        proc = start_pipe("repro", "--wait", cwd=workspace.root)
        deadline = time.monotonic() + 20
        while not holds_open(proc.pid, lock_path):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        assert not marker.exists()
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert marker.exists()
