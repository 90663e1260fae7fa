"""Revision names typed by a user (or pasted from a CI script) reach git: each either names a commit or
is a clean "unknown revision" error (exit 1), never an internal error (exit 70).

GitPython's rev-parse raised KeyError (`HEAD:dir/..`), IndexError (`@{-1}`, `HEAD@{99}`) and
NotImplementedError (`main@{yesterday}`, which git itself understands) from `ProjectIndex.at`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Workspace

pytestmark = pytest.mark.reliability

BAD = ["HEAD:../../", "HEAD:metrics.json", "HEAD^{tree}", "@{-1}", "HEAD@{99}", "HEAD:nonexist", ":", "0" * 40]


@pytest.fixture
def history(workspace: Workspace) -> Workspace:
    workspace.write({"pipeline.yaml": "metrics: [metrics.json]\nplots: [loss.csv]\n"})
    workspace.history([
        {"metrics.json": '{"acc": 0.5}', "loss.csv": "step,loss\n0,1\n1,0.5\n", "params.yaml": "lr: 1\n"},
        {"metrics.json": '{"acc": 0.7}', "loss.csv": "step,loss\n0,0.9\n1,0.4\n", "params.yaml": "lr: 2\n"},
    ])
    return workspace


@pytest.mark.parametrize("rev", BAD)
@pytest.mark.parametrize("command", [["metrics", "diff"], ["params", "diff"], ["diff"],
                                     ["plots", "diff", "-o", "out"], ["metrics", "show", "--rev"]])
def test_a_malformed_revision_is_an_unknown_revision(history: Workspace, command: list[str], rev: str) -> None:
    result = history.pipe(*command, rev, exit_code=1)
    assert f"unknown revision '{rev}'" in result.output


def test_a_reflog_date_git_understands_is_a_revision(history: Workspace) -> None:
    result = history.pipe("metrics", "diff", "HEAD@{1.year.ago}", "HEAD", "--json", exit_code=None)
    # no reflog entry that old: git answers with the oldest one, as `git rev-parse` does
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", [["metrics", "show"], ["fetch"], ["gc", "-w"],
                                     ["push"], ["status", "--cloud"]])
def test_a_rev_that_looks_like_an_option_is_a_name_git_never_acts_on(history: Workspace, command: list[str]) -> None:
    target = history.root.parent / "written-by-git"
    rev = f"--output={target}"
    history.pipe(*command, "--rev", rev, exit_code=1)
    assert not target.exists()


def test_a_rev_naming_a_file_is_an_unknown_revision_not_an_empty_scope(history: Workspace) -> None:
    result = history.pipe("metrics", "show", "--rev", "HEAD:metrics.json", exit_code=1)
    assert "unknown revision 'HEAD:metrics.json'" in result.output
    shown = json.loads(history.pipe("metrics", "show", "--rev", "HEAD~1", "--json").stdout)
    assert shown["HEAD~1"]["data"]["metrics.json"]["data"] == {"acc": 0.5}


def test_exp_push_and_pull_refuse_a_git_remote_that_is_an_option(workspace: Workspace, tmp_path: Path) -> None:
    """`--upload-pack=CMD` / `--receive-pack=CMD` as GIT_REMOTE would make git run CMD."""
    workspace.write({"params.yaml": "a: 1\n"})
    workspace.commit("base")
    witness = tmp_path / "ran"
    for verb, option in (("pull", "--upload-pack"), ("push", "--receive-pack")):
        result = workspace.pipe("exp", verb, "--", f"{option}=touch {witness}", exit_code=None)
        assert result.exit_code != 0 and "is not a git remote" in result.stderr
    assert not witness.exists()


def test_exp_push_and_pull_never_print_a_token_in_the_git_remote_url(workspace: Workspace, tmp_path: Path) -> None:
    workspace.write({"params.yaml": "a: 1\n"})
    workspace.commit("base")
    workspace.pipe("exp", "save", "-n", "one")
    origin = tmp_path / "origin.git"
    workspace.git("init", "-q", "--bare", str(origin))
    url = "https://user:s3cr3t@example.invalid/x.git"
    workspace.git("config", f"url.{origin}.insteadOf", url)  # git reaches the bare repo; pipe sees the URL
    for args, code in ((["push", url], 0), (["pull", url], 0), (["pull", url, "two"], 1)):
        result = workspace.pipe("exp", args[0], "--no-cache", *args[1:], exit_code=code)
        assert "s3cr3t" not in result.output and "example.invalid" in result.output, result.output


def _bad_exp_refs(workspace: Workspace, origin: Path) -> str:
    """A bare clone of the workspace whose refs/exps/ name a blob, a tree and a tag: no experiment commits."""
    base = workspace.git("rev-parse", "HEAD").strip()
    prefix = f"refs/exps/{base[:2]}/{base[2:]}"
    blob = workspace.git("hash-object", "-w", "--", "params.yaml").strip()
    tree = workspace.git("rev-parse", "HEAD^{tree}").strip()
    workspace.git("tag", "-a", "-m", "t", "t1", "HEAD")
    tag = workspace.git("rev-parse", "t1").strip()
    workspace.git("clone", "-q", "--bare", str(workspace.root), str(origin))  # a local clone: every object
    for name, sha in (("blobby", blob), ("treey", tree), ("taggy", tag)):
        workspace.git("--git-dir", str(origin), "update-ref", f"{prefix}/{name}", sha)
    return prefix


def test_experiment_refs_that_name_no_commit_are_no_experiments(workspace: Workspace, tmp_path: Path) -> None:
    """Fetched with plain git (as the docs allow), they broke exp show for every experiment and gc -A."""
    workspace.write({"params.yaml": "a: 1\n"})
    workspace.commit("base")
    workspace.pipe("exp", "save", "-n", "good")
    origin = tmp_path / "origin.git"
    prefix = _bad_exp_refs(workspace, origin)
    workspace.git("fetch", "-q", str(origin), "refs/exps/*:refs/exps/*")

    assert json.loads(workspace.pipe("exp", "list", "--json").stdout) == {prefix.replace("/", "")[8:]: ["good"]}
    assert "good" in workspace.pipe("exp", "show").stdout
    assert "not found" in workspace.pipe("exp", "apply", "blobby", exit_code=1).stderr
    workspace.pipe("gc", "-w", "--all-experiments", "-f")
    workspace.pipe("exp", "remove", "blobby", "treey", "taggy")
    assert workspace.git("for-each-ref", prefix).count("\n") == 1  # only 'good' is left


def test_exp_pull_keeps_no_ref_that_names_no_commit(workspace: Workspace, tmp_path: Path) -> None:
    workspace.write({"params.yaml": "a: 1\n"})
    workspace.commit("base")
    origin = tmp_path / "origin.git"
    prefix = _bad_exp_refs(workspace, origin)

    refused = workspace.pipe("exp", "pull", "--no-cache", str(origin), exit_code=1).stderr
    assert "name no commit" in refused and "blobby" in refused
    assert workspace.git("for-each-ref", prefix).strip() == ""
