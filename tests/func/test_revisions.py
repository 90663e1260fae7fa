"""Scope flags -> revisions: the workspace, HEAD, --rev with -n, branches, tags, all commits."""

from __future__ import annotations

import pytest

from pipeline_engine.errors import ScmError
from pipeline_engine.index.revisions import Scope, select_revisions
from tests.conftest import Workspace


@pytest.fixture
def shas(workspace: Workspace) -> list[str]:
    made = workspace.history([{"a.txt": "1"}, {"a.txt": "2"}, {"a.txt": "3"}])
    workspace.git("tag", "v1", made[0])
    workspace.git("branch", "side", made[1])
    return made


def _labels(workspace: Workspace, scope: Scope) -> list[tuple[str, str | None]]:
    return [(r.label, r.sha) for r in select_revisions(workspace.project(), scope)]


def test_the_default_scope_is_the_workspace_alone(workspace: Workspace, shas: list[str]) -> None:
    assert _labels(workspace, Scope()) == [("workspace", None)]


def test_rev_with_num_covers_that_commit_and_its_ancestors(workspace: Workspace, shas: list[str]) -> None:
    got = _labels(workspace, Scope(workspace=False, revs=("HEAD",), num=2))
    assert got == [("HEAD", shas[2]), (shas[1][:7], shas[1])]


def test_branches_tags_and_all_commits_each_commit_once(workspace: Workspace, shas: list[str]) -> None:
    got = _labels(workspace, Scope(all_branches=True, all_tags=True))
    assert got[0] == ("workspace", None)
    assert {sha for _, sha in got[1:]} == {shas[2], shas[1], shas[0]}
    assert ("side", shas[1]) in got and ("v1", shas[0]) in got
    every = _labels(workspace, Scope(workspace=False, all_commits=True))
    assert len(every) == len({sha for _, sha in every}) and set(shas) <= {sha for _, sha in every}


def test_an_unknown_rev_is_an_error_naming_it(workspace: Workspace, shas: list[str]) -> None:
    with pytest.raises(ScmError) as info:
        select_revisions(workspace.project(), Scope(revs=("nope",)))
    assert "nope" in str(info.value)
