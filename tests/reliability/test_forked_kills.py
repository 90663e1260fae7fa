"""`pipe add` and `pipe checkout` of trees big enough to be shared between forked processes
(core.forked): a SIGKILL of pipe stops its children too (nothing keeps writing behind the user's
back), Ctrl-C to the terminal's process group ends in exit 130 with no temporary file, and the next
command completes with every object intact and the workspace whole."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline_engine.ops.verify import verify
from pipeline_engine.project import Project
from tests.procutil import forked_children, pipe_process, start_pipe, wait_gone
from tests.reliability.projstate import digest_tree, temp_files, write_data

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: pipe never forks"),
]

FILES = 8000  # shares of at least 2,000 files each are forked: 2 processes or more


def _project(tmp_path: Path, template: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(template, ws, symlinks=True)
    write_data(ws, FILES, seed=11)
    return ws


def _interrupt(ws: Path, how: str, reset: Callable[[], None], *args: str) -> tuple[int, str, list[int]]:
    """Start `pipe ARGS`, wait for its children, then SIGKILL it or Ctrl-C its process group;
    returns its exit code, its stderr and its children's pids."""
    for _ in range(3):  # a fast machine may finish before the poll sees a child: try again
        proc = start_pipe(*args, cwd=ws, new_session=how == "ctrl-c")
        kids = [c.pid for c in forked_children(proc)]
        if kids:
            if how == "kill":
                proc.kill()
            else:
                os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
            _, err = proc.communicate(timeout=60)
            return proc.returncode, err, kids
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        reset()  # back to where the command starts from, to try again
    pytest.fail(f"pipe {' '.join(args)} never forked a child in three runs")


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_an_interrupted_add_of_a_big_tree_stops_its_children_and_the_next_add_completes(
    tmp_path: Path, _workspace_template: Path, how: str
) -> None:
    ws = _project(tmp_path, _workspace_template)
    before = digest_tree(ws / "data")
    def reset() -> None:  # the memo too: files it knows are not read again, so nothing is shared
        shutil.rmtree(ws / ".pipe" / "cache")
        (ws / ".pipe" / "tmp" / "memo.sqlite").unlink(missing_ok=True)
        (ws / "data.pipe").unlink()

    code, err, kids = _interrupt(ws, how, reset, "add", "data")
    assert code == (-9 if how == "kill" else 130), err
    assert all(wait_gone(pid, timeout=20) for pid in kids), "a child of the interrupted pipe kept running"
    if how == "ctrl-c":
        assert "Traceback" not in err
        assert temp_files(tmp_path) == [], "Ctrl-C left temporary files"
    assert digest_tree(ws / "data") == before, "the user's files changed"
    pipe_process("add", "data", cwd=ws, check=0)
    assert temp_files(tmp_path) == []
    assert not verify(Project(ws)).corrupt
    assert "up to date" in pipe_process("status", cwd=ws, check=0).stderr


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_an_interrupted_checkout_of_a_big_tree_stops_its_children_and_the_next_checkout_completes(
    tmp_path: Path, _workspace_template: Path, how: str
) -> None:
    ws = _project(tmp_path, _workspace_template)
    before = digest_tree(ws / "data")
    pipe_process("add", "data", cwd=ws, check=0)
    shutil.rmtree(ws / "data")
    code, err, kids = _interrupt(ws, how, lambda: shutil.rmtree(ws / "data"), "checkout")
    assert code == (-9 if how == "kill" else 130), err
    assert all(wait_gone(pid, timeout=20) for pid in kids), "a child of the interrupted pipe kept running"
    if how == "ctrl-c":
        assert "Traceback" not in err
        assert temp_files(tmp_path) == [], "Ctrl-C left temporary files"
    pipe_process("checkout", cwd=ws, check=0)
    assert digest_tree(ws / "data") == before
    assert temp_files(tmp_path) == []
    assert "up to date" in pipe_process("status", cwd=ws, check=0).stderr
