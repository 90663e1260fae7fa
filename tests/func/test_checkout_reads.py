"""What checkout reads: an object hashed whole by a copy checkout (with a link type configured:
the default 'reflink,copy') or by `pipe add` is not read again by a later hardlink or symlink
checkout (its verification is remembered by its stat data), and that record never lets an
object changed since reach the workspace."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline_engine.core.hashing import hash_bytes
from tests.cacheutil import age_objects, object_path, set_cache_type
from tests.conftest import Cli, Workspace

FILES = {f"d{i % 4}/{i:03}.bin": f"{i}\n".encode() * (i + 3) for i in range(120)}  # enough for the thread pool

_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # builtins.open and os.open both raise "open"; the hook stays for the process


@contextlib.contextmanager
def _object_opens() -> Iterator[list[str]]:
    """Cache objects (not directory manifests, not temporary files) opened inside the block."""
    global _opened
    _opened = []
    found: list[str] = []
    try:
        yield found
    finally:
        found += [p for p in _opened if "/.pipe/cache/objects/" in p and not p.endswith(".dir")
                  and not os.path.basename(p).startswith(".pipetmp-")]
        _opened = None


def _copied_out_once(workspace: Workspace, cli: Cli) -> None:
    set_cache_type(workspace.root, "reflink,copy")  # the default: copies where reflinks cannot be made
    workspace.write({"data": {p: t.decode() for p, t in FILES.items()}})
    cli.run("add", "data")
    age_objects(workspace.root)
    shutil.rmtree(workspace.root / "data")
    cli.run("checkout")  # every object is hashed whole as it is copied (or verified, to be reflinked)


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink"])
def test_a_link_checkout_after_a_copy_checkout_opens_no_object(
    workspace: Workspace, cli: Cli, cache_type: str
) -> None:
    _copied_out_once(workspace, cli)
    set_cache_type(workspace.root, cache_type)
    shutil.rmtree(workspace.root / "data")
    with _object_opens() as opened:
        cli.run("checkout")
    assert opened == [], f"{len(opened)} objects read again, e.g. {opened[:3]}"
    for rel, data in FILES.items():
        path = workspace.root / "data" / rel
        assert path.read_bytes() == data
        obj = object_path(workspace.root, data)
        if cache_type == "hardlink":
            assert os.path.samefile(path, obj)
        else:
            assert os.readlink(path) == os.fspath(obj)
    assert "up to date" in (cli.run("status").stdout + cli.run("status").stderr)


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink"])
def test_an_object_changed_after_a_copy_checkout_is_not_linked(
    workspace: Workspace, cli: Cli, cache_type: str
) -> None:
    _copied_out_once(workspace, cli)
    victim = FILES["d1/005.bin"]
    obj = object_path(workspace.root, victim)
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:  # same size, same inode: only the bytes (and the mtime) differ
        f.write(b"X")
    old = obj.stat().st_mtime - 30
    os.utime(obj, (old, old))
    set_cache_type(workspace.root, cache_type)
    shutil.rmtree(workspace.root / "data")
    result = cli.run("checkout", exit_code=1)
    assert "corrupt" in result.stderr and "data/d1/005.bin" in result.stderr
    assert not os.path.lexists(workspace.root / "data/d1/005.bin")
    assert (workspace.root / ".pipe/cache/quarantine" / hash_bytes(victim)).is_file()
    assert all((workspace.root / "data" / r).read_bytes() == t for r, t in FILES.items() if r != "d1/005.bin")


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink"])
def test_a_link_checkout_after_a_linked_add_opens_no_object(
    workspace: Workspace, cli: Cli, cache_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_engine.cache import memo

    monkeypatch.setattr(memo, "_RACY_NS", 0)  # objects a few milliseconds old count as settled here
    set_cache_type(workspace.root, cache_type)
    workspace.write({"data": {p: t.decode() for p, t in FILES.items()}})
    cli.run("add", "data")  # hashed as copied in, then linked back: that hash is remembered
    shutil.rmtree(workspace.root / "data")
    with _object_opens() as opened:
        cli.run("checkout")
    assert opened == [], f"{len(opened)} objects read again, e.g. {opened[:3]}"
    assert all((workspace.root / "data" / r).read_bytes() == t for r, t in FILES.items())


def _linked_out_twice(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    """Data checked out as links, then deleted, with only the workspace rows of the memo left to
    say what those links held (the objects' own verification records are dropped)."""
    _copied_out_once(workspace, cli)
    set_cache_type(workspace.root, cache_type)
    shutil.rmtree(workspace.root / "data")
    cli.run("checkout")
    shutil.rmtree(workspace.root / "data")
    with sqlite3.connect(workspace.root / ".pipe/tmp/memo.sqlite") as db:
        db.execute("DELETE FROM verified")
    db.close()


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink"])
def test_links_checked_out_again_are_verified_by_the_rows_of_the_links_before(
    workspace: Workspace, cli: Cli, cache_type: str
) -> None:
    _linked_out_twice(workspace, cli, cache_type)
    with _object_opens() as opened:
        cli.run("checkout")
    assert opened == [], f"{len(opened)} objects read again, e.g. {opened[:3]}"
    assert all((workspace.root / "data" / r).read_bytes() == t for r, t in FILES.items())
    assert "up to date" in (cli.run("status").stdout + cli.run("status").stderr)


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink"])
def test_an_object_changed_since_its_link_was_recorded_is_read_and_refused(
    workspace: Workspace, cli: Cli, cache_type: str
) -> None:
    _linked_out_twice(workspace, cli, cache_type)
    victim = FILES["d2/006.bin"]
    obj = object_path(workspace.root, victim)
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:  # same inode and size: the recorded row no longer matches its mtime
        f.write(b"X")
    old = obj.stat().st_mtime - 20
    os.utime(obj, (old, old))
    result = cli.run("checkout", exit_code=1)
    assert "corrupt" in result.stderr and "data/d2/006.bin" in result.stderr
    assert not os.path.lexists(workspace.root / "data/d2/006.bin")
    assert all((workspace.root / "data" / r).read_bytes() == t for r, t in FILES.items() if r != "d2/006.bin")
