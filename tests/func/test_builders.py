"""The one-call builders of tests/conftest.py do what their names say (later issues' tests rely on them)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import Cli, MakeRepo, Workspace


def test_track_writes_adds_and_returns_the_pointers(workspace: Workspace, cli: Cli) -> None:
    pointers = workspace.track({"data/raw.csv": "a,b\n1,2\n", "data/images": {"1.png": "1", "sub": {"2.png": "2"}}})
    assert pointers == [workspace.root / "data/raw.csv.pipe", workspace.root / "data/images.pipe"]
    assert all(p.is_file() for p in pointers)
    assert workspace.git("check-ignore", "data/raw.csv").strip() == "data/raw.csv"
    assert "up to date" in cli.run("status").stderr


def test_stage_adds_to_pipeline_yaml_and_lock_reads_what_repro_recorded(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"params.yaml": "lr: 0.1\n"})
    workspace.stage("prep", "echo x > x.txt", outs=["x.txt"])
    workspace.stage("train", "cp x.txt model.txt", deps=["x.txt"], outs=["model.txt"], params=["lr"])
    assert list(yaml.safe_load(workspace.read("pipeline.yaml"))["stages"]) == ["prep", "train"]
    cli.run("repro")
    lock = workspace.lock()["stages"]
    assert set(lock) == {"prep", "train"} and workspace.read("model.txt") == "x\n"


def test_history_makes_one_commit_per_revision(workspace: Workspace) -> None:
    shas = workspace.history([
        {"params.yaml": f"lr: {lr}\n", "metrics.json": f'{{"acc": {acc}}}'} for lr, acc in [(1, 0.5), (2, 0.7), (3, 0.6)]
    ])
    assert len(set(shas)) == 3 and workspace.git("rev-parse", "HEAD").strip() == shas[-1]
    assert [workspace.git("show", f"{sha}:params.yaml") for sha in shas] == ["lr: 1\n", "lr: 2\n", "lr: 3\n"]
    assert workspace.git("show", f"{shas[1]}:metrics.json") == '{"acc": 0.7}'


def test_add_remote_and_clone_share_data(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    workspace.track({"d.csv": "1\n"})
    cli.run("push")
    assert any(local_remote.glob("??/*"))
    workspace.commit("data")
    clone = workspace.clone()
    assert Path.cwd() == clone.root and not (clone.root / "d.csv").exists()
    cli.run("pull")
    assert clone.read("d.csv") == "1\n"


def test_make_repo_builds_a_committed_project_without_moving_the_cwd(
    workspace: Workspace, make_repo: MakeRepo
) -> None:
    other = make_repo("other", files={"README": "hi\n"}, tracked={"d.csv": "1\n"},
                      stages={"s": {"cmd": "echo", "deps": ["d.csv"]}}, commits=[{"params.yaml": "lr: 1\n"}])
    assert Path.cwd() == workspace.root
    assert other.git("status", "--porcelain") == ""
    assert other.git("log", "--format=%s").split("\n")[:2] == ["revision 1", "files, data and stages"]
    assert (other.root / "d.csv.pipe").is_file() and "s" in other.read("pipeline.yaml")
    assert "s  never ran" in other.pipe("status").stdout  # pipe runs in it, whatever the cwd
    assert Path.cwd() == workspace.root
