"""pipe artifacts: `artifacts:` listed, versions and stages as GTO's annotated git tags, read back and fetched."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline_engine import api
from tests.conftest import Workspace

# GTO's tag grammar (gto/constants.py tag_re, without GTO's 'dir:' prefix), written out independently.
GTO_TAG = re.compile(
    r"^[a-zA-Z0-9]([a-zA-Z0-9\-/_]*[a-zA-Z0-9])?"
    r"((#[a-zA-Z0-9]([a-zA-Z0-9\-/_]*[a-zA-Z0-9])?|@v\d+\.\d+\.\d+)!?|@deprecated)(#\d+)?$"
)


def _model_repo(workspace: Workspace) -> list[str]:
    """Three commits of model.pkl (tracked by pipe) declared as artifact 'churn'; returns their shas."""
    workspace.write_pipeline({}, artifacts={"churn": {"path": "model.pkl", "type": "model", "desc": "churn model",
                                                       "labels": ["tabular"]}})
    shas = []
    for n in (1, 2, 3):
        workspace.track({"model.pkl": f"weights {n}\n"})
        workspace.commit(f"model {n}")
        shas.append(workspace.git("rev-parse", "HEAD").strip())
    return shas


def _tags(workspace: Workspace) -> dict[str, tuple[str, str, str]]:
    """tag -> (object type, tagged commit, message) as git reports them."""
    out = workspace.git("for-each-ref", "--format=%(refname:strip=2) %(objecttype) %(*objectname) %(contents:subject)",
                        "refs/tags")
    rows = [line.split(" ", 3) for line in out.splitlines()]
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_list_shows_the_declared_artifacts(workspace: Workspace) -> None:
    _model_repo(workspace)
    data = json.loads(workspace.pipe("artifacts", "list", "--json").stdout)
    assert data == {"churn": {"path": "model.pkl", "type": "model", "desc": "churn model", "labels": ["tabular"],
                              "meta": {}}}
    assert "churn" in workspace.pipe("artifacts", "list").stdout


def test_register_assign_deprecate_write_gto_tags_read_back_by_show(workspace: Workspace) -> None:
    first, second, third = _model_repo(workspace)
    workspace.pipe("artifacts", "register", "churn", "v1.0.0", first)
    workspace.pipe("artifacts", "register", "churn", "--bump-minor", second)  # v1.1.0
    workspace.pipe("artifacts", "register", "churn")                           # HEAD: patch bump -> v1.1.1
    workspace.pipe("artifacts", "assign", "churn", "v1.0.0", "--stage", "prod")
    workspace.pipe("artifacts", "assign", "churn", "v1.1.0", "--stage", "staging")
    workspace.pipe("artifacts", "assign", "churn", "v1.1.0", "--stage", "prod")  # prod moves on
    workspace.pipe("artifacts", "deprecate", "churn", "v1.1.1")

    tags = _tags(workspace)
    assert set(tags) == {"churn@v1.0.0", "churn@v1.1.0", "churn@v1.1.1", "churn#prod#1", "churn#staging#2",
                         "churn#prod#3", "churn@v1.1.1!"}
    assert all(GTO_TAG.match(t) for t in tags)
    assert all(kind == "tag" for kind, _, _ in tags.values())  # annotated: GTO ignores lightweight tags
    assert tags["churn@v1.0.0"][1:] == (first, "Registering artifact churn version v1.0.0")
    assert tags["churn#prod#3"][1:] == (second, "Assigning stage prod to artifact churn version v1.1.0")
    assert tags["churn@v1.1.1"][1] == third

    shown = json.loads(workspace.pipe("artifacts", "show", "churn", "--json").stdout)["churn"]
    assert shown["latest"] == "v1.1.0"  # v1.1.1 was deregistered
    assert shown["stages"] == {"prod": "v1.1.0", "staging": "v1.1.0"}
    versions = {v["version"]: v for v in shown["versions"]}
    assert versions["v1.0.0"]["stages"] == [] and versions["v1.0.0"]["rev"] == first
    assert not versions["v1.1.1"]["active"]
    table = workspace.pipe("artifacts", "show").stdout
    assert "churn" in table and "#prod" in table

    assert api.artifacts_show("churn", stage="prod", repo=str(workspace.root)) == {"rev": second, "path": "model.pkl"}
    assert api.artifacts_show("churn", version="1.0.0", repo=str(workspace.root))["rev"] == first
    workspace.pipe("artifacts", "deprecate", "churn")
    assert "churn@deprecated" in _tags(workspace)
    assert json.loads(workspace.pipe("artifacts", "show", "--json").stdout)["churn"]["deprecated"] is True


def test_first_version_is_v0_0_1_and_versions_are_checked(workspace: Workspace) -> None:
    first, _, _ = _model_repo(workspace)
    workspace.pipe("artifacts", "register", "churn", "--bump-major", exit_code=1)  # nothing to bump yet
    workspace.pipe("artifacts", "register", "churn", "2.0", exit_code=1)  # not semver
    workspace.pipe("artifacts", "register", "churn", "v0.0.1", first)
    err = workspace.pipe("artifacts", "register", "churn", "v0.0.2", first, exit_code=1).stderr
    assert "registered already" in err  # one version per commit, as GTO
    workspace.pipe("artifacts", "register", "churn", "v0.0.1", "HEAD", exit_code=1)  # the version exists
    workspace.pipe("artifacts", "register", "churn")
    assert set(_tags(workspace)) == {"churn@v0.0.1", "churn@v0.0.2"}


def test_assign_without_version_registers_the_commit_first(workspace: Workspace) -> None:
    _model_repo(workspace)
    workspace.pipe("artifacts", "assign", "churn", "--stage", "dev")
    assert set(_tags(workspace)) == {"churn@v0.0.1", "churn#dev#1"}
    err = workspace.pipe("artifacts", "assign", "churn", "v0.0.1", "--stage", "dev", exit_code=1).stderr
    assert "already" in err
    workspace.pipe("artifacts", "assign", "churn", "v0.0.1", "--stage", "dev", "--force")
    workspace.pipe("artifacts", "deprecate", "churn", "--stage", "dev")
    assert {"churn#dev#2", "churn#dev!#3"} <= set(_tags(workspace))
    assert json.loads(workspace.pipe("artifacts", "show", "churn", "--json").stdout)["churn"]["stages"] == {}


@pytest.mark.parametrize("args", [
    ["register", "churn#prod#9"], ["register", "churn@v9.9.9"], ["register", "-d"], ["register", "a b"],
    ["register", "x!"], ["assign", "churn", "--stage", "prod#1"], ["assign", "churn", "--stage", "a@v1.0.0"],
    ["register", "churn", "v1.0.0", "--upload-pack=touch pwned"],
])
def test_names_that_would_inject_into_a_tag_are_refused(workspace: Workspace, args: list[str]) -> None:
    _model_repo(workspace)
    result = workspace.pipe("artifacts", *args, exit_code=None)
    assert result.exit_code != 0
    assert _tags(workspace) == {}
    assert not (workspace.root / "pwned").exists()


def test_get_fetches_the_file_as_registered_at_a_version_or_stage(make_repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = make_repo("registry")
    first, second, _ = _model_repo(registry)
    registry.pipe("artifacts", "register", "churn", "v1.0.0", first)
    registry.pipe("artifacts", "register", "churn", "v2.0.0", second)
    registry.pipe("artifacts", "assign", "churn", "v1.0.0", "--stage", "prod")
    consumer = make_repo("consumer")

    consumer.pipe("artifacts", "get", str(registry.root), "churn", "--stage", "prod", "-o", str(tmp_path / "p.pkl"))
    assert (tmp_path / "p.pkl").read_text() == "weights 1\n"
    consumer.pipe("artifacts", "get", f"file://{registry.root}", "churn", "-o", str(tmp_path / "latest.pkl"))
    assert (tmp_path / "latest.pkl").read_text() == "weights 2\n"  # the greatest version, not the last commit
    consumer.pipe("artifacts", "get", str(registry.root), "churn", "--version", "1.0.0", "-o", str(tmp_path))
    assert (tmp_path / "model.pkl").read_text() == "weights 1\n"
    err = consumer.pipe("artifacts", "get", str(registry.root), "churn", "--stage", "qa", exit_code=1).stderr
    assert "qa" in err


def test_get_by_git_url_reads_tags_with_ls_remote_and_data_from_the_sources_remote(
        make_repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pipeline_engine.ops.artifacts import _get_remote

    registry = make_repo("registry")
    registry.add_remote(tmp_path / "store")
    first, second, _ = _model_repo(registry)
    registry.pipe("push", "-A")
    registry.pipe("artifacts", "register", "churn", "v1.0.0", first)
    registry.pipe("artifacts", "assign", "churn", "v1.0.0", "--stage", "prod")
    registry.pipe("artifacts", "register", "churn", "v1.1.0", second)
    registry.git("tag", "churn#prod#7", second)  # lightweight: GTO (and pipe) ignore it

    commit, path, data = _get_remote(str(registry.root), "churn", None, "prod", None)
    assert (commit, path, data) == (first, "model.pkl", b"weights 1\n")
    assert _get_remote(str(registry.root), "churn", None, None, None)[2] == b"weights 2\n"


_GTO = shutil.which("gto") or next((p for p in ["/tmp/venv-dvc/bin/gto"] if os.access(p, os.X_OK)), None)


def _gto(root: Path, *args: str) -> str:
    assert _GTO is not None
    proc = subprocess.run([_GTO, *args], cwd=root, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.skipif(_GTO is None, reason="GTO is not installed")
def test_gto_reads_what_pipe_writes_and_pipe_reads_what_gto_writes(workspace: Workspace, make_repo) -> None:  # type: ignore[no-untyped-def]
    first, second, third = _model_repo(workspace)
    workspace.pipe("artifacts", "register", "churn", "v1.0.0", first)
    workspace.pipe("artifacts", "register", "churn", second)
    workspace.pipe("artifacts", "register", "churn", third)
    workspace.pipe("artifacts", "assign", "churn", "v1.0.1", "--stage", "prod")
    workspace.pipe("artifacts", "deprecate", "churn", "v1.0.2")
    assert json.loads(_gto(workspace.root, "show", "--json")) == {
        "churn": {"version": "v1.0.1", "stage": {"prod": "v1.0.1"}, "registered": True, "active": True}}

    other = make_repo("other")
    a, b, _ = _model_repo(other)
    _gto(other.root, "register", "churn", a, "--version", "v2.0.0")
    _gto(other.root, "register", "churn", b, "--bump-minor")
    _gto(other.root, "assign", "churn", "--version", "v2.0.0", "--stage", "prod")
    _gto(other.root, "assign", "churn", "--version", "v2.1.0", "--stage", "prod")
    _gto(other.root, "deprecate", "churn", "v2.1.0", "prod")  # unassign: prod goes back to v2.0.0
    shown = json.loads(other.pipe("artifacts", "show", "churn", "--json").stdout)["churn"]
    gto = json.loads(_gto(other.root, "show", "--json"))["churn"]
    assert shown["latest"] == gto["version"] == "v2.1.0"
    assert shown["stages"] == gto["stage"] == {"prod": "v2.0.0"}
    other.pipe("artifacts", "deprecate", "churn", "--stage", "prod")  # pipe unassigns it from v2.0.0
    assert json.loads(_gto(other.root, "show", "--json"))["churn"]["stage"] == {}
