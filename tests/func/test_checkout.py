"""pipe checkout: restore from the cache, touching only what differs, never losing user changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from tests.conftest import Cli, Workspace

FILES = {f"{i:03}.txt": f"content {i}\n" for i in range(30)}


def _setup(workspace: Workspace) -> None:
    workspace.track({"data/images": FILES, "data/big.bin": b"\x01" * 1000})
    workspace.commit("data")


def test_checkout_restores_deleted_data_byte_for_byte(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    before = workspace.snapshot()
    shutil.rmtree(workspace.root / "data/images")
    os.unlink(workspace.root / "data/big.bin")
    result = cli.run("checkout")
    assert "31 file(s) written" in result.stderr
    assert workspace.snapshot() == before
    assert "up to date" in cli.run("status").stderr


def test_checkout_touches_only_files_that_differ(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    os.unlink(workspace.root / "data/images/003.txt")
    untouched = (workspace.root / "data/images/004.txt").stat().st_ino
    result = cli.run("checkout")
    assert "1 file(s) written" in result.stderr
    assert (workspace.root / "data/images/004.txt").stat().st_ino == untouched
    assert workspace.read("data/images/003.txt") == FILES["003.txt"]


def test_checkout_refuses_to_overwrite_uncached_changes(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    workspace.write({"data": {"images": {"005.txt": "my precious edit"}, "big.bin": "edited too"}})
    before = workspace.snapshot()
    result = cli.run("checkout", exit_code=1)
    assert "data/images/005.txt" in result.stderr and "data/big.bin" in result.stderr
    assert "--force" in result.stderr
    assert workspace.snapshot() == before
    cli.run("checkout", "--force")
    assert workspace.read("data/images/005.txt") == FILES["005.txt"]


def test_checkout_overwrites_content_that_is_safe_in_the_cache(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    workspace.write({"data": {"big.bin": "version 2"}})
    cli.run("add", "data/big.bin")
    workspace.git("checkout", "--", "data/big.bin.pipe")  # back to version 1's pointer
    cli.run("checkout")
    assert (workspace.root / "data/big.bin").read_bytes() == b"\x01" * 1000


def test_checkout_keeps_extra_files_unless_forced(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    workspace.write({"data": {"images": {"extra.txt": "mine"}}})
    result = cli.run("checkout")
    assert "kept 'data/images/extra.txt'" in result.stderr
    assert (workspace.root / "data/images/extra.txt").exists()
    cli.run("checkout", "--force")
    assert not (workspace.root / "data/images/extra.txt").exists()


def test_checkout_of_objects_missing_from_cache_suggests_pull(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    shutil.rmtree(workspace.root / ".pipe/cache/objects")
    os.unlink(workspace.root / "data/big.bin")
    result = cli.run("checkout", "data/big.bin", exit_code=1)
    assert "not in the cache" in result.stderr and "pipe pull" in result.stderr


def test_checkout_follows_git_history(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    workspace.write({"data": {"big.bin": "v2"}})
    cli.run("add", "data/big.bin")
    workspace.commit("v2")
    workspace.git("checkout", "-q", "HEAD~1")
    cli.run("checkout")
    assert (workspace.root / "data/big.bin").read_bytes() == b"\x01" * 1000
    workspace.git("checkout", "-q", "main")
    cli.run("checkout")
    assert workspace.read("data/big.bin") == "v2"


def test_hardlink_cache_type_links_workspace_files(workspace: Workspace, cli: Cli) -> None:
    (workspace.root / ".pipe/config.yaml").write_text("schema: 1\ncache:\n  type: hardlink,copy\n")
    _setup(workspace)
    st = os.stat(workspace.root / "data/big.bin")
    assert st.st_nlink == 2
    shutil.rmtree(workspace.root / "data/images")
    cli.run("checkout")
    assert os.stat(workspace.root / "data/images/001.txt").st_nlink == 2


# --- corrupt objects -------------------------------------------------------------------------


def _corrupt(workspace: Workspace, data: bytes) -> Path:
    obj = workspace.root / ".pipe/cache/objects" / oid_to_relpath(hash_bytes(data))
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.seek(3)
        f.write(b"X")
    return obj


def test_checkout_never_writes_a_corrupt_object_and_checks_out_the_rest(workspace: Workspace, cli: Cli) -> None:
    """The issue's reproduction: a flipped byte was written with exit 0 and status said up to date."""
    _setup(workspace)
    _corrupt(workspace, FILES["007.txt"].encode())
    shutil.rmtree(workspace.root / "data/images")
    os.unlink(workspace.root / "data/big.bin")
    result = cli.run("checkout", exit_code=1)
    assert "data/images/007.txt" in result.stderr and "corrupt" in result.stderr
    assert "pipe pull" in result.stderr
    assert not (workspace.root / "data/images/007.txt").exists()
    assert workspace.read("data/images/008.txt") == FILES["008.txt"]
    assert (workspace.root / "data/big.bin").read_bytes() == b"\x01" * 1000
    assert (workspace.root / ".pipe/cache/quarantine" / hash_bytes(FILES["007.txt"].encode())).is_file()
    status = cli.run("status")
    assert "up to date" not in status.stderr and "data/images" in status.stdout
    assert not list((workspace.root / "data").rglob(".pipetmp-*"))


def test_checkout_of_a_corrupt_single_file_leaves_the_workspace_file_alone(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    _corrupt(workspace, b"\x01" * 1000)
    (workspace.root / "data/big.bin").unlink()
    result = cli.run("checkout", "data/big.bin", exit_code=1)
    assert "data/big.bin" in result.stderr and "pipe pull" in result.stderr
    assert not (workspace.root / "data/big.bin").exists()
    assert "missing" in cli.run("status").stdout


def test_a_corrupt_directory_manifest_is_quarantined_and_named(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    pointer = yaml.safe_load((workspace.root / "data/images.pipe").read_text())
    manifest = workspace.root / ".pipe/cache/objects" / oid_to_relpath(pointer["outs"][0]["oid"])
    os.chmod(manifest, 0o644)
    manifest.write_text("[]")
    shutil.rmtree(workspace.root / "data/images")
    os.unlink(workspace.root / "data/big.bin")
    result = cli.run("checkout", exit_code=1)
    assert "data/images" in result.stderr and "manifest" in result.stderr and "pipe pull" in result.stderr
    assert (workspace.root / "data/big.bin").read_bytes() == b"\x01" * 1000
    assert not manifest.exists()
    assert not (workspace.root / "data/images").exists()


def test_status_hashes_what_checkout_wrote_rather_than_trusting_it(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    (workspace.root / "data/big.bin").unlink()
    cli.run("checkout")
    (workspace.root / "data/big.bin").write_bytes(b"\x02" * 1000)  # same size, new content
    assert "data/big.bin" in cli.run("status").stdout


# --- exec bit of a single tracked file ----------------------------------------------------------


def test_single_file_exec_bit_is_recorded_restored_and_reported(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"run.sh": "#!/bin/sh\necho hi\n"})
    script = workspace.root / "run.sh"
    os.chmod(script, 0o755)
    cli.run("add", "run.sh")
    assert yaml.safe_load((workspace.root / "run.sh.pipe").read_text())["outs"][0]["isexec"] is True
    script.unlink()
    cli.run("checkout")
    assert os.access(script, os.X_OK)
    assert "up to date" in cli.run("status").stderr
    os.chmod(script, 0o644)
    assert "run.sh" in cli.run("status").stdout
    cli.run("checkout")
    assert os.access(script, os.X_OK)
    assert "up to date" in cli.run("status").stderr


def test_a_plain_file_pointer_has_no_isexec_key(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"plain.txt": "x\n"})
    cli.run("add", "plain.txt")
    assert "isexec" not in yaml.safe_load((workspace.root / "plain.txt.pipe").read_text())["outs"][0]


# --- paths inside tracked directories ----------------------------------------------------------


def test_checkout_never_writes_through_a_symlinked_sub_directory(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    workspace.write({"data": {"sub": {"a.txt": "a\n", "b.txt": "b\n"}, "top.txt": "t\n"}})
    cli.run("add", "data")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    shutil.rmtree(workspace.root / "data/sub")
    os.symlink(outside, workspace.root / "data/sub")  # as a hostile commit could leave it
    result = cli.run("checkout", "--force", exit_code=1)
    assert "data/sub" in result.stderr and "symlink" in result.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "mine\n"


def test_forced_checkout_deletes_an_extra_symlink_as_a_link(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    _setup(workspace)
    outside = tmp_path / "outside.txt"
    outside.write_text("not pipe's\n")
    os.symlink(outside, workspace.root / "data/images/link.txt")
    os.unlink(workspace.root / "data/images/001.txt")
    cli.run("checkout", "--force", "data/images", exit_code=None)
    assert outside.read_text() == "not pipe's\n"


def test_checkout_handles_a_file_name_of_250_characters(workspace: Workspace, cli: Cli) -> None:
    name = "n" * 250
    workspace.write({"data": {name: "long\n"}, name: "single\n"})
    cli.run("add", "data", name)
    shutil.rmtree(workspace.root / "data")
    (workspace.root / name).unlink()
    cli.run("checkout")
    assert workspace.read(f"data/{name}") == "long\n" and workspace.read(name) == "single\n"


def test_checkout_keeps_a_directory_of_user_files_where_a_file_is_tracked(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    os.unlink(workspace.root / "data/images/002.txt")
    workspace.write({"data": {"images": {"002.txt": {"mine.txt": "precious\n"}}}})
    result = cli.run("checkout", exit_code=1)
    assert "data/images/002.txt" in result.stderr and "--force" in result.stderr
    assert workspace.read("data/images/002.txt/mine.txt") == "precious\n"
    cli.run("checkout", "--force")
    assert workspace.read("data/images/002.txt") == FILES["002.txt"]


def test_a_tracked_file_replaced_by_a_link_out_of_the_project_is_neither_read_nor_followed(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    _setup(workspace)
    outside = tmp_path / "secret.txt"
    outside.write_text("not pipe's\n")
    os.unlink(workspace.root / "data/big.bin")
    os.symlink(outside, workspace.root / "data/big.bin")
    result = cli.run("status", exit_code=1)
    assert "data/big.bin" in result.stderr and "outside the project" in result.stderr
    result = cli.run("checkout", "data/big.bin", exit_code=1)
    assert "--force" in result.stderr
    cli.run("checkout", "--force", "data/big.bin")
    assert not (workspace.root / "data/big.bin").is_symlink()
    assert (workspace.root / "data/big.bin").read_bytes() == b"\x01" * 1000
    assert outside.read_text() == "not pipe's\n"


def test_a_killed_checkouts_temporary_file_is_not_tracked_data(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace)
    leftover = workspace.root / "data/images/.pipetmp-999999-0123abcd"
    leftover.write_text("half a file")
    assert "up to date" in cli.run("status").stderr
    cli.run("add", "data/images")
    assert "up to date" in cli.run("status").stderr
    assert yaml.safe_load((workspace.root / "data/images.pipe").read_text())["outs"][0]["nfiles"] == len(FILES)


# --- issue 8, group 4: checkout and workspace state ------------------------------------------


def test_a_tracked_empty_directory_is_restored(workspace: Workspace, cli: Cli) -> None:
    (workspace.root / "e").mkdir()
    cli.run("add", "e")
    (workspace.root / "e").rmdir()
    assert "missing" in cli.run("status", exit_code=None).output
    cli.run("checkout")
    assert (workspace.root / "e").is_dir()
    assert "up to date" in cli.run("status").output


def test_forced_checkout_leaves_exactly_the_tracked_tree(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"a": "a", "sub": {"b": "b"}}})
    cli.run("add", "d")
    (workspace.root / "d/empty/deeper").mkdir(parents=True)
    workspace.write({"d": {"x": {"y": "extra"}, "sub": {"z": "extra"}}})
    cli.run("checkout", "--force", "d")
    found = sorted(p.relative_to(workspace.root).as_posix() for p in (workspace.root / "d").rglob("*"))
    assert found == ["d/a", "d/sub", "d/sub/b"]


def test_forced_checkout_removes_an_extra_directory_symlink_as_a_link(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    workspace.write({"d": {"a": "a"}})
    cli.run("add", "d")
    (workspace.root / "d/link").symlink_to(outside, target_is_directory=True)
    cli.run("checkout", "--force", "d", exit_code=None)
    assert (outside / "keep").is_dir()


def test_one_missing_object_fails_only_its_path(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"a.txt": "a", "b.txt": "b", "c.txt": "c"})
    cli.run("add", "a.txt", "b.txt", "c.txt")
    oid = yaml.safe_load(workspace.read("b.txt.pipe"))["outs"][0]["oid"]
    os.unlink(workspace.root / ".pipe/cache/objects" / oid_to_relpath(oid))
    for name in ("a.txt", "b.txt", "c.txt"):
        os.unlink(workspace.root / name)
    result = cli.run("checkout", exit_code=1)
    assert workspace.read("a.txt") == "a" and workspace.read("c.txt") == "c"
    assert not (workspace.root / "b.txt").exists()
    assert "'b.txt'" in result.stderr and "pipe pull" in result.stderr


def test_a_deleted_pointer_is_reported_not_resurrected_from_the_index(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"f.txt": "v1"}})
    cli.run("add", "data/f.txt")
    workspace.commit("v1")
    workspace.write({"data": {"f.txt": "v2"}})
    cli.run("add", "data/f.txt")  # not committed: the index still has v1's pointer
    workspace.write({"g.txt": "g"})
    cli.run("add", "g.txt")
    os.unlink(workspace.root / "g.txt")
    shutil.rmtree(workspace.root / "data")
    result = cli.run("checkout", exit_code=1)
    assert not (workspace.root / "data/f.txt.pipe").exists()  # never silently v1
    assert "data/f.txt.pipe" in result.stderr and "git checkout -- data/f.txt.pipe" in result.stderr
    assert workspace.read("g.txt") == "g"  # the rest was checked out
    # the hint works as written
    workspace.git("checkout", "--", "data/f.txt.pipe")
    cli.run("checkout")
    assert workspace.read("data/f.txt") == "v1"


def test_readme_rm_and_checkout_restores_byte_for_byte(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"images": {"0001.jpg": "img"}, "big.bin": b"\x02" * 100}})
    cli.run("add", "data/images", "data/big.bin")
    workspace.commit("data")
    (workspace.root / "data/images/0001.jpg").write_text("img x")
    cli.run("add", "data/images")
    before = workspace.snapshot()
    shutil.rmtree(workspace.root / "data/images")
    os.unlink(workspace.root / "data/big.bin")
    cli.run("checkout")
    assert workspace.snapshot() == before


def test_a_path_inside_a_tracked_directory_is_a_target(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"a": "a", "sub": {"b": "b", "s2": {"c": "c"}}}})
    cli.run("add", "d")
    workspace.commit("d")
    shutil.rmtree(workspace.root / "d")
    cli.run("checkout", "d/sub/s2")
    assert workspace.read("d/sub/s2/c") == "c"
    assert not (workspace.root / "d/a").exists() and not (workspace.root / "d/sub/b").exists()
    cli.run("checkout", "d/a")
    assert workspace.read("d/a") == "a" and not (workspace.root / "d/sub/b").exists()
    assert workspace.git("status", "--porcelain") == ""  # no .gitignore written inside d/
    assert "d/sub/b  missing" in cli.run("status", "d/sub/b", exit_code=None).output
    assert "up to date" in cli.run("status", "d/sub/s2").output
    result = cli.run("checkout", "d/nope", exit_code=1)
    assert "'d/nope'" in result.stderr and "'d'" in result.stderr


def test_a_tracked_empty_directory_is_restored_in_a_fresh_clone(workspace: Workspace, cli: Cli) -> None:
    workspace.track({"e": {}})
    workspace.commit("empty dir")
    clone = workspace.clone()
    cli.run("checkout")  # no cache, no remote: nothing to fetch for an empty directory
    assert (clone.root / "e").is_dir()
    assert "up to date" in cli.run("status").output


def _branch_with_data(workspace: Workspace) -> None:
    """main has a.txt tracked; branch b adds big.bin (file) and imgs (directory) as well."""
    workspace.track({"a.txt": "a"})
    workspace.commit("base")
    workspace.git("checkout", "-qb", "b")
    workspace.track({"big.bin": "t", "imgs": {"1.png": "1", "sub": {"2.png": "2"}}})
    workspace.commit("b")


def test_checkout_after_switching_branches_removes_data_pipe_placed(workspace: Workspace, cli: Cli) -> None:
    _branch_with_data(workspace)
    workspace.git("checkout", "-q", "main")
    result = cli.run("checkout")
    assert not (workspace.root / "big.bin").exists() and not (workspace.root / "imgs").exists()
    assert "2 deleted" in result.stderr and workspace.read("a.txt") == "a"
    workspace.git("checkout", "-q", "b")
    cli.run("checkout")  # and back: from the cache
    assert workspace.read("big.bin") == "t" and workspace.read("imgs/sub/2.png") == "2"
    workspace.git("checkout", "-q", "main")
    cli.run("checkout", "--force")
    assert not (workspace.root / "big.bin").exists()


def test_checkout_keeps_placed_data_changed_since_and_what_pipe_never_placed(
    workspace: Workspace, cli: Cli
) -> None:
    _branch_with_data(workspace)
    (workspace.root / "big.bin").write_text("edited")
    (workspace.root / "imgs/mine.txt").write_text("mine")
    workspace.git("checkout", "-q", "main")
    workspace.write({"user.bin": "never added"})
    result = cli.run("checkout")
    assert workspace.read("big.bin") == "edited" and workspace.read("imgs/mine.txt") == "mine"
    assert "kept 'big.bin'" in result.stderr and "kept 'imgs'" in result.stderr
    assert workspace.read("user.bin") == "never added"


def test_checkout_leaves_data_of_a_removed_pointer_to_the_user(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"keep.bin": "k"})
    cli.run("add", "keep.bin")
    cli.run("remove", "keep.bin.pipe")
    cli.run("checkout")
    assert workspace.read("keep.bin") == "k"


def test_checkout_keeps_ignored_files_of_a_removed_directory(workspace: Workspace, cli: Cli) -> None:
    _branch_with_data(workspace)
    workspace.write({".pipeignore": "*.tmp\n", "imgs": {"cache.tmp": "hidden"}})
    workspace.git("checkout", "-q", "main")
    cli.run("checkout")
    assert sorted(p.name for p in (workspace.root / "imgs").rglob("*")) == ["cache.tmp"]


def test_removing_a_pointer_hands_back_files_checked_out_by_granular_target(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"a": "a", "b": "b"}})
    cli.run("add", "d")
    os.unlink(workspace.root / "d/a")
    cli.run("checkout", "d/a")
    cli.run("remove", "d.pipe")
    cli.run("checkout")
    assert workspace.read("d/a") == "a" and workspace.read("d/b") == "b"


def test_checkout_never_removes_placed_data_whose_objects_left_the_cache(workspace: Workspace, cli: Cli) -> None:
    _branch_with_data(workspace)
    workspace.git("checkout", "-q", "main")
    shutil.rmtree(workspace.root / ".pipe/cache/objects")  # as after a gc, or a cache on another disk lost
    result = cli.run("checkout", exit_code=None)
    assert workspace.read("big.bin") == "t" and workspace.read("imgs/sub/2.png") == "2"
    assert "kept 'big.bin'" in result.stderr


def test_checkout_of_a_branch_name_suggests_git_checkout(workspace: Workspace, cli: Cli) -> None:
    # DVC: "Did you mean `git checkout v1`?" - a branch or tag is not a tracked path
    workspace.track({"data.csv": "a\n"})
    workspace.commit("data")
    workspace.git("tag", "v1")
    refused = cli.run("checkout", "v1", exit_code=1)
    assert "'v1' is not tracked" in refused.stderr and "did you mean 'git checkout v1'?" in refused.stderr
    assert "git checkout" not in cli.run("checkout", "nothing.csv", exit_code=1).stderr
