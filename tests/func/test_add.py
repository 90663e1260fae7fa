"""pipe add: tracking files and directories, and every refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from pipeline_engine.core.hashing import hash_bytes
from tests.conftest import Cli, Workspace


def test_add_file_writes_pointer_ignore_entry_and_cache_object(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"big.bin": b"\x00payload"}})
    cli.run("add", "data/big.bin")
    pointer = yaml.safe_load(workspace.read("data/big.bin.pipe"))
    assert pointer == {
        "schema": 1,
        "outs": [{"path": "big.bin", "hash": "xxh3_128", "oid": hash_bytes(b"\x00payload"), "size": 8}],
    }
    assert workspace.read("data/.gitignore") == "/big.bin\n"
    oid = pointer["outs"][0]["oid"]
    assert (workspace.root / ".pipe/cache/objects" / oid[:2] / oid[2:]).read_bytes() == b"\x00payload"
    assert "data/big.bin\n" not in workspace.git("status", "--porcelain", "--untracked-files=all")


def test_add_directory_records_manifest_and_file_count(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"images": {"a.jpg": "1", "sub": {"b.jpg": "22"}}}})
    cli.run("add", "data/images")
    out = yaml.safe_load(workspace.read("data/images.pipe"))["outs"][0]
    assert out["oid"].endswith(".dir") and out["nfiles"] == 2 and out["size"] == 3


def test_readding_unchanged_path_changes_nothing(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"d": {"a": "1", "b": "2"}}})
    cli.run("add", "data/d")
    before = workspace.snapshot()
    mtime = (workspace.root / "data/d.pipe").stat().st_mtime_ns
    result = cli.run("add", "data/d")
    assert "unchanged" in result.stderr
    assert workspace.snapshot() == before
    assert (workspace.root / "data/d.pipe").stat().st_mtime_ns == mtime


def test_add_twice_adds_ignore_entry_once(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"f.csv": "a"})
    cli.run("add", "f.csv")
    workspace.write({"f.csv": "b"})
    cli.run("add", "f.csv")
    assert workspace.read(".gitignore").count("/f.csv") == 1


def _refused(workspace: Workspace, cli: Cli, *args: str) -> str:
    before = workspace.snapshot()
    result = cli.run("add", *args, exit_code=1)
    assert workspace.snapshot() == before, "a refused add must change nothing"
    assert "Traceback" not in result.output
    return result.stderr


def test_add_refuses_path_outside_project(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.txt").write_text("x")
    assert "outside the project" in _refused(workspace, cli, str(tmp_path / "elsewhere.txt"))


def test_add_refuses_control_dir(workspace: Workspace, cli: Cli) -> None:
    assert "inside '.pipe/'" in _refused(workspace, cli, ".pipe/config.yaml")


def test_add_refuses_missing_path(workspace: Workspace, cli: Cli) -> None:
    assert "'nope.csv' does not exist" in _refused(workspace, cli, "nope.csv")


def test_add_refuses_overlap_with_tracked_parent_or_child_naming_the_commands(workspace: Workspace, cli: Cli) -> None:
    # DVC records a file added inside a tracked directory; pipe names the add of the directory that does
    workspace.write({"data": {"d": {"a": "1"}, "e": {"inner": {"x": "1"}}}})
    cli.run("add", "data/d", "data/e/inner")
    inside = _refused(workspace, cli, "data/d/a")
    assert "'data/d/a' is inside 'data/d', which is already tracked" in inside and "pipe add data/d" in inside
    parent = _refused(workspace, cli, "data/e")
    assert "overlaps 'data/e/inner'" in parent
    assert "'pipe remove data/e/inner.pipe' and then 'pipe add data/e'" in parent


def test_add_refuses_git_tracked_path_and_names_git_rm(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"tracked.csv": "a,b\n"})
    workspace.commit("csv in git")
    err = _refused(workspace, cli, "tracked.csv")
    assert "tracked by git" in err and "git rm -r --cached tracked.csv" in err


def test_add_refuses_symlink_pointing_outside(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", workspace.root / "link")
    assert "symlink pointing outside" in _refused(workspace, cli, "link")


def test_add_refuses_directory_containing_symlink_outside(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    workspace.write({"d": {"ok": "1"}})
    os.symlink(tmp_path / "secret", workspace.root / "d" / "leak")
    assert "pointing outside" in _refused(workspace, cli, "d")


def test_add_validates_every_path_before_changing_anything(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"good.csv": "1"})
    _refused(workspace, cli, "good.csv", "missing.csv")
    assert not (workspace.root / "good.csv.pipe").exists()


def test_add_refuses_a_stage_out(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo m > models/model.bin", "outs": ["models"]}})
    workspace.write({"models": {"model.bin": "m"}})
    err = _refused(workspace, cli, "models/model.bin")
    assert "out of stage 'train'" in err and "pipe commit train" in err


# --- issue 8, group 5 ---------------------------------------------------------------------------


def test_add_of_several_targets_is_all_or_nothing(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"first.csv": "1", "second": {"ok": "2"}, "tracked.csv": "v1"})
    cli.run("add", "tracked.csv")
    pointer_before = workspace.read("tracked.csv.pipe")
    workspace.write({"tracked.csv": "v2"})
    # Found only while hashing the second directory: a link to a file that does not exist.
    os.symlink(workspace.root / "second" / "gone", workspace.root / "second" / "dangling")
    def visible() -> dict[str, bytes]:  # objects may stay in the cache (gc collects them)
        return {k: v for k, v in workspace.snapshot().items() if not k.startswith(".pipe/")}

    before = visible()
    result = cli.run("add", "tracked.csv", "first.csv", "second", exit_code=1)
    assert "does not exist" in result.stderr
    assert visible() == before
    assert workspace.read("tracked.csv.pipe") == pointer_before
    assert not (workspace.root / "first.csv.pipe").exists()


def test_add_refuses_pipes_own_files(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"params.yaml": "lr: 1\n", "other.yaml": "x: 1\n"})
    workspace.write_pipeline({"s": {"cmd": "echo hi", "params": [{"other.yaml": ["x"]}]}})
    (workspace.root / "pipeline.lock").write_text("schema: '1.0'\n")
    for name, what in [("pipeline.yaml", "pipeline file"), ("pipeline.lock", "lock file"),
                       ("params.yaml", "params file"), ("other.yaml", "params file")]:
        assert what in _refused(workspace, cli, name), name
    workspace.write({"d.csv": "1"})
    cli.run("add", "d.csv")
    assert "pointer file" in _refused(workspace, cli, "d.csv.pipe")


def test_add_refuses_a_path_through_a_symlinked_directory(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"real": {"f.csv": "1"}})
    os.symlink("real", workspace.root / "alias")
    message = _refused(workspace, cli, "alias/f.csv")
    assert "symlinked directory 'alias'" in message and "real/f.csv" in message
    assert not (workspace.root / "real/f.csv.pipe").exists()


def test_add_refuses_a_target_whose_pointer_git_would_ignore(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"f.csv": "1"}, ".gitignore": "# mine\ndata/\n", "ok.csv": "2"})
    message = _refused(workspace, cli, "ok.csv", "data/f.csv")
    assert ".gitignore:2: 'data/'" in message and "data/f.csv.pipe" in message
    assert not (workspace.root / "ok.csv.pipe").exists()
    # a negation after it lets the pointer through
    workspace.write({".gitignore": "data/*\n!data/*.pipe\n"})
    cli.run("add", "data/f.csv")


def test_add_of_a_url_names_the_url(workspace: Workspace, cli: Cli) -> None:
    assert "'s3://bucket/data.csv' is a URL" in _refused(workspace, cli, "s3://bucket/data.csv")


@pytest.mark.parametrize(("key", "value"), [("desc", 3), ("labels", "not-a-list"), ("meta", ["x"])])
def test_a_pointer_annotation_of_the_wrong_type_is_refused_by_name(workspace: Workspace, key: str, value: object) -> None:
    workspace.write({"f.txt": "a\n"})
    workspace.pipe("add", "f.txt")
    pointer = yaml.safe_load(workspace.read("f.txt.pipe"))
    pointer["outs"][0][key] = value
    workspace.write({"f.txt.pipe": yaml.safe_dump(pointer)})
    result = workspace.pipe("status", exit_code=1)
    assert "f.txt.pipe" in result.stderr and f"'{key}'" in result.stderr
