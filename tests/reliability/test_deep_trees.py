"""Directories nested 1,500 levels deep (git stores them; a manifest from a remote may list them).

Python before 3.12 recurses once per level in `shutil.rmtree`, and checkout made the directories
of such a file with one recursive call per level: both died at ~1,000 levels with a RecursionError
(exit 70). Nothing here needs recursion any more.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, Workspace

pytestmark = pytest.mark.reliability

DEPTH = 1500


@pytest.fixture(autouse=True)
def _remove_deep_dirs(tmp_path: Path) -> Iterator[None]:
    """pytest's own clean-up of old temporary directories would recurse as deep as they are."""
    yield
    subprocess.run(["rm", "-rf", str(tmp_path)], check=False)


def _deep(base: Path) -> Path:
    """`base/d/d/.../d`, DEPTH levels deep (`mkdir -p`: `os.makedirs` recurses once per level)."""
    path = base.joinpath(*["d"] * DEPTH)
    subprocess.run(["mkdir", "-p", str(path)], check=True)
    return path


def test_a_tracked_file_nested_1500_deep_is_checked_out_again(workspace: Workspace, cli: Cli) -> None:
    (_deep(workspace.root / "data") / "f.txt").write_text("deep\n")
    cli.run("add", "data")
    subprocess.run(["rm", "-rf", "data"], check=True)
    cli.run("checkout")
    assert (workspace.root.joinpath("data", *["d"] * DEPTH) / "f.txt").read_text() == "deep\n"


def test_checkout_force_replaces_a_1500_deep_directory_and_follows_no_link_inside(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    workspace.track({"model.bin": "tracked\n"})
    os.unlink(workspace.root / "model.bin")
    deep = _deep(workspace.root / "model.bin")
    (deep / "f").write_text("x\n")
    os.symlink(outside, deep / "link")
    cli.run("checkout", "--force", "model.bin")
    assert workspace.read("model.bin") == "tracked\n"
    assert (outside / "keep.txt").read_text() == "keep\n"


def test_commits_holding_a_1500_deep_directory_are_read(workspace: Workspace, cli: Cli) -> None:
    deep = _deep(workspace.root / "z")
    (deep / "m.json").write_text('{"acc": 0.5}\n')
    workspace.track({"data.txt": "data\n"})  # then moved with its pointer 1,500 levels down (`pipe add`
    for name in ("data.txt", "data.txt.pipe"):  # there resolves every level of the path: slow, not wrong)
        os.rename(workspace.root / name, deep / name)
    rel = deep.relative_to(workspace.root).as_posix()
    workspace.write_pipeline({}, metrics=[f"{rel}/m.json"])
    workspace.commit("deep")
    assert "acc" in cli.run("metrics", "show", "-A").stdout  # the file read at a revision, a level at a time
    cli.run("gc", "-A", "-f")
    assert (deep / "data.txt").read_text() == "data\n"


def test_a_metrics_directory_1500_deep_is_listed(workspace: Workspace, cli: Cli) -> None:
    (_deep(workspace.root / "z") / "m.json").write_text('{"acc": 0.5}\n')
    workspace.write_pipeline({}, metrics=["z"])
    assert "0.5" in cli.run("metrics", "show").stdout


def test_a_stage_out_1500_levels_deep_gets_its_directories_and_runs(workspace: Workspace, cli: Cli) -> None:
    out = "/".join(["w"] * DEPTH) + "/out.txt"
    workspace.write_pipeline({"s": {"cmd": f"echo ran > {out}", "outs": [out]}})
    cli.run("repro")
    assert (workspace.root / out).read_text() == "ran\n"


def test_a_stage_out_1500_levels_deep_is_checked_out_into_missing_directories(workspace: Workspace, cli: Cli) -> None:
    out = "/".join(["w"] * DEPTH) + "/o.txt"
    workspace.write_pipeline({"s": {"cmd": f"echo ran > {out}", "outs": [out]}})
    cli.run("repro")
    subprocess.run(["rm", "-rf", str(workspace.root / "w")], check=True)
    cli.run("checkout")
    assert (workspace.root / out).read_text() == "ran\n"
