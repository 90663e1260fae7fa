"""pipe diff: tracked data added, deleted, modified and renamed between revisions, or a revision and the workspace.

The JSON is DVC's shape (`dvc diff --json [--show-hash]`): lists of `{path[, hash]}`, a directory
as `dir/` followed by its files, renames as `{path: {old, new}}`, and `not in cache` only against
the workspace.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from tests.conftest import Cli, Workspace, git

DATA = {"data": {"a.csv": "a,1\n", "b.csv": "b,2\n"}, "notes.txt": "first notes\n"}


def _oid(text: str) -> str:
    return hash_bytes(text.encode())


def _pointer_oid(workspace: Workspace, path: str) -> str:
    oid: str = yaml.safe_load(workspace.read(f"{path}.pipe"))["outs"][0]["oid"]
    return oid


def _diff_json(cli: Cli, *args: str) -> Any:
    return json.loads(cli.run("diff", *args, "--json", "--show-hash").stdout)


def _cache_object(workspace: Workspace, oid: str) -> Path:
    return workspace.root / ".pipe/cache/objects" / oid_to_relpath(oid)


def test_workspace_against_head_lists_changes_inside_directories(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    old_dir = _pointer_oid(workspace, "data")
    workspace.write({"data": {"a.csv": "a,10\n", "c.csv": "c,3\n"}})
    os.remove(workspace.root / "notes.txt")

    result = _diff_json(cli)

    new_dir = result["modified"][0]["hash"]["new"]
    assert new_dir.endswith(".dir") and new_dir != old_dir
    assert result == {
        "added": [{"path": "data/c.csv", "hash": _oid("c,3\n")}],
        "deleted": [{"path": "notes.txt", "hash": _oid("first notes\n")}],
        "modified": [
            {"path": "data/", "hash": {"old": old_dir, "new": new_dir}},
            {"path": "data/a.csv", "hash": {"old": _oid("a,1\n"), "new": _oid("a,10\n")}},
        ],
        "renamed": [],
        "not in cache": [],
    }


def test_without_show_hash_entries_hold_only_paths(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    workspace.write({"data": {"c.csv": "c,3\n"}})

    result = json.loads(cli.run("diff", "--json").stdout)

    assert result == {"added": [{"path": "data/c.csv"}], "deleted": [], "modified": [{"path": "data/"}],
                      "renamed": [], "not in cache": []}


def test_nothing_changed_is_an_empty_json_object_and_a_message(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")

    assert json.loads(cli.run("diff", "--json").stdout) == {}
    result = cli.run("diff")
    assert result.stdout == ""
    assert "no changes between 'HEAD' and 'workspace'" in result.stderr


def test_two_revisions_pair_a_moved_directory_and_its_files_as_renames(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    dir_oid = _pointer_oid(workspace, "data")
    cli.run("remove", "data.pipe")
    (workspace.root / "data").rename(workspace.root / "inputs")
    workspace.write({"notes.txt": "second notes\n"})
    cli.run("add", "inputs", "notes.txt")
    workspace.commit("moved")

    result = _diff_json(cli, "HEAD~1", "HEAD")

    assert result == {  # no "not in cache" between two revisions (DVC hides it)
        "added": [],
        "deleted": [],
        "modified": [{"path": "notes.txt", "hash": {"old": _oid("first notes\n"), "new": _oid("second notes\n")}}],
        "renamed": [
            {"path": {"old": "data/", "new": "inputs/"}, "hash": dir_oid},
            {"path": {"old": "data/a.csv", "new": "inputs/a.csv"}, "hash": _oid("a,1\n")},
            {"path": {"old": "data/b.csv", "new": "inputs/b.csv"}, "hash": _oid("b,2\n")},
        ],
    }


def test_a_renamed_file_with_a_twin_pairs_in_path_order(workspace: Workspace, cli: Cli) -> None:
    # DVC's rule: each added path, in path order, takes the first deleted path with the same oid.
    workspace.track({"x1": "same\n", "x2": "same\n"})
    workspace.commit("twins")
    cli.run("remove", "x1.pipe", "x2.pipe")
    for old, new in (("x1", "y1"), ("x2", "y2")):
        (workspace.root / old).rename(workspace.root / new)
    cli.run("add", "y1", "y2")
    workspace.commit("renamed")

    result = json.loads(cli.run("diff", "HEAD~1", "HEAD", "--json").stdout)

    assert result["renamed"] == [{"path": {"old": "x1", "new": "y1"}}, {"path": {"old": "x2", "new": "y2"}}]
    assert result["added"] == result["deleted"] == []


def test_stage_outs_recorded_in_the_lock_are_compared(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"in.txt": "one\n"})
    workspace.stage("copy", "mkdir -p out && cp in.txt out/copy.txt && cp in.txt model.bin",
                    deps=["in.txt"], outs=["out", "model.bin"])
    cli.run("repro")
    workspace.commit("first run")
    workspace.write({"in.txt": "two\n"})
    cli.run("repro")
    workspace.commit("second run")

    between = json.loads(cli.run("diff", "HEAD~1", "HEAD", "--json").stdout)
    assert between == {"added": [], "deleted": [], "renamed": [],
                       "modified": [{"path": "model.bin"}, {"path": "out/"}, {"path": "out/copy.txt"}]}

    (workspace.root / "model.bin").write_text("edited by hand\n")  # the workspace is hashed as it is now
    against_workspace = _diff_json(cli)
    assert against_workspace["modified"] == [
        {"path": "model.bin", "hash": {"old": _oid("two\n"), "new": _oid("edited by hand\n")}}
    ]


def test_one_revision_is_compared_with_the_workspace(workspace: Workspace, cli: Cli) -> None:
    workspace.track({"d.txt": "v1\n"})
    workspace.commit("v1")
    workspace.track({"d.txt": "v2\n"})
    workspace.commit("v2")
    workspace.write({"d.txt": "v3\n"})

    result = _diff_json(cli, "HEAD~1")

    assert result["modified"] == [{"path": "d.txt", "hash": {"old": _oid("v1\n"), "new": _oid("v3\n")}}]


def test_targets_limit_the_diff_to_those_paths(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    workspace.write({"data": {"a.csv": "a,10\n", "b.csv": "b,20\n"}, "notes.txt": "changed\n"})

    inside = json.loads(cli.run("diff", "--json", "--targets", "data/a.csv").stdout)
    assert inside["modified"] == [{"path": "data/a.csv"}]
    pointer = json.loads(cli.run("diff", "--json", "--targets", "notes.txt.pipe").stdout)
    assert pointer["modified"] == [{"path": "notes.txt"}]
    both = json.loads(cli.run("diff", "--targets", "data", "notes.txt", "--json").stdout)  # DVC's nargs="*"
    assert [e["path"] for e in both["modified"]] == ["data/", "data/a.csv", "data/b.csv", "notes.txt"]
    repeated = json.loads(cli.run("diff", "HEAD", "--targets", "data/b.csv", "--targets", "notes.txt", "--json").stdout)
    assert [e["path"] for e in repeated["modified"]] == ["data/b.csv", "notes.txt"]


def test_a_target_tracked_on_neither_side_is_an_error_naming_it(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")

    result = cli.run("diff", "--targets", "nowhere.csv", exit_code=1)

    assert "'nowhere.csv'" in result.stderr and "pipe status" in result.stderr


def test_a_target_added_since_the_revision_is_not_an_error(workspace: Workspace, cli: Cli) -> None:
    workspace.commit("nothing tracked yet")
    workspace.track({"new.csv": "n\n"})

    result = json.loads(cli.run("diff", "--json", "--targets", "new.csv").stdout)

    assert result["added"] == [{"path": "new.csv"}]


def test_unknown_revision_is_an_error_naming_it(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("diff", "no-such-rev", exit_code=1)

    assert "'no-such-rev'" in result.stderr and "git log" in result.stderr


def test_missing_manifest_of_a_revision_is_an_error_with_the_fetch_hint(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    manifest = _cache_object(workspace, _pointer_oid(workspace, "data"))
    manifest.unlink()
    workspace.write({"data": {"c.csv": "c,3\n"}})

    result = cli.run("diff", exit_code=1)

    assert "'data'" in result.stderr and "not in the cache" in result.stderr
    assert "pipe fetch --rev HEAD data" in result.stderr


def test_an_unchanged_directory_needs_no_manifest(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    _cache_object(workspace, _pointer_oid(workspace, "data")).unlink()
    workspace.write({"notes.txt": "changed\n"})

    result = json.loads(cli.run("diff", "--json").stdout)

    assert result["modified"] == [{"path": "notes.txt"}]


def test_changed_data_whose_old_object_left_the_cache_is_listed_not_in_cache(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    _cache_object(workspace, _oid("first notes\n")).unlink()
    os.remove(workspace.root / "notes.txt")

    result = _diff_json(cli)
    assert result["deleted"] == result["not in cache"] == [{"path": "notes.txt", "hash": _oid("first notes\n")}]
    hidden = json.loads(cli.run("diff", "--json", "--hide-missing").stdout)
    assert "not in cache" not in hidden


def test_diff_hashes_the_workspace_without_writing_to_the_cache(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    workspace.write({"data": {"c.csv": "c,3\n"}})

    cli.run("diff")

    assert not _cache_object(workspace, _oid("c,3\n")).exists()


def test_markdown_table_is_dvcs(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    workspace.write({"data": {"c.csv": "c,3\n"}})

    result = cli.run("diff", "--md")

    assert result.stdout == (
        "| Status   | Path       |\n"
        "|----------|------------|\n"
        "| added    | data/c.csv |\n"
        "| modified | data/      |\n"
    )


def test_text_output_shows_sizes_and_a_files_summary(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    workspace.commit("data")
    workspace.write({"data": {"c.csv": "c,3\n" * 100}})
    os.remove(workspace.root / "notes.txt")

    result = cli.run("diff")

    assert "data/c.csv" in result.stdout and "400 B" in result.stdout
    assert "files summary: 1 added, 1 deleted" in result.stdout  # the directory itself is not a file


def test_a_project_in_a_subdirectory_of_the_repository(git_only: Path, cli: Cli,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    project = git_only / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    cli.run("init")
    (project / "d.txt").write_text("v1\n")
    cli.run("add", "d.txt")
    git(git_only, "add", "-A")
    git(git_only, "commit", "-q", "-m", "v1")
    (project / "d.txt").write_text("v2\n")
    cli.run("add", "d.txt")
    git(git_only, "commit", "-q", "-am", "v2")

    result = _diff_json(cli, "HEAD~1", "HEAD")

    assert result["modified"] == [{"path": "d.txt", "hash": {"old": _oid("v1\n"), "new": _oid("v2\n")}}]


def test_a_revision_that_looks_like_markup_is_printed_as_typed(workspace: Workspace) -> None:
    workspace.commit("[/] a message rich would read as a closing tag")
    result = workspace.pipe("diff", "HEAD^{/[/]}", "HEAD")
    assert "HEAD^{/[/]}" in result.output
