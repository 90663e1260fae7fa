"""pipe install [--uninstall]: pipe's lines in the post-checkout, pre-commit and pre-push hooks.

What the hooks do when git runs them is tested in tests/e2e/test_hooks.py; here, what is written:
idempotent, existing hooks kept, `core.hooksPath` honoured, uninstall restoring the original bytes.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from pipeline_engine.errors import ScmError
from pipeline_engine.project import Project
from pipeline_engine.scm.hooks import add_block, hook_block, remove_block
from tests.conftest import Cli, Workspace

HOOKS = ("post-checkout", "pre-commit", "pre-push")
USER_HOOK = '#!/bin/bash\nset -e\necho "user hook" >> hook.log\nexit 0\n'


def _hooks(workspace: Workspace) -> Path:
    return workspace.root / ".git" / "hooks"


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in directory.iterdir() if not p.name.endswith(".sample")}


def test_install_creates_three_executable_hooks_running_this_python(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("install")

    for hook, command in zip(HOOKS, ("checkout", "status", "push"), strict=True):
        path = _hooks(workspace) / hook
        text = path.read_text()
        assert text.startswith("#!/bin/sh\n# >>> pipe (project: .) >>>\n")
        assert f"{sys.executable} -m pipeline_engine {command}" in text
        assert os.access(path, os.X_OK)
        assert f"{hook}: created" in result.stderr
    assert "needs a default remote" in result.stderr  # pre-push would stop every git push


def test_install_does_not_warn_when_a_default_remote_is_set(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    result = cli.run("install")

    assert "remote" not in result.stderr


def test_installing_twice_changes_nothing(workspace: Workspace, cli: Cli) -> None:
    cli.run("install")
    before = _snapshot(_hooks(workspace))

    result = cli.run("install")

    assert _snapshot(_hooks(workspace)) == before
    assert result.stderr.count("already installed") == 3


def test_existing_hook_is_kept_and_uninstall_restores_its_bytes_and_mode(workspace: Workspace, cli: Cli) -> None:
    pre_commit = _hooks(workspace) / "pre-commit"
    pre_commit.write_text(USER_HOOK)
    pre_commit.chmod(0o750)

    cli.run("install")
    text = pre_commit.read_text()
    assert text.startswith("#!/bin/bash\n# >>> pipe (project: .) >>>\n")  # before the script's own `exit`
    assert text.endswith('echo "user hook" >> hook.log\nexit 0\n')

    result = cli.run("install", "--uninstall")

    assert pre_commit.read_text() == USER_HOOK
    assert stat.S_IMODE(pre_commit.stat().st_mode) == 0o750
    assert not (_hooks(workspace) / "post-checkout").exists() and not (_hooks(workspace) / "pre-push").exists()
    assert "pre-commit: pipe's lines removed; the rest of the hook kept" in result.stderr


def test_uninstall_without_install_touches_nothing(workspace: Workspace, cli: Cli) -> None:
    (_hooks(workspace) / "pre-push").write_text(USER_HOOK)
    before = _snapshot(_hooks(workspace))

    result = cli.run("install", "--uninstall")

    assert _snapshot(_hooks(workspace)) == before
    assert result.stderr.count("not installed") == 3


def test_core_hooks_path_is_honoured(workspace: Workspace, cli: Cli) -> None:
    workspace.git("config", "core.hooksPath", "githooks")

    cli.run("install")

    assert sorted(os.listdir(workspace.root / "githooks")) == sorted(HOOKS)
    assert not (_hooks(workspace) / "pre-commit").exists()
    cli.run("install", "--uninstall")
    assert os.listdir(workspace.root / "githooks") == []


def test_a_hook_in_another_language_is_refused_and_no_hook_is_written(workspace: Workspace, cli: Cli) -> None:
    (_hooks(workspace) / "pre-push").write_text("#!/usr/bin/env python3\nprint('checks')\n")
    before = _snapshot(_hooks(workspace))

    result = cli.run("install", exit_code=1)

    assert "pre-push" in result.stderr and "python3" in result.stderr
    assert _snapshot(_hooks(workspace)) == before  # post-checkout and pre-commit were not created either


def test_a_project_in_a_subdirectory_gets_its_own_block(workspace: Workspace, cli: Cli) -> None:
    sub = workspace.root / "sub"
    sub.mkdir()
    cli.run("install")
    Project.init(sub)
    assert workspace.monkeypatch is not None
    workspace.monkeypatch.chdir(sub)
    cli.run("install")

    text = (_hooks(workspace) / "pre-commit").read_text()
    assert "# >>> pipe (project: .) >>>" in text and "# >>> pipe (project: sub) >>>" in text
    assert "cd sub ||" in text
    cli.run("install", "--uninstall")
    assert "project: sub" not in (_hooks(workspace) / "pre-commit").read_text()
    assert "project: ." in (_hooks(workspace) / "pre-commit").read_text()


def test_a_project_without_git_cannot_install(bare_dir: Path, cli: Cli) -> None:
    cli.run("init", "--no-scm")

    result = cli.run("install", exit_code=1)

    assert "not in a git repository" in result.stderr


# ---- the text functions (scm/hooks.py) --------------------------------------------------------------


def test_block_goes_after_the_shebang_and_comes_out_exactly() -> None:
    block = hook_block("pre-commit", python="/venv/bin/python", project_dir=".")
    original = "#!/bin/sh -e\n# lint\nexec make lint\n"

    added = add_block(original, block, project_dir=".", source="pre-commit")

    assert added == "#!/bin/sh -e\n" + block + "# lint\nexec make lint\n"
    assert add_block(added, block, project_dir=".", source="pre-commit") == added
    assert remove_block(added, project_dir=".", source="pre-commit") == original


def test_a_script_without_shebang_is_a_shell_script() -> None:
    block = hook_block("pre-push", python="/venv/bin/python", project_dir=".")

    added = add_block("make test\n", block, project_dir=".", source="pre-push")

    assert added == block + "make test\n"
    assert remove_block(added, project_dir=".", source="pre-push") == "make test\n"


def test_a_hook_holding_only_pipes_block_is_removed_whole() -> None:
    block = hook_block("post-checkout", python="/venv/bin/python", project_dir=".")

    assert remove_block(add_block(None, block, project_dir=".", source="h"), project_dir=".", source="h") is None


def test_a_damaged_block_is_an_error_naming_the_hook() -> None:
    block = hook_block("pre-commit", python="/venv/bin/python", project_dir=".")
    damaged = add_block(None, block, project_dir=".", source="h").replace("# <<< pipe (project: .) <<<\n", "")

    with pytest.raises(ScmError, match="pre-commit"):
        remove_block(damaged, project_dir=".", source=".git/hooks/pre-commit")


def test_an_old_block_is_replaced_in_place() -> None:
    old = hook_block("pre-commit", python="/old/python", project_dir=".")
    new = hook_block("pre-commit", python="/new/python", project_dir=".")
    script = "#!/bin/sh\n" + old + "echo mine\n"

    assert add_block(script, new, project_dir=".", source="h") == "#!/bin/sh\n" + new + "echo mine\n"
