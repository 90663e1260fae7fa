"""pipe repro --pull: a fresh clone gets deps and outs from the remote instead of rerunning stages."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli, Workspace
from tests.func.repro_helpers import Counter


def cloned_project(workspace: Workspace, cli: Cli, tmp_path: Path, counter: Counter) -> Path:
    """A project with a tracked dep and two stages, run and pushed, then cloned; cwd is the clone."""
    workspace.write({"data": {"raw.csv": "a,b\n1,2\n"}})
    cli.run("add", "data/raw.csv")
    workspace.write_pipeline({
        "prep": {"cmd": counter.cmd("prep", "mkdir -p out && cp data/raw.csv out/clean.csv"),
                 "deps": ["data/raw.csv"], "outs": ["out"]},
        "model": {"cmd": counter.cmd("model", "wc -l < out/clean.csv > model.txt"), "deps": ["out"],
                  "outs": ["model.txt"]},
    })
    cli.run("repro")
    workspace.add_remote(tmp_path / "remote-store")
    cli.run("push")
    workspace.commit("pipeline")
    return workspace.clone().root


def test_clone_repro_pull_restores_everything_without_running(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    counter = Counter(tmp_path / "counts")
    clone = cloned_project(workspace, cli, tmp_path, counter)
    status = cli.run("status").stdout
    assert "out 'out' missing" in status
    result = cli.run("repro", "--pull")
    assert "restored" in result.stderr
    assert counter.snapshot() == {"prep": 1, "model": 1}
    assert (clone / "data/raw.csv").read_text() == "a,b\n1,2\n"
    assert (clone / "out/clean.csv").read_text() == "a,b\n1,2\n"
    assert (clone / "model.txt").read_text().strip() == "2"
    assert "up to date" in cli.run("status").stderr


def test_clone_pull_then_repro_runs_nothing(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    counter = Counter(tmp_path / "counts")
    clone = cloned_project(workspace, cli, tmp_path, counter)
    cli.run("pull")
    assert (clone / "model.txt").read_text().strip() == "2"
    assert "nothing to do" in cli.run("repro").stderr
    assert counter.snapshot() == {"prep": 1, "model": 1}


def test_repro_pull_without_a_remote_says_how_to_add_one(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"s": {"cmd": "echo > o", "outs": ["o"]}})
    result = cli.run("repro", "--pull", exit_code=1)
    assert "no remote" in result.stderr and "pipe remote add" in result.stderr
    assert not (workspace.root / "o").exists()
