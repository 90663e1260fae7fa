"""`pipe install` and a hook that is a symbolic link: a hooks directory can come through git (core.hooksPath
pointing at a committed `.githooks/` or `.husky/`), and a link there may point at any file of the user's.

pipe read the link's target and wrote it back, with its lines added, as a plain file in the link's
place: a private key or dotfile copied into the work tree, one `git add` away from being pushed.
"""

from __future__ import annotations

import pytest

from tests.conftest import Workspace

pytestmark = pytest.mark.reliability


def test_a_linked_hook_is_never_followed(workspace: Workspace) -> None:
    secret = workspace.root.parent / "id_rsa"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n")
    hooks = workspace.root / ".githooks"
    hooks.mkdir()
    (hooks / "pre-commit").symlink_to(secret)
    workspace.git("config", "core.hooksPath", ".githooks")

    result = workspace.pipe("install", exit_code=1)

    assert ".githooks/pre-commit" in result.stderr and "symbolic link" in result.stderr
    assert (hooks / "pre-commit").is_symlink()
    assert sorted(p.name for p in hooks.iterdir()) == ["pre-commit"]  # no hook written, all or nothing
    assert secret.read_text() == "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"

    # nothing of pipe's can be in it: --uninstall leaves it alone and goes on
    workspace.pipe("install", "--uninstall")
    assert (hooks / "pre-commit").is_symlink() and secret.read_text().startswith("-----BEGIN")
