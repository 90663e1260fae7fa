"""The hooks `pipe install` writes, fired by real git commands: checkout, commit, push."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from tests.conftest import Workspace
from tests.procutil import pipe_process

pytestmark = pytest.mark.e2e


def _git(root: Path, *args: str, check: int = 0) -> subprocess.CompletedProcess[str]:
    """A git command as a user runs it (hooks fire); asserts its exit code."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == check, f"git {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _two_branches(workspace: Workspace) -> None:
    """main tracks data.csv as v1, branch `other` as v2; main is checked out."""
    workspace.track({"data.csv": "v1\n"})
    workspace.commit("v1")
    workspace.git("checkout", "-q", "-b", "other")
    workspace.track({"data.csv": "v2\n"})
    workspace.commit("v2")
    workspace.git("checkout", "-q", "main")
    workspace.pipe("checkout")


def test_branch_checkout_brings_that_branchs_data(workspace: Workspace) -> None:
    _two_branches(workspace)
    pipe_process("install", cwd=workspace.root, check=0)

    _git(workspace.root, "checkout", "other")
    assert workspace.read("data.csv") == "v2\n"
    _git(workspace.root, "checkout", "main")
    assert workspace.read("data.csv") == "v1\n"


def test_checking_out_a_file_does_not_run_pipe_checkout(workspace: Workspace) -> None:
    _two_branches(workspace)
    pipe_process("install", cwd=workspace.root, check=0)

    _git(workspace.root, "checkout", "other", "--", "data.csv.pipe")  # post-checkout flag 0

    assert workspace.read("data.csv") == "v1\n"


def test_commit_shows_pipe_status_and_is_not_blocked_by_it(workspace: Workspace) -> None:
    workspace.track({"data.csv": "v1\n"})
    workspace.commit("v1")
    pipe_process("install", cwd=workspace.root, check=0)
    workspace.write({"data.csv": "changed\n", "readme.md": "hello\n"})

    proc = _git(workspace.root, "commit", "-q", "--allow-empty", "-m", "with hook")

    assert "data.csv" in proc.stdout + proc.stderr and "modified" in proc.stdout + proc.stderr


def test_an_existing_hook_still_runs_and_its_exit_code_still_counts(workspace: Workspace) -> None:
    hook = workspace.root / ".git/hooks/pre-commit"
    hook.write_text('#!/bin/sh\necho "user hook ran" > user-hook.log\nexit 1\n')
    hook.chmod(0o755)
    workspace.track({"data.csv": "v1\n"})
    pipe_process("install", cwd=workspace.root, check=0)

    proc = _git(workspace.root, "commit", "-q", "--allow-empty", "-m", "blocked", check=1)

    assert workspace.read("user-hook.log") == "user hook ran\n"
    assert "up to date" in proc.stderr  # pipe status ran first
    assert _git(workspace.root, "log", "--oneline").stdout.count("\n") == 1  # only the init commit

    pipe_process("install", "--uninstall", cwd=workspace.root, check=0)
    assert hook.read_text() == '#!/bin/sh\necho "user hook ran" > user-hook.log\nexit 1\n'


def test_git_push_pushes_the_data_to_the_pipe_remote(workspace: Workspace, tmp_path: Path) -> None:
    store = workspace.add_remote(tmp_path / "pipe-store")
    bare = tmp_path / "origin.git"
    _git(tmp_path, "init", "-q", "--bare", str(bare))
    workspace.git("remote", "add", "origin", str(bare))
    workspace.track({"data.csv": "pushed by the hook\n"})
    workspace.commit("data")
    pipe_process("install", cwd=workspace.root, check=0)

    _git(workspace.root, "push", "-q", "origin", "main")

    assert (store / oid_to_relpath(hash_bytes(b"pushed by the hook\n"))).is_file()


def test_hooks_of_a_project_in_a_subdirectory_run_there(git_only: Path) -> None:
    project = git_only / "proj"
    project.mkdir()
    pipe_process("init", cwd=project, check=0)
    (project / "data.csv").write_text("v1\n")
    pipe_process("add", "data.csv", cwd=project, check=0)
    _git(git_only, "add", "-A")
    _git(git_only, "commit", "-q", "-m", "v1")
    _git(git_only, "checkout", "-q", "-b", "other")
    (project / "data.csv").write_text("v2\n")
    pipe_process("add", "data.csv", cwd=project, check=0)
    pipe_process("install", cwd=project, check=0)

    proc = _git(git_only, "commit", "-q", "-am", "v2")  # the hook's pipe status runs in proj/
    assert "up to date" in proc.stderr
    _git(git_only, "checkout", "main")
    assert (project / "data.csv").read_text() == "v1\n"
