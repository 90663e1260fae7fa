"""`pipe add` reads each new file once: it is hashed while it is copied into the cache."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeline_engine.cache import ingest as ingest_module
from pipeline_engine.core.hashing import hash_file
from pipeline_engine.core.layout import relpath_to_oid
from tests.conftest import Cli, Workspace
from tests.func.test_hash_memo import FILES, Hashed, hashed  # noqa: F401  (hashed: the fixture)


def _objects(root: Path) -> dict[str, Path]:
    """Every object file in the cache by oid, and any other file found there under its path."""
    cache = root / ".pipe" / "cache"
    found: dict[str, Path] = {}
    for path in cache.rglob("*"):
        if path.is_file():
            rel = path.relative_to(cache).as_posix()
            oid = relpath_to_oid(rel.removeprefix("objects/"))
            found[oid or rel] = path
    return found


def _settle(path: Path) -> None:
    then = os.stat(path).st_mtime_ns - 60 * 10**9
    os.utime(path, ns=(then, then))


def test_add_reads_each_new_file_once_and_stores_it_by_the_hash_of_what_was_copied(
    workspace: Workspace, cli: Cli, hashed: Hashed
) -> None:
    workspace.write({"d": FILES, "one.csv": "a,b\n1,2\n"})
    for path in [workspace.root / "one.csv", *(workspace.root / "d").iterdir()]:
        _settle(path)  # older than the memo's racy window, as any file a minute old
    cli.run("add", "d", "one.csv")
    assert sorted(hashed.take()) == sorted([f"d/{name}" for name in FILES] + ["one.csv"])
    objects = _objects(workspace.root)
    for name in FILES:
        oid = hash_file(workspace.root / "d" / name)
        assert objects[oid].read_bytes() == (workspace.root / "d" / name).read_bytes()
    assert not [p for p in objects if p.rpartition("/")[2].startswith(".pipetmp-")]
    assert "up to date" in cli.run("status").stderr  # the memo agrees with the store
    assert hashed.take() == []


def test_add_after_a_change_reads_only_the_changed_file_once(
    workspace: Workspace, cli: Cli, hashed: Hashed
) -> None:
    workspace.write({"d": FILES})
    for name in FILES:
        _settle(workspace.root / "d" / name)
    cli.run("add", "d")
    hashed.take()
    (workspace.root / "d/07.csv").write_text("edited\n")
    cli.run("add", "d")
    assert hashed.take() == ["d/07.csv"]
    assert hash_file(workspace.root / "d/07.csv") in _objects(workspace.root)


def test_a_file_changing_while_it_is_copied_is_refused_and_nothing_is_stored_for_it(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.write({"d": {"a.csv": "1\n", "b.csv": "2\n"}})
    original = ingest_module.read_small  # small files are read whole, then copied from memory

    def read_then_edit(src: Any, size: int) -> bytes:
        data = original(src, size)
        if str(src).endswith("b.csv"):
            Path(src).write_text("written meanwhile, longer\n")
        return data

    monkeypatch.setattr(ingest_module, "read_small", read_then_edit)
    result = cli.run("add", "d", exit_code=1)
    assert "error: 'd/b.csv' changed while it was being cached" in result.stderr  # as the user named it
    assert not (workspace.root / "d.pipe").exists()
    for oid, path in _objects(workspace.root).items():
        assert hash_file(path) == oid.removesuffix(".dir")  # no temp file, no object under a wrong oid
