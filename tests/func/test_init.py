"""pipe init."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, Workspace


def test_init_creates_control_dir_and_ignores_cache(git_only: Path, cli: Cli) -> None:
    cli.run("init")
    assert (git_only / ".pipe/config.yaml").read_text().startswith("schema: 1")
    ignored = (git_only / ".pipe/.gitignore").read_text().split()
    assert {"/cache/", "/tmp/", "/config.local.yaml"} <= set(ignored)


def test_init_twice_is_refused_without_force(workspace: Workspace, cli: Cli) -> None:
    before = workspace.snapshot()
    result = cli.run("init", exit_code=1)
    assert "already a pipe project" in result.stderr and "pipe init -f" in result.stderr
    assert workspace.snapshot() == before
    cli.run("init", "-f")


def test_init_outside_git_needs_no_scm(bare_dir: Path, cli: Cli) -> None:
    result = cli.run("init", exit_code=1)
    assert "not inside a git repository" in result.stderr and "--no-scm" in result.stderr
    assert not (bare_dir / ".pipe").exists()
    cli.run("init", "--no-scm")
    assert (bare_dir / ".pipe/config.yaml").is_file()


def test_commands_find_the_project_root_from_a_subdirectory(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.write({"sub": {"deeper": {"f.txt": "x"}}})
    monkeypatch.chdir(workspace.root / "sub" / "deeper")
    cli.run("add", "f.txt")
    assert (workspace.root / "sub/deeper/f.txt.pipe").is_file()


def test_command_outside_a_project_says_run_init(git_only: Path, cli: Cli) -> None:
    result = cli.run("status", exit_code=1)
    assert "not inside a pipe project" in result.stderr and "pipe init" in result.stderr


def test_no_scm_project_tracks_data_without_git(bare_dir: Path, cli: Cli) -> None:
    cli.run("init", "--no-scm")
    (bare_dir / "data").mkdir()
    (bare_dir / "data" / "a.csv").write_text("1")
    (bare_dir / "data" / "sub").mkdir()
    (bare_dir / "data" / "sub" / "b.csv").write_text("2")
    cli.run("add", "data/a.csv", "data/sub")
    assert not (bare_dir / "data/.gitignore").exists()
    assert "up to date: 2 tracked path(s)" in cli.run("status").stderr
    (bare_dir / "data/a.csv").unlink()
    cli.run("checkout")
    assert (bare_dir / "data/a.csv").read_text() == "1"
