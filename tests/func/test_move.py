"""pipe move: tracked data moves with its pointer and ignore entries (DVC's `dvc move`); nothing
is overwritten and nothing leaves the project."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.conftest import Workspace


def _tracked(workspace: Workspace) -> None:
    workspace.write({"data": {"a.txt": "alpha\n", "sub/b.txt": "beta\n"}, "f.txt": "file\n"})
    workspace.pipe("add", "data", "f.txt")
    workspace.commit("tracked")


def test_a_directory_moves_with_its_pointer_and_ignore_entry(workspace: Workspace) -> None:
    _tracked(workspace)
    result = workspace.pipe("move", "data", "images")
    assert workspace.read("images/sub/b.txt") == "beta\n" and not (workspace.root / "data").exists()
    pointer = yaml.safe_load(workspace.read("images.pipe"))
    assert pointer["outs"][0]["path"] == "images" and not (workspace.root / "data.pipe").exists()
    ignored = workspace.read(".gitignore").split()
    assert "/images" in ignored and "/data" not in ignored
    command = result.stderr.split("to track the move with git: ", 1)[1].strip()
    workspace.git(*command.split()[1:])
    assert "up to date" in workspace.pipe("status").stderr
    workspace.commit("moved")
    shutil.rmtree(workspace.root / "images")
    workspace.pipe("checkout")
    assert workspace.read("images/a.txt") == "alpha\n"


def test_a_file_moves_into_an_existing_directory_under_its_own_name(workspace: Workspace) -> None:
    _tracked(workspace)
    workspace.write({"raw/keep.md": "x\n"})
    workspace.pipe("move", "f.txt.pipe", "raw")  # the pointer names the data too, as in DVC
    assert workspace.read("raw/f.txt") == "file\n"
    assert yaml.safe_load(workspace.read("raw/f.txt.pipe"))["outs"][0]["path"] == "f.txt"
    assert "/f.txt" in workspace.read("raw/.gitignore").split()
    assert "/f.txt" not in workspace.read(".gitignore").split()


def test_data_missing_from_the_workspace_moves_only_the_pointer(workspace: Workspace) -> None:
    _tracked(workspace)
    (workspace.root / "f.txt").unlink()
    workspace.pipe("move", "f.txt", "g.txt")
    assert not (workspace.root / "g.txt").exists() and (workspace.root / "g.txt.pipe").is_file()
    workspace.pipe("checkout", "g.txt")
    assert workspace.read("g.txt") == "file\n"


@pytest.mark.parametrize(("src", "dst", "expected"), [
    ("f.txt", "data", "'data' already exists"),  # a tracked directory is not a place to move into
    ("notes.md", "n.md", "not tracked by a pointer file"),
    ("f.txt", "../outside.txt", "outside the project"),
    ("f.txt", "pipeline.yaml", "pipeline.yaml"),
    ("f.txt", "data/new.txt", "overlaps 'data'"),
    ("data", "data/inner", "cannot move 'data' into itself"),  # inside tracked data: status would call it added there
    ("f.txt", "newdir/", "'newdir/' is not a directory"),  # as mv: a trailing slash names a directory
])
def test_a_move_that_would_overwrite_or_escape_is_refused_and_changes_nothing(
    workspace: Workspace, src: str, dst: str, expected: str
) -> None:
    _tracked(workspace)
    workspace.write({"notes.md": "plain git file\n", "data/f.txt": "in the way\n"})
    before = {p: workspace.read(p) for p in ("f.txt", "f.txt.pipe", "data.pipe", ".gitignore")}
    result = workspace.pipe("move", src, dst, exit_code=1)
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert {p: workspace.read(p) for p in before} == before
    assert not (workspace.root.parent / "outside.txt").exists()


def test_a_move_onto_a_stage_out_is_refused(workspace: Workspace) -> None:
    _tracked(workspace)
    workspace.write({"pipeline.yaml": "stages:\n  train:\n    cmd: echo\n    outs: [models]\n"})
    result = workspace.pipe("move", "f.txt", "models/f.txt", exit_code=1)
    assert "an out of stage 'train'" in result.stderr and workspace.read("f.txt") == "file\n"
    assert not (workspace.root / "models").exists()
