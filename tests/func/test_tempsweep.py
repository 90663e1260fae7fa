"""Temporary files of killed pipe processes: removed by the next command that takes the project lock
after an unclean exit, and by gc; never a live process's temp file nor a user's own file."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, Workspace

OID = "0123456789abcdef0123456789abcdef"


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


def plant(workspace: Workspace, dead: int, live: int) -> tuple[list[Path], list[Path]]:
    """Temp files as killed (dead) and running (live) pipes leave them; returns (should go, should stay)."""
    objects = workspace.root / ".pipe" / "cache" / "objects"
    (objects / "01").mkdir(parents=True, exist_ok=True)
    (objects / "tmp").mkdir(parents=True, exist_ok=True)
    (workspace.root / "data" / "sub").mkdir(parents=True)
    (workspace.root / "data" / "sub" / "kept.csv").write_text("user data\n")
    gone = [
        objects / "01" / f".pipetmp-{dead}-0a1b2c3d",
        objects / "01" / f".{OID[2:]}.{dead}-0.tmp",  # the store's earlier temp name
        objects / "tmp" / f"{OID}.{dead}-0a1b2c3d.part",  # an earlier download name
        workspace.root / "data" / "sub" / f".pipetmp-{dead}-00ff00ff",
        workspace.root / f".pipetmp-{dead}-11111111",
        workspace.root / ".pipe" / "tmp" / f".pipetmp-{dead}-22222222",
    ]
    stay = [
        objects / "01" / f".pipetmp-{live}-0a1b2c3d",
        workspace.root / "data" / f".pipetmp-{live}-33333333",
        workspace.root / "data" / f".report.{dead}-1.tmp",  # a user's file: earlier names count only in the cache
        workspace.root / "data" / f"scan.{dead}-0a1b2c3d.part",
        workspace.root / "data" / "sub" / "kept.csv",
    ]
    for path in gone + stay:
        if not path.exists():
            path.write_bytes(b"partial")
    return gone, stay


def mark_unclean(workspace: Workspace, pid: int) -> None:
    """What a pipe killed while holding the project lock leaves in the lock file."""
    (workspace.root / ".pipe" / "tmp" / "lock").write_text(f"pid {pid}: pipe add data\n")


def test_next_locking_command_after_an_unclean_exit_removes_dead_processes_temp_files(
    workspace: Workspace, cli: Cli, live_pid: int
) -> None:
    dead = dead_pid()
    gone, stay = plant(workspace, dead, live_pid)
    mark_unclean(workspace, dead)

    cli.run("checkout")

    assert [p for p in gone if p.exists()] == []
    assert [p for p in stay if not p.exists()] == []
    assert (workspace.root / ".pipe" / "tmp" / "lock").read_text() == "", "a clean exit clears the marker"


def test_after_a_clean_exit_nothing_is_swept_but_gc_sweeps(workspace: Workspace, cli: Cli, live_pid: int) -> None:
    dead = dead_pid()
    gone, stay = plant(workspace, dead, live_pid)

    cli.run("checkout")
    assert all(p.exists() for p in gone), "the common case must not walk the project"

    cli.run("gc", "-w", "-f")
    assert [p for p in gone if p.exists()] == []
    assert [p for p in stay if not p.exists()] == []


def test_a_temp_directory_is_removed_whole_and_symlinks_are_not_followed(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    dead = dead_pid()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f".pipetmp-{dead}-44444444").write_text("not ours to delete\n")
    (workspace.root / "link").symlink_to(outside, target_is_directory=True)
    tempdir = workspace.root / f".pipetmp-{dead}-55555555"
    (tempdir / "deep").mkdir(parents=True)
    (tempdir / "deep" / "f").write_text("x")
    mark_unclean(workspace, dead)

    cli.run("checkout")

    assert not tempdir.exists()
    assert (outside / f".pipetmp-{dead}-44444444").exists()
