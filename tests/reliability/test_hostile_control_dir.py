"""A cloned repository whose `.pipe` (or `.pipe/cache`) is a committed symlink to another project's.

Git stores symlinks, so a repository can ship `.pipe -> ../victim/.pipe`: every command would then
use the other project's config, lock and memo, and `pipe gc` (which keeps only what this project
uses) would empty the other project's cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Cli, MakeRepo, Workspace, git

pytestmark = pytest.mark.reliability


def _objects(repo: Workspace) -> list[str]:
    return sorted(str(p) for p in (repo.root / ".pipe/cache/objects").rglob("*") if p.is_file())


def _victim(make_repo: MakeRepo) -> Workspace:
    """A project whose cache holds an old version that only the cache has."""
    victim = make_repo("victim", tracked={"model.bin": "v1\n"})
    victim.track({"model.bin": "v2\n"})
    assert len(_objects(victim)) == 2
    return victim


def _clone_with_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: str, target: str) -> Path:
    """A repository committing `link` -> `target`, cloned; the cwd is the clone."""
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    if "/" in link:
        (origin / link).parent.mkdir(parents=True)
        (origin / ".pipe/config.yaml").write_text("schema: 1\n")
    os.symlink(target, origin / link)
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "hostile")
    git(tmp_path, "clone", "-q", str(origin), "hostile")
    monkeypatch.chdir(tmp_path / "hostile")
    return tmp_path / "hostile"


@pytest.mark.parametrize("command", [("gc", "-w", "-f"), ("status",), ("init", "-f"), ("config", "core.jobs", "3")])
def test_a_control_dir_that_is_a_symlink_to_another_project_is_refused(
    make_repo: MakeRepo, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    victim = _victim(make_repo)
    before = victim.snapshot()
    _clone_with_link(tmp_path, monkeypatch, ".pipe", "../victim/.pipe")
    result = cli.run(*command, exit_code=1)
    assert "'.pipe'" in result.stderr and "is a symlink" in result.stderr, result.stderr
    assert len(_objects(victim)) == 2, "the other project's cache was emptied"
    assert victim.snapshot() == before


@pytest.mark.parametrize(("link", "target"), [(".pipe/cache", "../../victim/.pipe/cache"),
                                              (".pipe/cache/objects", "../../../victim/.pipe/cache/objects")])
def test_a_cache_that_is_a_symlink_to_another_projects_cache_counts_it_as_a_user(
    make_repo: MakeRepo, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: str, target: str
) -> None:
    victim = _victim(make_repo)
    _clone_with_link(tmp_path, monkeypatch, link, target)
    result = cli.run("gc", "-w", "-f", exit_code=1)
    assert "shared with 1 other project" in result.stderr and str(victim.root) in result.stderr, result.stderr
    assert len(_objects(victim)) == 2, "the other project's cache was emptied"


def test_a_local_config_linked_to_another_projects_is_never_read(
    make_repo: MakeRepo, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = make_repo("victim")
    secret_remote = tmp_path / "victims-remote"
    victim.pipe("config", "--local", "remote.store.url", str(secret_remote))
    hostile = _clone_with_link(tmp_path, monkeypatch, ".pipe/config.local.yaml",
                               "../../victim/.pipe/config.local.yaml")
    (hostile / ".pipe/config.yaml").write_text("schema: 1\ncore:\n  remote: store\nremotes:\n  store:\n    url: elsewhere\n")
    for command in (("status",), ("config", "--list")):
        result = cli.run(*command, exit_code=1)
        assert ".pipe/config.local.yaml is a symlink" in result.stderr, result.stderr
        assert str(secret_remote) not in result.output
