"""A mistyped foreach/matrix group name gets the group suggested, as a mistyped stage name does
(README: "A mistyped command or stage name gets a suggestion"); 'gne' for group 'gen' got none."""

from __future__ import annotations

import pytest

from tests.conftest import Workspace


@pytest.mark.parametrize("command", ["status", "checkout", "push"])
def test_a_mistyped_group_name_suggests_the_group(workspace: Workspace, command: str) -> None:
    workspace.write_pipeline({"gen": {"foreach": ["a", "b"], "do": {"cmd": "echo ${item}"}}})

    result = workspace.pipe(command, "gne", exit_code=1)

    assert "'gne' is neither a stage nor a path (did you mean 'gen'?)" in result.stderr
