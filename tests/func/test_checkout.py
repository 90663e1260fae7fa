"""pipe checkout: restore from the cache, touching only what differs, never losing user changes."""

from __future__ import annotations

import os
import shutil

from tests.conftest import Cli, Workspace

FILES = {f"{i:03}.txt": f"content {i}\n" for i in range(30)}


def _setup(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"images": FILES, "big.bin": b"\x01" * 1000}})
    cli.run("add", "data/images", "data/big.bin")
    workspace.commit("data")


def test_checkout_restores_deleted_data_byte_for_byte(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace, cli)
    before = workspace.snapshot()
    shutil.rmtree(workspace.root / "data")
    result = cli.run("checkout")
    assert "31 file(s) written" in result.stderr
    assert workspace.snapshot() == before
    assert "up to date" in cli.run("status").stderr


def test_checkout_touches_only_files_that_differ(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace, cli)
    os.unlink(workspace.root / "data/images/003.txt")
    untouched = (workspace.root / "data/images/004.txt").stat().st_ino
    result = cli.run("checkout")
    assert "1 file(s) written" in result.stderr
    assert (workspace.root / "data/images/004.txt").stat().st_ino == untouched
    assert workspace.read("data/images/003.txt") == FILES["003.txt"]


def test_checkout_refuses_to_overwrite_uncached_changes(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace, cli)
    workspace.write({"data": {"images": {"005.txt": "my precious edit"}, "big.bin": "edited too"}})
    before = workspace.snapshot()
    result = cli.run("checkout", exit_code=1)
    assert "data/images/005.txt" in result.stderr and "data/big.bin" in result.stderr
    assert "--force" in result.stderr
    assert workspace.snapshot() == before
    cli.run("checkout", "--force")
    assert workspace.read("data/images/005.txt") == FILES["005.txt"]


def test_checkout_overwrites_content_that_is_safe_in_the_cache(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace, cli)
    workspace.write({"data": {"big.bin": "version 2"}})
    cli.run("add", "data/big.bin")
    workspace.git("checkout", "--", "data/big.bin.pipe")  # back to version 1's pointer
    cli.run("checkout")
    assert (workspace.root / "data/big.bin").read_bytes() == b"\x01" * 1000


def test_checkout_keeps_extra_files_unless_forced(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace, cli)
    workspace.write({"data": {"images": {"extra.txt": "mine"}}})
    result = cli.run("checkout")
    assert "kept 'data/images/extra.txt'" in result.stderr
    assert (workspace.root / "data/images/extra.txt").exists()
    cli.run("checkout", "--force")
    assert not (workspace.root / "data/images/extra.txt").exists()


def test_checkout_of_objects_missing_from_cache_suggests_pull(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace, cli)
    shutil.rmtree(workspace.root / ".pipe/cache/objects")
    os.unlink(workspace.root / "data/big.bin")
    result = cli.run("checkout", "data/big.bin", exit_code=1)
    assert "not in the cache" in result.stderr and "pipe pull" in result.stderr


def test_checkout_follows_git_history(workspace: Workspace, cli: Cli) -> None:
    _setup(workspace, cli)
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
    _setup(workspace, cli)
    st = os.stat(workspace.root / "data/big.bin")
    assert st.st_nlink == 2
    shutil.rmtree(workspace.root / "data/images")
    cli.run("checkout")
    assert os.stat(workspace.root / "data/images/001.txt").st_nlink == 2
