"""pipe gc deletes only what it has proved unused: unreadable files stop it, shared caches are detected."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.project import Project
from tests.conftest import Cli, MakeRepo, Workspace, git

FILES = {f"{i}.txt": f"row {i}\n" for i in range(5)}


def _objects(workspace: Workspace) -> set[str]:
    return set(workspace.project().store.iter_oids())


def _manifest(workspace: Workspace) -> Path:
    store = workspace.project().store
    path = store.path_of(next(o for o in store.iter_oids() if o.endswith(".dir")))
    os.chmod(path, 0o644)
    return path


def test_gc_stops_on_a_corrupt_manifest_and_deletes_nothing(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": FILES})
    cli.run("add", "d")
    before = _objects(workspace)
    _manifest(workspace).write_text("{")
    for args in (("gc", "-w", "-f"), ("gc", "-w", "--dry"), ("gc", "-A", "-f")):
        result = cli.run(*args, exit_code=1)
        assert "gc stopped before deleting anything" in result.stderr, args
        assert "d.pipe" in result.stderr and "'d'" in result.stderr
        assert "Traceback" not in result.output
    assert _objects(workspace) == before


def test_gc_stops_on_a_manifest_missing_from_the_cache(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": FILES, "old": "v1"})
    cli.run("add", "d")
    manifest = _manifest(workspace)
    manifest.unlink()
    result = cli.run("gc", "-w", "-f", exit_code=1)
    assert f"object '{manifest.parent.name}{manifest.name}' is not in the cache" in result.stderr
    assert "'pipe fetch'" in result.stderr  # the hint
    assert {hash_bytes(v.encode()) for v in FILES.values()} <= _objects(workspace)


def test_skip_failed_proceeds_and_says_what_it_skipped(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": FILES, "f": "kept"})
    cli.run("add", "d", "f")
    _manifest(workspace).write_text("{")
    result = cli.run("gc", "-w", "-f", "--skip-failed")
    assert "skipped (--skip-failed) workspace: d.pipe" in result.stderr
    assert "removed 5 object(s)" in result.stderr  # the files only the unreadable manifest named
    assert hash_bytes(b"kept") in _objects(workspace)


def test_gc_stops_on_a_broken_pointer_in_the_workspace(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"f": "v1"})
    cli.run("add", "f")
    workspace.write({"g": "g data"})
    cli.run("add", "g")
    (workspace.root / "g.pipe").write_text("outs: [not a mapping\n")
    result = cli.run("gc", "-w", "-f", exit_code=1)
    assert "workspace: g.pipe:" in result.stderr
    assert hash_bytes(b"g data") in _objects(workspace)


def test_gc_all_commits_stops_on_an_unparseable_pointer_in_an_old_commit(
    workspace: Workspace, cli: Cli
) -> None:
    workspace.write({"f": "version 1"})
    cli.run("add", "f")
    pointer = workspace.read("f.pipe")
    # A hand edit that breaks the pointer but still names the object: gc must not guess.
    workspace.write({"f.pipe": pointer.replace("size: 9", "size: nine")})
    workspace.commit("v1, hand-edited")
    old = workspace.git("rev-parse", "HEAD").strip()[:8]
    workspace.write({"f": "version 2", "f.pipe": pointer})
    cli.run("add", "f")
    workspace.commit("v2")
    result = cli.run("gc", "-A", "-f", exit_code=1)
    assert f"commit {old}: f.pipe:" in result.stderr and "'size'" in result.stderr
    assert hash_bytes(b"version 1") in _objects(workspace)
    skipped = cli.run("gc", "-A", "-f", "--skip-failed")
    assert f"skipped (--skip-failed) commit {old}: f.pipe" in skipped.stderr
    assert hash_bytes(b"version 1") not in _objects(workspace)
    assert hash_bytes(b"version 2") in _objects(workspace)


def test_gc_all_commits_stops_on_a_broken_lock_file_in_an_old_commit(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"make": {"cmd": "echo one > out.txt", "outs": ["out.txt"]}})
    cli.run("repro")
    good = workspace.read("pipeline.lock")
    workspace.write({"pipeline.lock": good + "  - ]broken\n"})
    workspace.commit("broken lock")
    old = workspace.git("rev-parse", "HEAD").strip()[:8]
    workspace.write({"pipeline.lock": good})
    workspace.write_pipeline({"make": {"cmd": "echo two > out.txt", "outs": ["out.txt"]}})
    cli.run("repro")
    workspace.commit("two")
    result = cli.run("gc", "-A", "--dry", exit_code=1)
    assert f"commit {old}: pipeline.lock:" in result.stderr
    assert hash_bytes(b"one\n") in _objects(workspace)


def test_dry_run_lists_exactly_what_gc_then_deletes(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": FILES, "f": "v1"})
    cli.run("add", "d", "f")
    workspace.write({"d": {"0.txt": "changed"}, "f": "v2"})
    cli.run("add", "d", "f")
    before = _objects(workspace)
    dry = cli.run("gc", "-w", "--dry", "-v")
    listed = {line.split()[0] for line in dry.stdout.splitlines()}
    assert _objects(workspace) == before
    assert f"would remove {len(listed)} object(s)" in dry.stderr and len(listed) == 3  # old manifest, 0.txt, f
    cli.run("gc", "-w", "-f")
    assert before - _objects(workspace) == listed


def _sharing(cache: Path) -> dict[str, str]:
    """The files of a project whose cache is `cache`."""
    return {".pipe/config.yaml": f"schema: 1\ncache:\n  dir: {cache}\n"}


def test_gc_refuses_while_another_project_shares_the_cache(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, make_repo: MakeRepo
) -> None:
    cache = tmp_path / "shared-cache"
    a = make_repo("a", files=_sharing(cache), tracked={"old.csv": "a, old\n"}).root
    b = make_repo("b", files=_sharing(cache), tracked={"data.csv": "b's only copy\n"}).root
    monkeypatch.chdir(a)
    cli.run("remove", "--outs", "old.csv.pipe")
    before = set(Project(a).store.iter_oids())
    for args in (("gc", "-w", "-f"), ("gc", "-w", "--dry")):
        result = cli.run(*args, exit_code=1)
        assert "is shared with 1 other project(s)" in result.stderr and str(b) in result.stderr
        assert f"pipe gc -w -p {b}" in result.stderr  # the hint
    assert set(Project(a).store.iter_oids()) == before
    result = cli.run("gc", "-w", "-f", "-p", str(b))
    assert "removed 1 object(s)" in result.stderr
    assert set(Project(a).store.iter_oids()) == {hash_bytes(b"b's only copy\n")}


def test_gc_ignores_projects_that_are_gone_or_moved_to_another_cache(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, make_repo: MakeRepo
) -> None:
    cache = tmp_path / "shared-cache"
    a, b, c = (make_repo(n, files=_sharing(cache), tracked={"x": f"{n}\n"}).root for n in "abc")
    subprocess.run(["rm", "-rf", str(b)], check=True)
    (c / ".pipe/config.yaml").write_text(f"schema: 1\ncache:\n  dir: {tmp_path / 'own-cache'}\n")
    monkeypatch.chdir(a)
    assert "would remove 2 object(s)" in cli.run("gc", "-w", "--dry").stderr


def test_a_project_using_another_projects_own_cache_is_protected_both_ways(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, make_repo: MakeRepo
) -> None:
    # The owner has its own .pipe/cache, with nothing registered in it.
    owner = make_repo("owner", files={".pipe/config.yaml": "schema: 1\n"}, tracked={"o.txt": "owner's data\n"}).root
    assert not (owner / ".pipe/cache/projects").exists()
    guest = make_repo("guest", files=_sharing(owner / ".pipe/cache"), tracked={"g.txt": "guest's data\n"}).root
    monkeypatch.chdir(guest)
    result = cli.run("gc", "-w", "-f", exit_code=1)
    assert f"'{owner}'" in result.stderr
    monkeypatch.chdir(owner)
    result = cli.run("gc", "-w", "-f", exit_code=1)
    assert f"'{guest}'" in result.stderr
    cli.run("gc", "-w", "-f", "-p", str(guest))
    assert set(Project(owner).store.iter_oids()) == {hash_bytes(b"owner's data\n"), hash_bytes(b"guest's data\n")}


def test_gc_keeps_data_of_pointers_git_does_not_list(workspace: Workspace, cli: Cli) -> None:
    """Red-team finding: pointers in a nested repository or a git-ignored directory were invisible to gc."""
    cli.run("config", "cache.type", "symlink")
    (workspace.root / "sub").mkdir()
    subprocess.run(["git", "init", "-q"], cwd=workspace.root / "sub", check=True)
    workspace.write({"sub": {"x": "precious\n"}, "data": {"y": "precious too\n"}})
    cli.run("add", "sub/x")
    cli.run("add", "data/y")
    with open(workspace.root / ".git" / "info" / "exclude", "a") as f:
        f.write("data/\n")
    result = cli.run("gc", "-w", "-f")
    assert "removed 0 object(s)" in result.output
    assert workspace.read("sub/x") == "precious\n" and workspace.read("data/y") == "precious too\n"


def test_gc_keeps_what_an_old_lock_records_even_when_that_revisions_pipeline_yaml_is_broken(
    workspace: Workspace, cli: Cli
) -> None:
    workspace.write_pipeline({"make": {"cmd": "echo one > out.txt", "outs": ["out.txt"]}})
    cli.run("repro")
    workspace.write({"pipeline.yaml": workspace.read("pipeline.yaml") + "  broken: [\n"})
    workspace.commit("a lock and a broken pipeline.yaml")
    workspace.write_pipeline({"make": {"cmd": "echo two > out.txt", "outs": ["out.txt"]}})
    cli.run("repro")
    workspace.commit("two")
    cli.run("gc", "-A", "-f")  # gc reads pointers and locks only: the broken pipeline.yaml cannot stop it
    assert hash_bytes(b"one\n") in _objects(workspace)
    assert "removed 1 object(s)" in cli.run("gc", "-w", "-f").stderr


def test_gc_reads_the_history_of_a_project_below_the_git_root(
    git_only: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (git_only / "other.txt").write_text("before the project existed\n")
    git(git_only, "add", "-A")
    git(git_only, "commit", "-q", "-m", "no project yet")
    project = git_only / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    cli.run("init")
    for version in ("v1", "v2", "v3"):
        (project / "d.txt").write_text(version)
        cli.run("add", "d.txt")
        git(git_only, "add", "-A")
        git(git_only, "commit", "-q", "-m", version)
    git(git_only, "tag", "first", "HEAD~2")
    assert "removed 0 object(s)" in cli.run("gc", "-A", "-f").stderr
    cli.run("gc", "-T", "-f")
    assert set(Project(project).store.iter_oids()) == {hash_bytes(b"v1"), hash_bytes(b"v3")}
    cli.run("gc", "-w", "-f")
    assert set(Project(project).store.iter_oids()) == {hash_bytes(b"v3")}


def test_gc_rev_with_an_unknown_revision_or_num_alone_deletes_nothing(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"f": "v1"})
    cli.run("add", "f")
    workspace.commit("v1")
    workspace.write({"f": "v2"})
    cli.run("add", "f")
    before = _objects(workspace)
    for args, named in ((("--rev", "v9"), "'v9'"), (("-w", "-n", "2"), "--rev")):
        result = cli.run("gc", *args, "-f", exit_code=1)
        assert named in result.stderr and "Traceback" not in result.output, args
    assert _objects(workspace) == before


def test_gc_keeps_the_history_of_another_project_given_with_p(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, make_repo: MakeRepo
) -> None:
    cache = tmp_path / "shared-cache"
    a = make_repo("a", files=_sharing(cache), tracked={"a.txt": "a's data\n"}).root
    b = make_repo("b", files=_sharing(cache), tracked={"b.txt": "b v1\n"})
    b.track({"b.txt": "b v2\n"})
    b.commit("b v2")
    git(a, "tag", "only-in-a")
    monkeypatch.chdir(a)
    cli.run("gc", "-A", "-f", "-p", str(b.root))
    assert set(Project(a).store.iter_oids()) == {hash_bytes(x) for x in (b"a's data\n", b"b v1\n", b"b v2\n")}
    a_tag = cli.run("gc", "--rev", "only-in-a", "-f", "-p", str(b.root), exit_code=1)
    assert f"project '{b.root}'" in a_tag.stderr and "'only-in-a'" in a_tag.stderr
    cli.run("gc", "-w", "-f", "-p", str(b.root))
    assert set(Project(a).store.iter_oids()) == {hash_bytes(x) for x in (b"a's data\n", b"b v2\n")}
