"""A few lines of pipeline.yaml (from git) must not make every command expand a million stages: a
100x100x100 `matrix` ran `pipe status` for minutes in over a gigabyte. One foreach/matrix generates at
most `MAX_GENERATED` stages; past that it is a clean error naming the stage, before anything is built."""

from __future__ import annotations

import time

import pytest

from pipeline_engine.pipeline.interpolate import MAX_GENERATED
from tests.conftest import Workspace

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("body", [
    {"matrix": {"a": list(range(100)), "b": list(range(100)), "c": list(range(100))}, "cmd": "echo ${item.a}"},
    {"foreach": list(range(MAX_GENERATED + 1)), "do": {"cmd": "echo ${item}"}},
])
def test_a_template_generating_too_many_stages_is_refused_at_once(workspace: Workspace, body: dict[str, object]) -> None:
    workspace.write_pipeline({"bomb": body})
    workspace.commit("bomb")

    for command in (["status"], ["metrics", "diff"], ["dag"]):
        started = time.monotonic()
        result = workspace.pipe(*command, exit_code=1)
        assert time.monotonic() - started < 20
        assert "stage 'bomb'" in result.stderr and f"more than {MAX_GENERATED:,}" in result.stderr


def test_a_template_at_the_bound_still_expands(workspace: Workspace) -> None:
    workspace.write_pipeline({"s": {"matrix": {"a": list(range(10)), "b": list(range(10))}, "cmd": "echo ${key}"}})

    result = workspace.pipe("status")
    assert "s@9-9" in result.stdout + result.stderr
