"""scm/exps.py: experiment refs in DVC's layout, set only against their old value; snapshots leave the index alone."""

from __future__ import annotations

import pytest

from pipeline_engine.errors import ScmError
from pipeline_engine.scm.exps import (
    ExpRef,
    commit_all,
    is_valid_name,
    list_exp_refs,
    rev_parse,
    set_ref,
    snapshot_workspace,
)
from tests.conftest import Workspace

SHA = "0b551cd1c7c5c6ff15ef7a35171e4cac05e6306e"


def test_exp_ref_layout_round_trips() -> None:
    ref = ExpRef(SHA, "brisk-otter")
    assert ref.ref == f"refs/exps/0b/{SHA[2:]}/brisk-otter"
    assert ExpRef.parse(ref.ref) == ref
    for other in ("refs/heads/main", f"refs/exps/0b/{SHA[2:]}", f"refs/exps/0b/{SHA[2:]}/a/b",
                  "refs/exps/zz/" + "z" * 38 + "/x", f"refs/exps/0b/{SHA[2:]}/.hidden"):
        assert ExpRef.parse(other) is None


@pytest.mark.parametrize(("name", "ok"), [("a", True), ("lr-0.1", True), ("x_y+z=1", True), ("-a", False),
                                          ("a/b", False), ("a..b", False), ("a.lock", False), ("", False),
                                          ("a b", False), ("a~1", False)])
def test_names_that_can_end_a_ref(name: str, ok: bool) -> None:
    assert is_valid_name(name) is ok


def test_set_ref_refuses_a_ref_that_moved_meanwhile(workspace: Workspace) -> None:
    workspace.write({"a.txt": "1"})
    workspace.commit("one")
    base = workspace.git("rev-parse", "HEAD").strip()
    index = workspace.root / ".git" / "scratch-index"
    first = snapshot_workspace(workspace.root, parent=base, index_file=index)
    workspace.write({"a.txt": "2"})
    second = snapshot_workspace(workspace.root, parent=base, index_file=index)
    assert not index.exists()
    ref = ExpRef(base, "e")
    set_ref(workspace.root, ref, first, old=None)
    with pytest.raises(ScmError):
        set_ref(workspace.root, ref, second, old=None)  # created meanwhile: not overwritten
    with pytest.raises(ScmError):
        set_ref(workspace.root, ref, second, old=second)  # not what it points to
    set_ref(workspace.root, ref, second, old=first)
    assert rev_parse(workspace.root, ref.ref) == second
    assert [(r, sha) for r, sha, _ in list_exp_refs(workspace.root, base)] == [(ref, second)]
    assert list_exp_refs(workspace.root, SHA) == []
    # the snapshot holds the uncommitted change; HEAD, the index and the branch did not move
    assert workspace.git("show", f"{second}:a.txt") == "2"
    assert workspace.git("rev-parse", "HEAD").strip() == base
    assert workspace.git("diff", "--cached", "--name-only") == ""


def test_commit_all_makes_a_child_of_the_given_parent(workspace: Workspace) -> None:
    base = workspace.git("rev-parse", "HEAD").strip()
    workspace.write({"b.txt": "b"})
    sha = commit_all(workspace.root, parent=base, message="pipe exp: x")
    assert workspace.git("rev-parse", f"{sha}^").strip() == base
    assert workspace.git("show", f"{sha}:b.txt") == "b"
