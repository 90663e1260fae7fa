"""pipeline_engine.api: dvc.api's names and signatures over real projects, revisions, caches and remotes."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest

from pipeline_engine import api
from pipeline_engine.errors import ObjectNotFoundError, PathError, PipeError
from tests.conftest import MakeRepo, Workspace


def test_public_names_and_signatures_are_dvc_apis() -> None:
    assert sorted(api.__all__) == ["artifacts_show", "get_url", "metrics_show", "open", "params_show", "read"]
    params = {name: list(inspect.signature(getattr(api, name)).parameters) for name in api.__all__}
    assert params == {
        "open": ["path", "repo", "rev", "remote", "mode", "encoding"],
        "read": ["path", "repo", "rev", "remote", "mode", "encoding"],
        "get_url": ["path", "repo", "rev", "remote"],
        "params_show": ["targets", "repo", "stages", "rev", "deps"],
        "metrics_show": ["targets", "repo", "rev"],
        "artifacts_show": ["name", "version", "stage", "repo"],
    }


def _versions(workspace: Workspace) -> None:
    workspace.track({"data.csv": "a\n1\n"})
    workspace.write({"readme.txt": "in git\n"})
    workspace.commit("v1")
    workspace.git("tag", "v1")
    workspace.track({"data.csv": "a\n2\n"})
    workspace.commit("v2")


def test_read_and_open_a_tracked_file_at_revisions(workspace: Workspace) -> None:
    _versions(workspace)
    (workspace.root / "data.csv").write_text("edited\n")

    assert api.read("data.csv") == "edited\n"  # the workspace as it is
    assert api.read("data.csv", rev="HEAD") == "a\n2\n"
    assert api.read("data.csv", rev="v1", mode="rb") == b"a\n1\n"
    with api.open("data.csv", rev="v1") as f:
        assert f.readline() == "a\n"
    (workspace.root / "readme.txt").unlink()
    assert api.read("readme.txt", rev="v1") == "in git\n"  # a file git holds: its blob


def test_repo_is_a_local_path_and_urls_are_refused(make_repo: MakeRepo, tmp_path: Path) -> None:
    other = make_repo("other", tracked={"d.txt": "other data\n"})
    assert api.read("d.txt", repo=other.root, rev="HEAD") == "other data\n"
    with pytest.raises(PipeError, match="read by open\\(\\) and read\\(\\) only"):  # issue 14: open/read take URLs
        api.get_url("d.txt", repo="https://example.com/x.git")


def test_a_cache_miss_is_downloaded_from_the_remote(workspace: Workspace, tmp_path: Path) -> None:
    _versions(workspace)
    store = workspace.add_remote(tmp_path / "store")
    workspace.git("checkout", "-q", "v1")
    workspace.pipe("checkout")
    workspace.pipe("push")
    workspace.git("checkout", "-q", "-")
    workspace.pipe("checkout")
    workspace.pipe("push")
    shutil.rmtree(workspace.root / ".pipe" / "cache")
    (workspace.root / "data.csv").unlink()

    assert api.read("data.csv", rev="v1") == "a\n1\n"
    assert api.read("data.csv") == "a\n2\n"  # no workspace file: the tracked object, from the remote
    assert Path(api.get_url("data.csv", rev="v1")).read_text() == "a\n1\n"
    assert api.get_url("data.csv").startswith(str(store))

    shutil.rmtree(store)
    shutil.rmtree(workspace.root / ".pipe" / "cache")
    with pytest.raises(ObjectNotFoundError, match="data.csv"):
        api.read("data.csv", rev="v1")


def test_a_file_inside_a_tracked_directory_comes_with_its_manifest_from_the_remote(workspace: Workspace,
                                                                                    tmp_path: Path) -> None:
    workspace.track({"images": {"a.txt": "A\n", "sub": {"b.txt": "B\n"}}})
    workspace.commit("images")
    store = workspace.add_remote(tmp_path / "store")
    # Loose: get_url names an object's own file, which a packed object does not have (docs/format.md, Packs).
    workspace.pipe("remote", "modify", "store", "pack_threshold", "0")
    workspace.pipe("push")
    shutil.rmtree(workspace.root / ".pipe" / "cache")

    assert api.read("images/sub/b.txt", rev="HEAD") == "B\n"
    assert Path(api.get_url("images/a.txt", rev="HEAD")).read_text() == "A\n"
    assert api.get_url("images", rev="HEAD").startswith(str(store)) and api.get_url("images").endswith(".dir")


def test_untracked_missing_file_and_get_url_of_an_untracked_file_are_errors(workspace: Workspace) -> None:
    workspace.write({"notes.txt": "hi\n"})
    workspace.commit("notes")
    with pytest.raises(PathError, match="nope.txt"):
        api.read("nope.txt", rev="HEAD")
    with pytest.raises(PathError, match="not tracked by pipe"):
        api.get_url("notes.txt")


def test_params_show_merges_files_as_dvc_does(workspace: Workspace) -> None:
    workspace.write_pipeline({
        "train": {"cmd": "echo", "params": ["train.lr", {"extra.yaml": ["seed"]}]},
        "prep": {"cmd": "echo", "params": [{"extra.yaml": ["split"]}]},
    })
    workspace.history([{"params.yaml": "train: {lr: 0.1, epochs: 3}\nseed: 0\n",
                        "extra.yaml": "seed: 7\nsplit: 0.2\nunused: 1\n"}])
    workspace.write({"params.yaml": "train: {lr: 0.5, epochs: 3}\nseed: 0\n"})

    assert api.params_show() == {"train": {"lr": 0.5, "epochs": 3}, "params.yaml:seed": 0,
                                 "extra.yaml:seed": 7, "split": 0.2}
    assert api.params_show(rev="HEAD", deps=True) == {"train": {"lr": 0.1}, "seed": 7, "split": 0.2}
    assert api.params_show(stages="prep") == {"split": 0.2}
    assert api.params_show("extra.yaml") == {"seed": 7, "split": 0.2, "unused": 1}


def test_metrics_show_at_a_revision(workspace: Workspace) -> None:
    workspace.write_pipeline({}, metrics=["m.json", "n.yaml"])
    workspace.history([{"m.json": '{"acc": 0.5, "loss": {"train": 1}}', "n.yaml": "f1: 0.2\n"},
                       {"m.json": '{"acc": 0.7, "loss": {"train": 0.5}}', "n.yaml": "f1: 0.3\n"}])

    assert api.metrics_show() == {"acc": 0.7, "loss": {"train": 0.5}, "f1": 0.3}
    assert api.metrics_show("n.yaml", rev="HEAD~1") == {"f1": 0.2}
    workspace.write({"n.yaml": "f1: [unclosed\n"})
    with pytest.raises(PipeError, match="n.yaml"):
        api.metrics_show()
