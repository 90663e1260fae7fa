"""Ctrl-C during `pipe repro` (a real process): children stop, finished stages are kept, exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import Workspace

pytestmark = pytest.mark.e2e


def wait_for(path: Path, timeout: float = 20.0) -> None:
    """Wait for a real process to write a line into `path`."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_ctrl_c_stops_children_keeps_finished_stages_and_exits_130(workspace: Workspace) -> None:
    workspace.write_pipeline({
        "fast": {"cmd": "echo fast > fast.txt", "outs": ["fast.txt"]},
        "slow": {"cmd": "echo $$ > slow.pid; sleep 60 & echo $! > child.pid; wait", "deps": ["fast.txt"],
                 "outs": ["slow.txt"]},
    })
    proc = subprocess.Popen([sys.executable, "-m", "pipeline_engine", "repro", "-j", "2"], cwd=workspace.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(workspace.root / "child.pid")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    lock = yaml.safe_load((workspace.root / "pipeline.lock").read_text())
    assert list(lock["stages"]) == ["fast"]
    for name in ("slow.pid", "child.pid"):
        pid = int((workspace.root / name).read_text())
        deadline = time.monotonic() + 10
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_alive(pid), f"{name} process {pid} still runs"
    leftovers = [p.name for p in workspace.root.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers and not (workspace.root / "slow.txt").exists()


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
        proc = subprocess.Popen([sys.executable, "-m", "pipeline_engine", "repro", "--wait"],
                                cwd=workspace.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not holds_open(proc.pid, lock_path):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        assert not marker.exists()
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert marker.exists()
