"""pipe status for tracked data."""

from __future__ import annotations

import json
import os

from tests.conftest import Cli, Workspace


def _tracked_images(workspace: Workspace) -> None:
    workspace.track({"data/images": {f"{i:04}.jpg": f"img{i}" for i in range(1, 6)}, "data/big.bin": "B"})


def test_status_up_to_date(workspace: Workspace, cli: Cli) -> None:
    _tracked_images(workspace)
    assert "up to date" in cli.run("status").stderr
    cli.run("status", "--exit-code")


def test_status_counts_added_modified_deleted_and_names_them_with_v(workspace: Workspace, cli: Cli) -> None:
    _tracked_images(workspace)
    with open(workspace.root / "data/images/0001.jpg", "a") as f:
        f.write("x")
    os.unlink(workspace.root / "data/images/0002.jpg")
    workspace.write({"data": {"images": {"new.jpg": ""}}})
    result = cli.run("status")
    assert "data/images" in result.stdout and "1 modified, 1 added, 1 deleted" in result.stdout
    assert "big.bin" not in result.stdout
    verbose = cli.run("status", "-v").stdout
    assert verbose == cli.run("-v", "status").stdout
    assert "modified: data/images/0001.jpg" in verbose and "deleted: data/images/0002.jpg" in verbose
    assert "added: data/images/new.jpg" in verbose
    cli.run("status", "--exit-code", exit_code=1)


def test_status_quiet_prints_nothing_and_exits_1_when_out_of_date(workspace: Workspace, cli: Cli) -> None:
    # DVC's `status -q`: scripts run `pipe status -q || pipe repro` and read only the exit code
    _tracked_images(workspace)
    assert cli.run("status", "-q").stdout == ""
    with open(workspace.root / "data/big.bin", "a") as f:
        f.write("x")
    for args in (("status", "-q"), ("-q", "status")):
        assert cli.run(*args, exit_code=1).stdout == ""


def test_status_json_is_machine_readable(workspace: Workspace, cli: Cli) -> None:
    _tracked_images(workspace)
    os.unlink(workspace.root / "data/big.bin")
    data = json.loads(cli.run("status", "--json").stdout)["data"]
    by_path = {d["path"]: d for d in data}
    assert by_path["data/big.bin"]["states"] == ["missing from workspace"]
    assert by_path["data/images"]["states"] == ["up to date"]


def test_status_reports_objects_missing_from_cache(workspace: Workspace, cli: Cli) -> None:
    _tracked_images(workspace)
    cli.run("gc", "--workspace", "-f")  # keeps everything: still referenced
    project = workspace.project()
    project.store.remove(list(project.store.iter_oids()))
    result = cli.run("status")
    assert "data/big.bin  not in cache" in result.stdout


def test_status_of_a_target_that_tracks_nothing_is_an_error(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("status", "nothing/here", exit_code=1)
    # It does not exist: 'pipe add' would fail too, so the hint lists what is tracked instead.
    assert "'nothing/here' is not tracked" in result.stderr and "pipe status" in result.stderr
    assert "pipe add" not in result.stderr
    workspace.write({"untracked.csv": "a"})
    assert "pipe add untracked.csv" in cli.run("status", "untracked.csv", exit_code=1).stderr


def test_status_reports_a_pointer_deleted_from_the_workspace(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"f.csv": "1"}})
    cli.run("add", "data/f.csv")
    workspace.commit("f")
    os.unlink(workspace.root / "data/f.csv.pipe")
    result = cli.run("status", "--exit-code", exit_code=1)
    assert "data/f.csv  pointer file deleted" in result.output and "git checkout -- " in result.output
    assert not (workspace.root / "data/f.csv.pipe").exists()


def test_status_of_a_path_inside_a_tracked_directory(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"a": "a", "sub": {"b": "b"}}})
    cli.run("add", "d")
    (workspace.root / "d/sub/b").write_text("changed")
    assert "d/sub/b  modified" in cli.run("status", "d/sub/b").output
    assert "d/sub  modified" in cli.run("status", "d/sub").output
    assert "up to date" in cli.run("status", "d/a").output


def test_status_names_a_corrupt_manifest_as_corrupt_not_missing(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"f": "1\n2\n"}})
    cli.run("add", "d")
    (manifest,) = (workspace.root / ".pipe" / "cache" / "objects").glob("*/*.dir")
    manifest.chmod(0o644)
    manifest.write_text("{")
    assert "corrupt in cache" in cli.run("status").stdout
    cli.run("cache", "verify", exit_code=1)
    assert "not in cache" in cli.run("status").stdout
    cli.run("add", "d")
    assert "up to date" in cli.run("status").stdout + cli.run("status").stderr
