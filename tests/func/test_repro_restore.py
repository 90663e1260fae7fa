"""Restoring instead of running (issue 8, group 1): the run cache with `cache: false` outs, deleted outs,
`repro --pull` through the remote's run cache, stages with no deps or outs, pointer-tracked deps
saved before their dependents run, and an out's exec bit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from pipeline_engine.ops.repro import repro
from tests.conftest import Cli, Workspace
from tests.func.repro_helpers import Counter, lock_of
from tests.s3server import S3Server, s3_bucket_fixture, s3_server_fixture  # noqa: F401 - fixtures


def train_stage(counter: Counter) -> dict[str, object]:
    """The usual train stage: a param, a cached model and an uncached metrics file (issue 8's reproduction)."""
    return {
        "cmd": counter.cmd("train", "echo ${lr} > model.txt && echo '{\"lr\": ${lr}}' > m.json"),
        "params": ["lr"],
        "outs": ["model.txt"],
        "metrics": [{"m.json": {"cache": False}}],
    }


def set_lr(workspace: Workspace, lr: str) -> None:
    workspace.write({"params.yaml": f"lr: {lr}\n"})


def assert_plain_file(path: Path) -> None:
    """Not a link into the cache: the user may edit it in place, as a git-tracked file."""
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode), f"{path} is not a regular file"
    assert st.st_nlink == 1, f"{path} is hardlinked ({st.st_nlink} links)"
    assert st.st_mode & stat.S_IWUSR, f"{path} is read-only"


def test_param_revert_restores_a_stage_with_an_uncached_metrics_out(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    counter = Counter(tmp_path / "counts")
    set_lr(workspace, "0.1")
    workspace.write_pipeline({"train": train_stage(counter)})
    cli.run("repro")
    set_lr(workspace, "0.3")
    cli.run("repro")
    assert counter.runs("train") == 2
    set_lr(workspace, "0.1")
    result = cli.run("repro")
    assert counter.runs("train") == 2, f"train ran again instead of being restored: {result.stderr}"
    assert "restored" in result.stderr
    assert workspace.read("model.txt").strip() == "0.1"
    assert workspace.read("m.json").strip() == '{"lr": 0.1}'
    assert_plain_file(workspace.root / "m.json")
    assert lock_of(workspace.root)["stages"]["train"]["params"]["params.yaml"]["lr"] == 0.1
    assert "up to date" in cli.run("status").stderr
    # The metrics file stays the user's file, for git: not git-ignored like the cached model.
    ignored = (workspace.root / ".gitignore").read_text()
    assert "model.txt" in ignored and "m.json" not in ignored


@pytest.mark.parametrize("deleted", ["m.json", "model.txt"])
def test_deleted_out_of_an_unchanged_stage_with_an_uncached_out_is_restored(
    workspace: Workspace, cli: Cli, tmp_path: Path, deleted: str
) -> None:
    counter = Counter(tmp_path / "counts")
    set_lr(workspace, "0.2")
    workspace.write_pipeline({"train": train_stage(counter)})
    cli.run("repro")
    (workspace.root / deleted).unlink()
    result = cli.run("repro")
    assert counter.runs("train") == 1, f"train ran again: {result.stderr}"
    assert "restored" in result.stderr
    assert workspace.read("m.json").strip() == '{"lr": 0.2}'
    assert workspace.read("model.txt").strip() == "0.2"
    assert_plain_file(workspace.root / "m.json")


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink"])
def test_uncached_out_stays_a_plain_file_with_link_cache_types(
    workspace: Workspace, cli: Cli, tmp_path: Path, cache_type: str
) -> None:
    config = workspace.root / ".pipe/config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data.setdefault("cache", {})["type"] = cache_type
    config.write_text(yaml.safe_dump(data))
    counter = Counter(tmp_path / "counts")
    set_lr(workspace, "0.1")
    workspace.write_pipeline({"train": train_stage(counter)})
    cli.run("repro")
    assert_plain_file(workspace.root / "m.json")
    (workspace.root / "m.json").unlink()
    (workspace.root / "model.txt").unlink()
    cli.run("repro")
    model = workspace.root / "model.txt"
    assert model.is_symlink() or os.stat(model).st_nlink > 1, "the cached out should be linked"
    assert_plain_file(workspace.root / "m.json")
    with open(workspace.root / "m.json", "a") as f:  # in place, as an editor would: never into the cache
        f.write("edited\n")
    (workspace.root / "m.json").unlink()
    cli.run("repro")
    assert workspace.read("m.json").strip() == '{"lr": 0.1}'
    assert counter.runs("train") == 1


def test_uncached_directory_out_is_restored_as_copies(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    counter = Counter(tmp_path / "counts")
    set_lr(workspace, "1")
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "mkdir -p rep && echo ${lr} > rep/a && echo x > rep/b"),
                                    "params": ["lr"], "outs": [{"rep": {"cache": False}}]}})
    cli.run("repro")
    set_lr(workspace, "2")
    cli.run("repro")
    set_lr(workspace, "1")
    cli.run("repro")
    assert counter.runs("s") == 2
    assert workspace.read("rep/a") == "1\n" and workspace.read("rep/b") == "x\n"
    assert_plain_file(workspace.root / "rep/a")


def test_frozen_stage_restores_its_deleted_uncached_out_as_a_copy(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    config = workspace.root / ".pipe/config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data.setdefault("cache", {})["type"] = "hardlink"
    config.write_text(yaml.safe_dump(data))
    counter = Counter(tmp_path / "counts")
    set_lr(workspace, "0.5")
    workspace.write_pipeline({"train": train_stage(counter)})
    cli.run("repro")
    cli.run("freeze", "train")
    (workspace.root / "m.json").unlink()
    cli.run("repro")
    assert counter.runs("train") == 1
    assert workspace.read("m.json").strip() == '{"lr": 0.5}'
    assert_plain_file(workspace.root / "m.json")


def test_persist_out_still_never_restored(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    counter = Counter(tmp_path / "counts")
    set_lr(workspace, "1")
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "echo ${lr} >> log.txt"), "params": ["lr"],
                                    "outs": [{"log.txt": {"persist": True, "cache": False}}]}})
    cli.run("repro")
    set_lr(workspace, "2")
    cli.run("repro")
    set_lr(workspace, "1")
    cli.run("repro")
    assert counter.runs("s") == 3
    assert workspace.read("log.txt").split() == ["1", "2", "1"]


def test_stage_without_deps_or_outs_runs_on_every_repro(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    counter = Counter(tmp_path / "counts")
    workspace.write_pipeline({"notify": {"cmd": counter.cmd("notify", "true")},
                              "quiet": {"cmd": counter.cmd("quiet", "echo hi > q.txt"), "outs": ["q.txt"]}})
    cli.run("repro")
    cli.run("repro")
    cli.run("repro")
    assert counter.runs("notify") == 3
    assert counter.runs("quiet") == 1
    status = cli.run("status", exit_code=None)
    assert "notify" in status.stdout + status.stderr
    assert "no deps, params or outs" in status.stdout + status.stderr
    assert "quiet" not in status.stdout
    why = cli.run("why", "notify", exit_code=None)
    assert "runs on every 'pipe repro'" in why.stdout + why.stderr


def test_repro_saves_a_changed_pointer_tracked_dep_before_its_dependents(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    counter = Counter(tmp_path / "counts")
    workspace.write({"foo": "one\n"})
    cli.run("add", "foo")
    workspace.write_pipeline({"use": {"cmd": counter.cmd("use", "cp foo bar"), "deps": ["foo"], "outs": ["bar"]}})
    cli.run("repro")
    os.chmod(workspace.root / "foo", 0o644)
    (workspace.root / "foo").unlink()  # the add may have left a link into the cache
    workspace.write({"foo": "two\n"})
    cli.run("repro")
    assert workspace.read("bar") == "two\n"
    project = workspace.project()
    assert repro(project, []).pointers == ()  # nothing changed since: no pointer rewritten
    (workspace.root / "foo").unlink()
    workspace.write({"foo": "three\n"})
    assert repro(project, []).pointers == ("foo.pipe",)  # for the CLI to say what to commit
    (workspace.root / "foo").unlink()
    workspace.write({"foo": "two\n"})
    result = cli.run("repro")
    assert "git add foo.pipe" in result.stderr, result.stderr
    pointer = yaml.safe_load(workspace.read("foo.pipe"))["outs"][0]
    lock_dep = lock_of(workspace.root)["stages"]["use"]["deps"][0]
    assert pointer["oid"] == lock_dep["oid"], "foo.pipe and pipeline.lock disagree about foo"
    assert "foo" not in cli.run("status").stdout
    # The new content is in the cache: push sends it, and a clone pulls it back.
    workspace.add_remote(tmp_path / "remote", "r")
    cli.run("push")
    workspace.commit("two")
    clone = workspace.clone().root
    cli.run("pull")
    assert (clone / "foo").read_text() == "two\n"
    assert (clone / "bar").read_text() == "two\n"


def test_exec_bit_of_a_stage_out_counts_as_modified_and_is_restored(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    counter = Counter(tmp_path / "counts")
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod +x run.sh"),
                                    "outs": ["run.sh"]}})
    cli.run("repro")
    out = workspace.root / "run.sh"
    assert os.access(out, os.X_OK)
    assert lock_of(workspace.root)["stages"]["s"]["outs"][0].get("isexec") is True
    os.chmod(out, 0o644)
    status = cli.run("status", exit_code=None)
    assert "out 'run.sh' modified" in status.stdout, status.stdout + status.stderr
    why = cli.run("why", "s", exit_code=None)
    assert "executable" in why.stdout + why.stderr
    result = cli.run("repro")
    assert "restored" in result.stderr
    assert counter.runs("s") == 1
    assert os.access(out, os.X_OK)
    assert "up to date" in cli.run("status").stderr


def _pull_case(workspace: Workspace, cli: Cli, counter: Counter, url: str, endpoint: str | None) -> Path:
    """Runs with lr 0.1 then 0.3, pushes with --run-cache, commits lr 0.3; cwd is a clone set to lr 0.1."""
    set_lr(workspace, "0.1")
    workspace.write_pipeline({"train": train_stage(counter)})
    cli.run("repro")
    set_lr(workspace, "0.3")
    cli.run("repro")
    workspace.add_remote(url)
    if endpoint:
        cli.run("remote", "modify", "--local", "store", "endpoint_url", endpoint)
    cli.run("push", "--run-cache")
    workspace.commit("lr 0.3")
    clone = workspace.clone().root
    local = workspace.root / ".pipe/config.local.yaml"
    if local.exists():
        (clone / ".pipe/config.local.yaml").write_text(local.read_text())
    (clone / "params.yaml").write_text("lr: 0.1\n")
    return clone


def _assert_restored_from_remote_run_cache(cli: Cli, clone: Path, counter: Counter) -> None:
    result = cli.run("repro", "--pull")
    assert counter.runs("train") == 2, f"train ran in the clone instead of being restored: {result.stderr}"
    assert "restored" in result.stderr
    assert (clone / "model.txt").read_text().strip() == "0.1"
    assert (clone / "m.json").read_text().strip() == '{"lr": 0.1}'
    assert_plain_file(clone / "m.json")
    # Only the entry this run needed came down, not the remote's whole run cache.
    runs = [p for p in (clone / ".pipe/cache/runs").rglob("*") if p.is_file()]
    assert len(runs) == 1, runs
    # With --no-run-cache the remote's run cache is not asked: the stage runs.
    (clone / "params.yaml").write_text("lr: 0.3\n")
    cli.run("repro", "--pull", "--no-run-cache")
    assert counter.runs("train") == 3


def test_repro_pull_restores_from_the_remote_run_cache(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    counter = Counter(tmp_path / "counts")
    clone = _pull_case(workspace, cli, counter, str(tmp_path / "remote-store"), None)
    _assert_restored_from_remote_run_cache(cli, clone, counter)


@pytest.mark.s3
def test_repro_pull_restores_from_the_remote_run_cache_on_s3(
    workspace: Workspace, cli: Cli, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    counter = Counter(tmp_path / "counts")
    clone = _pull_case(workspace, cli, counter, f"s3://{s3_bucket}/project",
                       s3_server.endpoint_url)
    _assert_restored_from_remote_run_cache(cli, clone, counter)


def test_repro_pull_runs_when_the_remote_has_no_entry(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    counter = Counter(tmp_path / "counts")
    set_lr(workspace, "0.1")
    workspace.write_pipeline({"train": train_stage(counter)})
    cli.run("repro")
    workspace.add_remote(tmp_path / "remote-store")
    cli.run("push", "--run-cache")
    workspace.commit("lr 0.1")
    clone = workspace.clone().root
    (clone / "params.yaml").write_text("lr: 0.7\n")
    cli.run("repro", "--pull")
    assert counter.runs("train") == 2
    assert (clone / "model.txt").read_text().strip() == "0.7"
