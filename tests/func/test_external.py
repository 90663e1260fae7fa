"""pipe ls / get / import / update: data from another pipe repository, by a local git path or file:// URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import MakeRepo, Workspace


def _stale(workspace: Workspace) -> set[str]:
    """Stages that would run and data paths not up to date, from `pipe status --json`."""
    status = json.loads(workspace.pipe("status", "--json").stdout)
    stages = {s["stage"] for s in status.get("stages", []) if s["runs"]}
    return stages | {d["path"] for d in status.get("data", []) if d["states"] != ["up to date"]}


@pytest.fixture
def source(make_repo: MakeRepo, tmp_path: Path) -> Workspace:
    """A source project: data.csv and a directory images/ tracked and pushed (v1 on main), v2 on branch 'next'."""
    repo = make_repo("source", files={"README.md": "hello\n"},
                     tracked={"data.csv": "a,b\n1,2\n", "images": {"1.png": "one", "sub": {"2.png": "two"}}})
    repo.add_remote(tmp_path / "source-store")
    repo.commit("remote")
    repo.pipe("push")
    repo.git("checkout", "-q", "-b", "next")
    repo.track({"data.csv": "a,b\n3,4\n"})
    repo.commit("v2")
    repo.pipe("push")
    repo.git("checkout", "-q", "main")
    repo.pipe("checkout")
    return repo


def test_ls_marks_tracked_data_and_lists_git_files(workspace: Workspace, source: Workspace) -> None:
    result = workspace.pipe("ls", str(source.root), "--json")
    entries = {e["path"]: e for e in json.loads(result.stdout)}
    assert entries["data.csv"]["isout"] and not entries["data.csv"]["isdir"]
    assert entries["images"]["isout"] and entries["images"]["isdir"]
    assert not entries["README.md"]["isout"]
    assert "data.csv.pipe" in entries and ".pipe" not in entries  # the control directory is never listed


def test_ls_of_a_subdirectory_and_recursive(make_repo: MakeRepo, workspace: Workspace) -> None:
    src = make_repo("nested", files={"docs": {"a.md": "a", "deep": {"b.md": "b"}}})
    flat = json.loads(workspace.pipe("ls", f"file://{src.root}", "docs", "--json").stdout)
    assert [(e["path"], e["isdir"]) for e in flat] == [("a.md", False), ("deep", True)]
    deep = json.loads(workspace.pipe("ls", str(src.root), "docs", "-R", "--json").stdout)
    assert [e["path"] for e in deep] == ["a.md", "deep/b.md"]
    missing = workspace.pipe("ls", str(src.root), "nope", exit_code=1)
    assert "'nope' does not exist" in missing.output


def test_get_a_file_and_a_directory_at_a_branch(workspace: Workspace, source: Workspace, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "outside"
    out.mkdir()
    monkeypatch.chdir(out)  # pipe get works outside any project
    from tests.conftest import Cli

    Cli().run("get", str(source.root), "data.csv")
    assert (out / "data.csv").read_text() == "a,b\n1,2\n"
    Cli().run("get", str(source.root), "data.csv", "--rev", "next", "-o", "v2.csv")
    assert (out / "v2.csv").read_text() == "a,b\n3,4\n"
    Cli().run("get", str(source.root), "images", "-o", "imgs", "-j", "2")
    assert (out / "imgs" / "sub" / "2.png").read_text() == "two"
    Cli().run("get", str(source.root), "images/sub/2.png")
    assert (out / "2.png").read_text() == "two"
    Cli().run("get", str(source.root), "README.md")
    assert (out / "README.md").read_text() == "hello\n"
    assert not (out / ".pipe").exists()
    again = Cli().run("get", str(source.root), "data.csv", exit_code=1)
    assert "already exists" in again.output


def test_import_records_the_source_and_update_moves_it(workspace: Workspace, source: Workspace) -> None:
    workspace.pipe("import", str(source.root), "data.csv", "-o", "raw.csv")
    assert workspace.read("raw.csv") == "a,b\n1,2\n"
    pointer = yaml.safe_load(workspace.read("raw.csv.pipe"))
    main_sha = source.git("rev-parse", "main").strip()
    assert pointer["repo"] == {"url": str(source.root), "path": "data.csv", "rev_lock": main_sha}
    assert "raw.csv" in workspace.read(".gitignore")
    workspace.stage("rows", "wc -l < raw.csv > rows.txt", deps=["raw.csv"], outs=["rows.txt"])
    workspace.pipe("repro")
    workspace.commit("import")
    assert _stale(workspace) == set()  # clean: tracked like any pointer

    unchanged = workspace.pipe("update", "raw.csv.pipe")
    assert "already at" in unchanged.output
    assert _stale(workspace) == set()
    workspace.pipe("update", "raw.csv.pipe", "--rev", "next")
    assert _stale(workspace) == {"rows"}  # the stage that reads the import reruns; the data is as recorded
    assert workspace.read("raw.csv") == "a,b\n3,4\n"
    moved = yaml.safe_load(workspace.read("raw.csv.pipe"))
    assert moved["repo"]["rev"] == "next"
    assert moved["repo"]["rev_lock"] == source.git("rev-parse", "next").strip()


def test_an_import_is_a_dep_and_is_pushed_to_our_remote(workspace: Workspace, source: Workspace,
                                                         local_remote: Path) -> None:
    workspace.pipe("import", str(source.root), "images")
    workspace.stage("count", "ls images > count.txt", deps=["images"], outs=["count.txt"])
    workspace.pipe("repro")
    workspace.commit("import and stage")
    workspace.pipe("push")
    clone = workspace.clone()
    clone.pipe("pull")
    assert (clone.root / "images" / "sub" / "2.png").read_text() == "two"
    assert "nothing to do" in clone.pipe("repro").output.lower() or "up to date" in clone.pipe("status").output


def test_a_source_whose_remote_names_a_home_path_over_the_network_is_refused(workspace: Workspace,
                                                                             source: Workspace) -> None:
    from pipeline_engine.errors import ConfigError
    from pipeline_engine.index.external import source_remote_url

    config = b"core:\n  remote: evil\nremotes:\n  evil:\n    url: /home/user/.ssh\n"
    with pytest.raises(ConfigError, match="from the network may not name"):
        source_remote_url("https://example.invalid/repo.git", config, "HEAD")
    with pytest.raises(ConfigError, match="under a home directory"):
        source_remote_url(str(source.root), config.replace(b"/home/user/.ssh", b"~/.ssh"), "HEAD")
    assert source_remote_url(str(source.root), config.replace(b"/home/user/.ssh", b"store"), "HEAD") == str(
        source.root.resolve() / "store")


def test_a_source_config_with_credentials_is_refused(workspace: Workspace, source: Workspace) -> None:
    source.write({".pipe": {"config.yaml": "core:\n  remote: s\nremotes:\n  s:\n    url: https://u:secret@example.invalid/x\n"}})
    source.git("add", "-f", ".pipe/config.yaml")
    source.git("commit", "-q", "-m", "hostile config")
    result = workspace.pipe("get", str(source.root), "data.csv", "-o", "x.csv", exit_code=1)
    assert "carries credentials" in result.output and "secret" not in result.output
    assert not (workspace.root / "x.csv").exists()


def test_a_hostile_pointer_in_the_source_is_refused(workspace: Workspace, make_repo: MakeRepo) -> None:
    evil = make_repo("evil", files={"x.pipe": "schema: 1\nouts:\n- path: ../../etc/passwd\n  hash: xxh3_128\n"
                                              "  oid: 0123456789abcdef0123456789abcdef\n  size: 1\n"})
    result = workspace.pipe("get", str(evil.root), "x", exit_code=1)
    assert "Traceback" not in result.output and "x.pipe" in result.output


def test_an_unknown_source_or_revision_is_one_clean_error(workspace: Workspace, source: Workspace,
                                                          tmp_path: Path) -> None:
    gone = workspace.pipe("ls", str(tmp_path / "nowhere"), exit_code=1)
    assert "cannot clone" in gone.output
    bad_rev = workspace.pipe("ls", str(source.root), "--rev", "nope", exit_code=1)
    assert "unknown revision 'nope'" in bad_rev.output
    leftovers = list((workspace.root / ".pipe" / "tmp").glob(".pipetmp-*-external"))
    assert leftovers == []


def test_pull_restores_an_import_from_its_source_when_our_remote_lacks_it(workspace: Workspace, source: Workspace,
                                                                          local_remote: Path) -> None:
    workspace.pipe("import", str(source.root), "images")
    workspace.pipe("import", str(source.root), "data.csv", "--rev", "next")
    workspace.track({"own.csv": "mine\n"})
    workspace.commit("imports, never pushed")
    workspace.pipe("push", "own.csv")  # our remote holds our own data only
    clone = workspace.clone()
    clone.pipe("pull")
    assert (clone.root / "images" / "1.png").read_text() == "one"
    assert (clone.root / "data.csv").read_text() == "a,b\n3,4\n"  # the recorded commit, not the source's HEAD
    assert (clone.root / "own.csv").read_text() == "mine\n"


def test_pull_prefers_our_remote_over_the_source(workspace: Workspace, source: Workspace, local_remote: Path,
                                                 tmp_path: Path) -> None:
    workspace.pipe("import", str(source.root), "data.csv")
    workspace.commit("import")
    workspace.pipe("push")
    import shutil

    shutil.rmtree(tmp_path / "source-store")  # the source's remote is gone: only ours can serve it
    clone = workspace.clone()
    clone.pipe("pull")
    assert (clone.root / "data.csv").read_text() == "a,b\n1,2\n"


def test_api_reads_from_a_git_url_at_a_revision(workspace: Workspace, source: Workspace) -> None:
    from pipeline_engine import api
    from pipeline_engine.errors import PathError

    url = f"file://{source.root}"
    assert api.read("data.csv", repo=url) == "a,b\n1,2\n"
    assert api.read("data.csv", repo=url, rev="next") == "a,b\n3,4\n"
    assert api.read("images/sub/2.png", repo=url, mode="rb") == b"two"
    with api.open("README.md", repo=url) as f:
        assert f.read() == "hello\n"
    with pytest.raises(PathError, match="is a directory"):
        api.read("images", repo=url)


def test_ls_inside_a_tracked_directory_reads_its_manifest_from_the_source_remote(workspace: Workspace,
                                                                                 source: Workspace) -> None:
    inside = json.loads(workspace.pipe("ls", str(source.root), "images", "--json").stdout)
    assert [(e["path"], e["isout"], e["isdir"]) for e in inside] == [("1.png", True, False), ("sub", True, True)]
    deeper = json.loads(workspace.pipe("ls", str(source.root), "images/sub", "--json").stdout)
    assert [e["path"] for e in deeper] == ["2.png"]
    everything = json.loads(workspace.pipe("ls", str(source.root), "-R", "--json").stdout)
    paths = {e["path"]: e["isout"] for e in everything}
    assert paths["images/sub/2.png"] and paths["data.csv"] and not paths["README.md"]
    plain = workspace.pipe("ls", str(source.root)).stdout.splitlines()
    assert "out images/" in plain and "    README.md" in plain


def test_get_ls_and_import_read_a_local_source_without_a_remote_from_its_cache(make_repo: MakeRepo,
                                                                               workspace: Workspace) -> None:
    # DVC's get/import/ls of a repository on this machine read its cache: no remote needed
    src = make_repo("no-remote", tracked={"data.csv": "a,b\n1,2\n", "images": {"1.png": "one", "sub": {"2.png": "two"}}})
    workspace.pipe("get", str(src.root), "data.csv", "-o", "got.csv")
    assert (workspace.root / "got.csv").read_text() == "a,b\n1,2\n"
    workspace.pipe("get", str(src.root), "images/sub/2.png")
    assert (workspace.root / "2.png").read_text() == "two"
    inside = json.loads(workspace.pipe("ls", str(src.root), "images", "--json").stdout)
    assert [e["path"] for e in inside] == ["1.png", "sub"]
    workspace.pipe("import", str(src.root), "images", "-o", "imgs")
    assert (workspace.root / "imgs" / "sub" / "2.png").read_text() == "two"


def test_get_takes_what_the_local_source_cache_lacks_from_its_remote(workspace: Workspace, source: Workspace) -> None:
    cached = source.root / ".pipe" / "cache" / "objects"
    for obj in [p for p in cached.rglob("*") if p.is_file()]:
        obj.chmod(0o644)
        obj.unlink()
    workspace.pipe("get", str(source.root), "images", "-o", "imgs")
    assert (workspace.root / "imgs" / "1.png").read_text() == "one"


def test_get_and_import_into_an_existing_directory_put_the_path_inside_it(workspace: Workspace,
                                                                          source: Workspace) -> None:
    # DVC's `get URL PATH -o DIR` / `import ... -o DIR` with DIR an existing directory: DIR/<name>
    (workspace.root / "got").mkdir()
    workspace.pipe("get", str(source.root), "data.csv", "-o", "got")
    assert (workspace.root / "got" / "data.csv").read_text() == "a,b\n1,2\n"
    assert "'got/data.csv' already exists" in workspace.pipe("get", str(source.root), "data.csv", "-o", "got",
                                                             exit_code=1).stderr
    (workspace.root / "raw").mkdir()
    workspace.pipe("import", str(source.root), "images", "-o", "raw")
    assert (workspace.root / "raw" / "images" / "sub" / "2.png").read_text() == "two"
    assert (workspace.root / "raw" / "images.pipe").is_file()


def test_pull_of_imports_only_needs_no_remote_of_ours(workspace: Workspace, source: Workspace) -> None:
    # DVC pulls imports from their sources when the project has no remote; our own data still needs one
    workspace.pipe("import", str(source.root), "images")
    workspace.commit("an import, no remote")
    clone = workspace.clone()
    clone.pipe("pull")
    assert (clone.root / "images" / "sub" / "2.png").read_text() == "two"
    clone.track({"own.csv": "mine\n"})
    assert "no default remote" in clone.pipe("pull", exit_code=1).stderr


def test_get_and_import_a_sub_directory_of_a_tracked_directory(workspace: Workspace, source: Workspace) -> None:
    # DVC gets and imports `images/sub` of a tracked `images` (granular, as checkout does here)
    workspace.pipe("get", str(source.root), "images/sub", "-o", "got")
    assert sorted(p.name for p in (workspace.root / "got").iterdir()) == ["2.png"]
    workspace.pipe("import", str(source.root), "images/sub", "-o", "sub")
    assert (workspace.root / "sub" / "2.png").read_text() == "two"
    assert not _stale(workspace)
    missing = workspace.pipe("get", str(source.root), "images/nope", exit_code=1)
    assert "'images/nope' is inside tracked directory 'images'" in missing.stderr
