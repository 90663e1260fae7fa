"""A `pipe pull` killed (SIGKILL) while it places a new directory beside the fetch leaves no half out.

The kill comes from inside the real process, right after the placing thread put a few chunks'
files into the out's temporary directory while the fetch was still running: the out itself must
not exist, and the next command that takes the project lock removes the temporary directory.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import Cli, Workspace
from tests.procutil import pipe_process

pytestmark = pytest.mark.reliability

IMAGES = {f"{i:03}.txt": f"image {i}\n" * (i + 1) for i in range(60)}

# Fetch 4 objects at a time; die (as `kill -9`) once the third batch of arrived files is placed.
_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pipeline_engine.index import download, pullplace
    download._FETCH_CHUNK = 4
    place = pullplace.PullPlacement._place
    calls = []
    def dying(self, k, positions, trusted):
        place(self, k, positions, trusted)
        if trusted:
            calls.append(k)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    pullplace.PullPlacement._place = dying
    from pipeline_engine.cli import main
    sys.argv = ["pipe", "pull"]
    main()
""")


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".pipetmp" in p.name]


def test_a_pull_killed_while_placing_leaves_no_half_out_and_the_next_command_sweeps(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    workspace.track({"data/images": IMAGES, "data/small": {"a.txt": "a\n"}})
    cli.run("push")
    workspace.commit("data and remote")
    clone = workspace.clone()
    proc = subprocess.run([sys.executable, "-c", _KILLER], cwd=clone.root, capture_output=True, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    staged = [p for p in (clone.root / "data").glob(".pipetmp-*") if p.is_dir()]
    assert any(f.is_file() for d in staged for f in d.rglob("*")), "the kill came while files were placed"
    assert not (clone.root / "data/images").exists(), "half an out is in the workspace"
    pipe_process("fetch", cwd=clone.root, check=0)  # takes the lock a killed pull left: sweeps
    assert not _temps(clone.root), "the killed pull's temporary directory outlived the next command"
    assert not (clone.root / "data/images").exists()
    pipe_process("pull", cwd=clone.root, check=0)
    assert all(clone.read(f"data/images/{n}") == text for n, text in IMAGES.items())
    assert clone.read("data/small/a.txt") == "a\n"
    assert not _temps(clone.root)
