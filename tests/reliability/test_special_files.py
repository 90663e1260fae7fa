"""FIFOs, sockets and the like where pipe expects data: refused by name, never waited on.

Reading a FIFO blocks until some process writes to it: `pipe add FIFO` hung forever (as `dvc add`
does). Every command runs as a real process under a timeout, so a hang fails the test instead of
stalling the suite.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Workspace

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


def _pipe(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline_engine", *args], cwd=root, capture_output=True,
                          text=True, timeout=60, check=False)


def test_adding_a_fifo_is_refused_by_name(workspace: Workspace) -> None:
    os.mkfifo(workspace.root / "queue")
    result = _pipe(workspace.root, "add", "queue")
    assert result.returncode == 1, result.stderr
    assert "'queue' is a FIFO" in result.stderr and "Traceback" not in result.stderr
    assert not (workspace.root / "queue.pipe").exists()


def test_special_files_inside_a_directory_are_skipped_as_git_skips_them(workspace: Workspace) -> None:
    workspace.write({"data": {"a.txt": "a\n", "sub": {"b.txt": "b\n"}}})
    os.mkfifo(workspace.root / "data/queue")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("data/sub/sock")  # relative to the workspace (the cwd): a socket path has ~100 bytes at most
        added = _pipe(workspace.root, "add", "data")
        status = _pipe(workspace.root, "status")
    assert added.returncode == 0, added.stderr
    assert "2 files" in added.stderr
    assert status.returncode == 0 and "up to date" in status.stderr, status.stderr


def test_a_tracked_file_replaced_by_a_fifo(workspace: Workspace) -> None:
    workspace.write({"t.txt": "tracked\n"})
    assert _pipe(workspace.root, "add", "t.txt").returncode == 0
    os.unlink(workspace.root / "t.txt")
    os.mkfifo(workspace.root / "t.txt")
    status = _pipe(workspace.root, "status")
    assert status.returncode == 1 and "'t.txt' is a FIFO" in status.stderr, status.stderr
    checkout = _pipe(workspace.root, "checkout")
    assert checkout.returncode == 1 and "'t.txt' is a FIFO" in checkout.stderr and "--force" in checkout.stderr
    assert _pipe(workspace.root, "checkout", "--force", "t.txt").returncode == 0
    assert (workspace.root / "t.txt").read_text() == "tracked\n"


def test_a_stage_whose_dep_is_a_fifo_fails_by_name_and_runs_nothing(workspace: Workspace) -> None:
    os.mkfifo(workspace.root / "feed")
    workspace.write_pipeline({"train": {"cmd": "echo ran > out.txt", "deps": ["feed"], "outs": ["out.txt"]}})
    result = _pipe(workspace.root, "repro")
    assert result.returncode != 0 and "'feed' is a FIFO" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (workspace.root / "out.txt").exists()


@pytest.mark.parametrize(("name", "commands"), [
    ("pipeline.yaml", (("status",), ("repro",))),  # not taken for "no pipeline"
    ("params.yaml", (("status",), ("dag",), ("params", "diff"))),
    ("pipeline.lock", (("status",), ("repro",))),
    (".pipe/config.yaml", (("status",), ("config", "--list"))),  # not taken for "not a project"
])
def test_a_pipeline_file_that_is_a_fifo_is_refused_by_name(
    workspace: Workspace, name: str, commands: tuple[tuple[str, ...], ...]
) -> None:
    workspace.write({"params.yaml": "lr: 0.1\n", "mk.py": "open('out.txt', 'w').write('x')\n"})
    workspace.write_pipeline({"train": {"cmd": "python3 mk.py", "params": ["lr"], "outs": ["out.txt"]}})
    assert _pipe(workspace.root, "repro").returncode == 0
    os.unlink(workspace.root / name)
    os.mkfifo(workspace.root / name)
    for command in commands:
        result = _pipe(workspace.root, *command)
        assert result.returncode == 1 and f"'{name}' is a FIFO" in result.stderr, (command, result.stderr)


def test_a_pointer_replaced_by_a_fifo_never_gets_its_data_removed(workspace: Workspace) -> None:
    workspace.write({"t.txt": "precious\n"})
    assert _pipe(workspace.root, "add", "t.txt").returncode == 0
    os.unlink(workspace.root / "t.txt.pipe")
    os.mkfifo(workspace.root / "t.txt.pipe")
    _pipe(workspace.root, "checkout")
    gc = _pipe(workspace.root, "gc", "-w", "-f")
    assert (workspace.root / "t.txt").read_text() == "precious\n", "checkout removed data whose pointer is there"
    assert gc.returncode == 1 and "'t.txt.pipe' is a FIFO" in gc.stderr, gc.stderr


def test_a_declared_metrics_file_that_is_a_fifo_is_named_not_called_absent(workspace: Workspace) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo", "metrics": [{"m.json": {"cache": False}}]}})
    os.mkfifo(workspace.root / "m.json")
    for command in (("metrics", "show"), ("metrics", "show", "m.json")):
        result = _pipe(workspace.root, *command)
        assert "'m.json' is a FIFO" in result.stderr and "does not exist" not in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("ignore", [".pipeignore", "data/.pipeignore"])
def test_a_pipeignore_that_is_a_fifo_is_refused_by_name(workspace: Workspace, ignore: str) -> None:
    workspace.write({"data": {"a.txt": "a\n"}})
    assert _pipe(workspace.root, "add", "data").returncode == 0
    os.mkfifo(workspace.root / ignore)
    for command in (("status",), ("checkout",), ("add", "data")):
        result = _pipe(workspace.root, *command)
        assert result.returncode == 1 and f"'{ignore}' is a FIFO" in result.stderr, (command, result.stderr)


@pytest.mark.parametrize("name", ["data.dvc", "dvc.yaml", "dvc.lock", ".dvc/config"])
def test_import_dvc_refuses_a_dvc_file_that_is_a_fifo_before_changing_anything(git_only: Path, name: str) -> None:
    (git_only / ".dvc").mkdir()
    (git_only / ".dvc/config").write_text("[core]\n")
    (git_only / "dvc.yaml").write_text("stages:\n  s:\n    cmd: echo\n")
    (git_only / name).unlink(missing_ok=True)
    os.mkfifo(git_only / name)
    result = _pipe(git_only, "import-dvc")
    assert result.returncode == 1 and f"'{name}' is a FIFO" in result.stderr, result.stderr
    assert not (git_only / ".pipe").exists() and not (git_only / "pipeline.yaml").exists()


def test_a_fifo_where_a_tracked_directorys_file_belongs_is_replaced_only_with_force(workspace: Workspace) -> None:
    workspace.write({"data": {"a.txt": "a\n", "b.txt": "b\n"}})
    assert _pipe(workspace.root, "add", "data").returncode == 0
    (workspace.root / "data/b.txt").unlink()
    os.mkfifo(workspace.root / "data/b.txt")
    refused = _pipe(workspace.root, "checkout")
    assert refused.returncode == 1 and "'data/b.txt' is a FIFO" in refused.stderr and "--force" in refused.stderr
    assert (workspace.root / "data/b.txt").is_fifo()
    forced = _pipe(workspace.root, "checkout", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (workspace.root / "data/b.txt").read_text() == "b\n"
