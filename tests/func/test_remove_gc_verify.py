"""pipe remove, pipe gc and pipe cache verify."""

from __future__ import annotations

import os

import pytest

from tests.conftest import Cli, Workspace


def test_remove_stops_tracking_but_keeps_data(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"big.bin": "B", "other": "O"}})
    cli.run("add", "data/big.bin", "data/other")
    cli.run("remove", "data/big.bin.pipe")
    assert not (workspace.root / "data/big.bin.pipe").exists()
    assert workspace.read("data/big.bin") == "B"
    assert workspace.read("data/.gitignore") == "/other\n"


def test_remove_with_outs_deletes_the_data(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"a": "1"}})
    cli.run("add", "d")
    cli.run("remove", "--outs", "d.pipe")
    assert not (workspace.root / "d").exists() and not (workspace.root / ".gitignore").exists()


def test_remove_of_a_non_pointer_is_refused(workspace: Workspace, cli: Cli) -> None:
    before = workspace.snapshot()
    result = cli.run("remove", "nothing.pipe", exit_code=1)
    assert "'nothing.pipe'" in result.stderr and "pointer" in result.stderr
    assert workspace.snapshot() == before


def test_remove_of_a_stage_drops_it_its_lock_entry_and_ignore_lines_keeping_comments(
    workspace: Workspace, cli: Cli
) -> None:
    # DVC's `dvc remove STAGE`: the stage leaves dvc.yaml (comments kept) and dvc.lock; its out stays
    workspace.write({
        "foo": "foo\n",
        "pipeline.yaml": "# my stages\nstages:\n  s:\n    cmd: cp foo bar  # copy\n    deps: [foo]\n"
                         "    outs: [bar]\n  t:\n    cmd: cp bar baz\n    deps: [bar]\n    outs: [baz]\n",
    })
    cli.run("repro")
    assert "removed stage 't' (baz kept)" in cli.run("remove", "t").stderr
    assert workspace.read("pipeline.yaml") == ("# my stages\nstages:\n  s:\n    cmd: cp foo bar  # copy\n"
                                               "    deps: [foo]\n    outs: [bar]\n")
    assert "baz" not in workspace.read("pipeline.lock") and "bar" in workspace.read("pipeline.lock")
    assert workspace.read(".gitignore") == "/bar\n" and workspace.read("baz") == "foo\n"
    workspace.write({"bar": "changed by hand\n"})
    before = workspace.snapshot()
    refused = cli.run("remove", "--outs", "s", exit_code=1)
    assert "'bar' has changes that are not in the cache" in refused.stderr and workspace.snapshot() == before
    cli.run("remove", "--outs", "--force", "s")
    assert not (workspace.root / "bar").exists()
    assert "'nope' is neither a pointer file nor a stage" in cli.run("remove", "nope", exit_code=1).stderr


@pytest.mark.parametrize("target", [":t", "pipeline.yaml:t", "./pipeline.yaml:t"])
def test_remove_takes_dvcs_file_forms_of_a_stage_name(workspace: Workspace, cli: Cli, target: str) -> None:
    workspace.write({"pipeline.yaml": "stages:\n  s:\n    cmd: echo s > a\n    outs: [a]\n"
                                      "  t:\n    cmd: echo t > b\n    outs: [b]\n"})
    cli.run("repro")
    assert "removed stage 't'" in cli.run("remove", target).stderr
    assert "  t:" not in workspace.read("pipeline.yaml") and "  s:" in workspace.read("pipeline.yaml")


def test_gc_needs_a_scope(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("gc", exit_code=1)
    assert "--workspace" in result.stderr and "--all-commits" in result.stderr


def test_gc_workspace_dry_then_real(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"f": "version 1"})
    cli.run("add", "f")
    workspace.write({"f": "version 2"})
    cli.run("add", "f")
    dry = cli.run("gc", "--workspace", "--dry")
    assert "would remove 1 object(s), 9 B; 1 kept" in dry.stderr
    assert len(list(workspace.project().store.iter_oids())) == 2
    cli.run("gc", "--workspace", "-f")
    assert len(list(workspace.project().store.iter_oids())) == 1
    os.unlink(workspace.root / "f")
    cli.run("checkout")
    assert workspace.read("f") == "version 2"


def test_gc_all_commits_keeps_objects_of_older_commits(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"f": "version 1"})
    cli.run("add", "f")
    workspace.commit("v1")
    workspace.write({"f": "version 2"})
    cli.run("add", "f")
    workspace.commit("v2")
    assert "removed 0 object(s)" in cli.run("gc", "--all-commits", "-f").stderr
    assert "removed 1 object(s)" in cli.run("gc", "--workspace", "-f").stderr


def test_gc_keeps_directory_manifest_and_its_files(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"a": "1", "b": "2"}})
    cli.run("add", "d")
    assert "would remove 0 object(s)" in cli.run("gc", "-w", "--dry").stderr


def test_cache_verify_quarantines_corrupt_objects(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"a": "good", "b": "also good"})
    cli.run("add", "a", "b")
    assert "all 2 object(s) intact" in cli.run("cache", "verify").stderr
    store = workspace.project().store
    victim = min(store.iter_oids())
    path = store.path_of(victim)
    os.chmod(path, 0o644)
    path.write_text("bit rot")
    result = cli.run("cache", "verify", exit_code=1)
    assert f"object '{victim}' is corrupt" in result.stderr and "1 of 2" in result.stderr
    assert not path.exists()
    assert (workspace.root / ".pipe/cache/quarantine" / victim).exists()
    assert "not in cache" in cli.run("status").stdout


def test_gc_all_commits_keeps_stage_outs_of_older_lock_files(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"params.yaml": "n: 1\n"})
    workspace.write_pipeline({"make": {"cmd": "python -c \"import yaml;print(yaml.safe_load(open('params.yaml'))['n'])\" > out.txt",
                                       "params": ["n"], "outs": ["out.txt"]}})
    cli.run("repro")
    workspace.commit("n=1")
    workspace.write({"params.yaml": "n: 2\n"})
    cli.run("repro")
    workspace.commit("n=2")
    assert "removed 0 object(s)" in cli.run("gc", "--all-commits", "-f").stderr
    workspace.git("checkout", "-q", "HEAD~1")
    cli.run("checkout")
    assert workspace.read("out.txt") == "1\n"
    workspace.git("checkout", "-q", "main")
    assert "removed 1 object(s)" in cli.run("gc", "--workspace", "-f").stderr
