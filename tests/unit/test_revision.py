"""RevisionFiles: the workspace and a git commit read the same way, through the same path gate."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipeline_engine.core.revision import RevisionFiles, WorkspaceFiles
from pipeline_engine.errors import ScmError, SpecError, UnsafePathError
from pipeline_engine.scm.git import Git
from tests.conftest import git, write_tree

FILES = {
    "params.yaml": "lr: 1\n",
    "data": {"a.csv.pipe": "x\n", "b.csv.pipe": "y\n", "sub": {"c.txt": "c\n"}},
    "pipeline.yaml": "stages: {}\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose project root is its `proj/` subdirectory, with two commits."""
    root = tmp_path / "repo"
    proj = root / "proj"
    proj.mkdir(parents=True)
    git(root, "init", "-q")
    write_tree(proj, FILES)
    write_tree(root, {"outside.txt": "secret\n"})
    git(root, "add", ".")
    git(root, "commit", "-qm", "one")
    write_tree(proj, {"params.yaml": "lr: 2\n"})
    (proj / "data" / "b.csv.pipe").unlink()
    git(root, "add", "-A")
    git(root, "commit", "-qm", "two")
    return root


def at(repo: Path, rev: str) -> RevisionFiles:
    return Git(repo).files_at(rev, project_prefix="proj")


def test_a_revision_reads_that_commits_files_without_checkout(repo: Path) -> None:
    old, new = at(repo, "HEAD~1"), WorkspaceFiles(repo / "proj")
    assert old.read_text("params.yaml") == "lr: 1\n"
    assert new.read_text("params.yaml") == "lr: 2\n"
    assert old.read_bytes("data/b.csv.pipe") == b"y\n" and new.read_bytes("data/b.csv.pipe") is None
    assert (repo / "proj" / "params.yaml").read_text() == "lr: 2\n"  # nothing was checked out


def test_both_views_answer_the_same_questions_the_same_way(repo: Path) -> None:
    for files in (at(repo, "HEAD"), WorkspaceFiles(repo / "proj")):
        assert files.list_files() == ["data/a.csv.pipe", "data/sub/c.txt", "params.yaml", "pipeline.yaml"]
        assert files.list_files(suffix=".pipe") == ["data/a.csv.pipe"]
        assert files.list_files(under="data/sub") == ["data/sub/c.txt"]
        assert files.list_files(under="data/sub/c.txt") == ["data/sub/c.txt"]
        assert files.list_files(under="nowhere") == []
        assert files.is_file("params.yaml") and not files.is_file("data") and not files.is_file("nope")
        assert files.is_dir("data") and files.is_dir("") and not files.is_dir("params.yaml")
        assert files.read_bytes("missing.yaml") is None and files.read_text("data/missing") is None
        assert files.read_bytes("data") is None


def test_rev_label_and_describe(repo: Path) -> None:
    old = at(repo, "HEAD~1")
    assert old.rev == git(repo, "rev-parse", "HEAD~1").strip() and old.label == "HEAD~1"
    assert old.describe("params.yaml") == "params.yaml at 'HEAD~1'"
    ws = WorkspaceFiles(repo / "proj")
    assert (ws.rev, ws.label, ws.describe("params.yaml")) == (None, "workspace", "params.yaml")


def test_an_unknown_revision_names_it_with_a_hint(repo: Path) -> None:
    with pytest.raises(ScmError, match="unknown revision 'nope'") as err:
        Git(repo).files_at("nope")
    assert err.value.hint is not None and "git log" in err.value.hint


def test_the_project_root_is_the_prefix_not_the_git_root(repo: Path) -> None:
    assert at(repo, "HEAD").read_bytes("outside.txt") is None
    assert Git(repo).files_at("HEAD").read_bytes("outside.txt") == b"secret\n"
    assert Git(repo).files_at("HEAD", project_prefix="absent").list_files() == []


@pytest.mark.parametrize("hostile", ["../outside.txt", "/etc/passwd", ".git/config", "data/../../outside.txt",
                                     ".pipe/config.yaml", ".GIT/HEAD", "a\nb"])
def test_hostile_paths_are_refused_in_both_views(repo: Path, hostile: str) -> None:
    (repo / "proj" / ".pipe").mkdir()
    (repo / "proj" / ".pipe" / "config.yaml").write_text("x")
    for files in (at(repo, "HEAD"), WorkspaceFiles(repo / "proj")):
        for read in (files.read_bytes, files.read_text, files.is_file, files.is_dir):
            with pytest.raises(UnsafePathError):
                read(hostile)


def test_a_workspace_symlink_out_of_the_project_is_refused(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", repo / "proj" / "params.yaml.link")
    os.symlink(tmp_path, repo / "proj" / "escape")
    ws = WorkspaceFiles(repo / "proj")
    with pytest.raises(UnsafePathError, match="outside the project"):
        ws.read_bytes("params.yaml.link")
    with pytest.raises(UnsafePathError, match="outside the project"):
        ws.read_bytes("escape/secret")
    assert "params.yaml.link" not in ws.list_files() and "escape/secret" not in ws.list_files()


def test_a_workspace_symlink_inside_the_project_is_followed(repo: Path) -> None:
    os.symlink("data/sub/c.txt", repo / "proj" / "c.link")
    ws = WorkspaceFiles(repo / "proj")
    assert ws.read_text("c.link") == "c\n" and "c.link" in ws.list_files()


def test_a_symlink_in_a_commit_is_never_followed(repo: Path) -> None:
    proj = repo / "proj"
    os.symlink("../outside.txt", proj / "leak.yaml")
    os.symlink("/etc", proj / "etc")
    os.symlink("data", proj / "alias")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "links")
    files = at(repo, "HEAD")
    for name in ("leak.yaml", "etc/passwd", "alias/a.csv.pipe"):
        with pytest.raises(UnsafePathError, match="symbolic link"):
            files.read_bytes(name)
    assert not files.is_file("leak.yaml") and not files.is_dir("alias")
    assert [p for p in files.list_files() if p.startswith(("leak", "etc", "alias"))] == []


def test_text_that_is_not_utf8_names_the_file_and_revision(repo: Path) -> None:
    (repo / "proj" / "bad.yaml").write_bytes(b"a: \xff\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "bad")
    with pytest.raises(SpecError, match=r"bad.yaml at 'HEAD': not UTF-8 text \(byte 3\)"):
        at(repo, "HEAD").read_text("bad.yaml")
    with pytest.raises(SpecError, match=r"^bad.yaml: not UTF-8"):
        WorkspaceFiles(repo / "proj").read_text("bad.yaml")


def test_reading_a_projects_files_at_a_revision_is_fast(tmp_path: Path) -> None:
    """pipeline.yaml + lock + params + 10 pointers at a revision: a few milliseconds after opening."""
    root = tmp_path / "big"
    root.mkdir()
    git(root, "init", "-q")
    write_tree(root, {"pipeline.yaml": "stages: {}\n", "pipeline.lock": "schema: 1\n", "params.yaml": "a: 1\n",
                      "data": {f"f{i}.pipe": f"{i}\n" for i in range(10)},
                      "other": {f"o{i}.txt": "x" for i in range(500)}})
    git(root, "add", ".")
    git(root, "commit", "-qm", "c")
    files = Git(root).files_at("HEAD")
    start = time.perf_counter()
    names = ["pipeline.yaml", "pipeline.lock", "params.yaml", *files.list_files(under="data", suffix=".pipe")]
    assert all(files.read_bytes(n) is not None for n in names) and len(names) == 13
    assert time.perf_counter() - start < 1.0
