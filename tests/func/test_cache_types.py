"""Every `cache.type` (copy, reflink with its copy fallback, hardlink, symlink) works for files and
directories across add, status, checkout, repro, gc and remove --outs, with the same guarantees:
workspace links are removed and replaced as links (the cache object is never touched), and an
object changed through a link is detected, never linked or copied again as if it were intact."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import yaml

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from tests.conftest import Cli, Workspace

CACHE_TYPES = ["copy", "reflink,copy", "hardlink", "symlink"]
FILES = {f"{i:02}.txt": f"row {i}\n" * (i + 1) for i in range(12)}
MODEL = b"\x07weights" * 300


@pytest.fixture(params=CACHE_TYPES)
def cache_type(request: pytest.FixtureRequest, workspace: Workspace) -> str:
    """The workspace's project configured with one cache type."""
    config = workspace.root / ".pipe/config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data.setdefault("cache", {})["type"] = request.param
    config.write_text(yaml.safe_dump(data))
    return str(request.param)


def _status(cli: Cli) -> str:
    result = cli.run("status")
    return result.stdout + result.stderr


def _object(workspace: Workspace, data: bytes) -> Path:
    return workspace.root / ".pipe/cache/objects" / oid_to_relpath(hash_bytes(data))


def _track(workspace: Workspace) -> None:
    workspace.track({"data/images": FILES, "data/model.bin": MODEL})


def _assert_data(workspace: Workspace) -> None:
    for name, text in FILES.items():
        assert workspace.read(f"data/images/{name}") == text
    assert (workspace.root / "data/model.bin").read_bytes() == MODEL


def _assert_linked(workspace: Workspace, cache_type: str, relpath: str, data: bytes) -> None:
    path, obj = workspace.root / relpath, _object(workspace, data)
    if cache_type == "symlink":
        assert path.is_symlink() and Path(os.path.realpath(path)) == obj.resolve(), relpath
    elif cache_type == "hardlink":
        assert os.stat(path).st_ino == os.stat(obj).st_ino, relpath
    else:
        assert not path.is_symlink() and os.stat(path).st_ino != os.stat(obj).st_ino, relpath


def test_add_status_checkout_round_trip(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    _track(workspace)
    _assert_linked(workspace, cache_type, "data/model.bin", MODEL)
    _assert_linked(workspace, cache_type, "data/images/03.txt", FILES["03.txt"].encode())
    assert "up to date" in _status(cli)
    cli.run("add", "data/images", "data/model.bin")  # adding again right away works and changes nothing
    workspace.commit("data")
    for rel in ("data/images", "data/model.bin"):
        path = workspace.root / rel
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        else:
            path.unlink()
    cli.run("checkout")
    _assert_data(workspace)
    _assert_linked(workspace, cache_type, "data/images/00.txt", FILES["00.txt"].encode())
    assert "up to date" in _status(cli)
    assert "workspace already matches" in cli.run("checkout").stderr
    cli.run("cache", "verify")


def test_deleting_or_replacing_a_workspace_file_leaves_the_cache_object_alone(
    workspace: Workspace, cli: Cli, cache_type: str
) -> None:
    _track(workspace)
    (workspace.root / "data/model.bin").unlink()
    replaced = workspace.root / "data/images/01.txt"
    replaced.unlink()
    replaced.write_text("my new version\n")
    assert _object(workspace, MODEL).read_bytes() == MODEL
    assert _object(workspace, FILES["01.txt"].encode()).read_bytes() == FILES["01.txt"].encode()
    status = _status(cli)
    assert "data/images" in status and "modified" in status
    cli.run("add", "data/images")
    cli.run("checkout", "data/model.bin")
    assert (workspace.root / "data/model.bin").read_bytes() == MODEL
    assert workspace.read("data/images/01.txt") == "my new version\n"
    assert "up to date" in _status(cli)
    cli.run("cache", "verify")


def test_cache_objects_are_read_only(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    _track(workspace)
    mode = os.stat(_object(workspace, MODEL)).st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_an_edit_through_a_link_is_detected_never_checked_out_as_intact(
    workspace: Workspace, cli: Cli, cache_type: str
) -> None:
    """Objects are read-only, but root (or a user who chmods them) can still write through a link."""
    _track(workspace)
    path = workspace.root / "data/model.bin"
    target = Path(os.path.realpath(path))
    os.chmod(target, 0o644)
    with open(target, "r+b") as f:  # in place, as an editor that rewrites the file would
        f.write(b"EDITED")
    assert "modified" in _status(cli)
    result = cli.run("checkout", "--force", exit_code=None)
    if cache_type in ("hardlink", "symlink"):
        # The edit went into the object itself: checkout finds it corrupt instead of linking it.
        assert result.exit_code == 1, result.stderr
        assert "corrupt" in result.stderr and "data/model.bin" in result.stderr and "pipe pull" in result.stderr
        assert (workspace.root / ".pipe/cache/quarantine" / hash_bytes(MODEL)).exists()
    else:
        assert result.exit_code == 0, result.stderr
        assert path.read_bytes() == MODEL
    cli.run("cache", "verify")


def test_executable_files_keep_their_exec_bit(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    workspace.write({"tools": {"run.sh": "#!/bin/sh\necho hi\n", "notes.txt": "n\n"}, "solo.sh": "#!/bin/sh\n"})
    os.chmod(workspace.root / "tools/run.sh", 0o755)
    os.chmod(workspace.root / "solo.sh", 0o755)
    cli.run("add", "tools", "solo.sh")
    assert "up to date" in _status(cli)
    (workspace.root / "tools/run.sh").unlink()
    (workspace.root / "solo.sh").unlink()
    cli.run("checkout")
    assert os.access(workspace.root / "tools/run.sh", os.X_OK)
    assert os.access(workspace.root / "solo.sh", os.X_OK)
    assert "up to date" in _status(cli)


def test_repro_saves_and_relinks_stage_outs(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    workspace.write({"n.txt": "3\n"})
    workspace.write_pipeline({
        "make": {
            "cmd": "mkdir -p out && for i in $(seq $(cat n.txt)); do echo $i > out/$i.txt; done && cat n.txt > total",
            "deps": ["n.txt"],
            "outs": ["out", "total"],
        }
    })
    cli.run("repro")
    _assert_linked(workspace, cache_type, "total", b"3\n")
    _assert_linked(workspace, cache_type, "out/2.txt", b"2\n")
    assert "nothing to do" in cli.run("repro").stderr.lower() or "up to date" in _status(cli)
    workspace.write({"n.txt": "4\n"})
    cli.run("repro")  # the command rewrites its outs: the links must go first, not be written through
    assert workspace.read("total") == "4\n" and workspace.read("out/4.txt") == "4\n"
    assert _object(workspace, b"3\n").read_bytes() == b"3\n"
    cli.run("cache", "verify")
    (workspace.root / "total").unlink()
    cli.run("checkout")
    assert workspace.read("total") == "4\n"
    status = _status(cli).lower()
    assert "modified" not in status and "changed" not in status, status


def test_gc_keeps_what_the_workspace_links_to(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    workspace.write({"model.bin": b"version 1"})
    cli.run("add", "model.bin")
    (workspace.root / "model.bin").unlink()
    workspace.write({"model.bin": b"version 2"})
    cli.run("add", "model.bin")
    cli.run("gc", "-w", "-f")
    assert not _object(workspace, b"version 1").exists()
    assert (workspace.root / "model.bin").read_bytes() == b"version 2"
    assert "up to date" in _status(cli)


def test_remove_outs_removes_links_not_objects(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    _track(workspace)
    cli.run("remove", "--outs", "data/images.pipe", "data/model.bin.pipe")
    assert not (workspace.root / "data/images").exists() and not (workspace.root / "data/model.bin").exists()
    assert _object(workspace, MODEL).read_bytes() == MODEL
    assert _object(workspace, FILES["05.txt"].encode()).read_bytes() == FILES["05.txt"].encode()
    cli.run("cache", "verify")


def test_a_cache_outside_the_project_works_too(
    workspace: Workspace, cli: Cli, cache_type: str, tmp_path: Path
) -> None:
    config = workspace.root / ".pipe/config.yaml"
    data = yaml.safe_load(config.read_text())
    data["cache"]["dir"] = str(tmp_path / "shared-cache")
    config.write_text(yaml.safe_dump(data))
    workspace.write({"data": {"images": FILES}, "model.bin": MODEL})
    cli.run("add", "data/images", "model.bin")
    cli.run("add", "data/images", "model.bin")  # a link into that cache is accepted as its object
    assert "up to date" in _status(cli)
    (workspace.root / "model.bin").unlink()
    shutil.rmtree(workspace.root / "data/images")
    cli.run("checkout")
    assert (workspace.root / "model.bin").read_bytes() == MODEL
    assert workspace.read("data/images/04.txt") == FILES["04.txt"]
    assert "up to date" in _status(cli)


@pytest.mark.parametrize("linked_type", ["hardlink", "symlink"])
def test_a_linked_object_is_verified_once_then_remembered_until_it_changes(
    workspace: Workspace, cli: Cli, linked_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_engine.cache import place

    config = workspace.root / ".pipe/config.yaml"
    config.write_text(yaml.safe_dump({"schema": 1, "cache": {"type": linked_type}}))
    workspace.write({"model.bin": MODEL})
    cli.run("add", "model.bin")
    obj = _object(workspace, MODEL)
    old = obj.stat().st_mtime - 60
    os.utime(obj, (old, old))  # out of the memo's "racy" window, as any object a minute old
    reads: list[str] = []
    real_verify = place.verify_file
    monkeypatch.setattr(
        place, "verify_file", lambda p, oid, size=None: reads.append(str(p)) or real_verify(p, oid, size)
    )
    for _ in range(2):
        (workspace.root / "model.bin").unlink()
        cli.run("checkout")
    assert reads == [str(obj)], "the object should be read once, then trusted while its stat is unchanged"
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.write(b"X")
    (workspace.root / "model.bin").unlink()
    result = cli.run("checkout", exit_code=1)
    assert "corrupt" in result.stderr and "model.bin" in result.stderr
    assert not (workspace.root / "model.bin").exists()


@pytest.mark.parametrize("linked_type", ["hardlink", "symlink"])
def test_add_never_links_to_a_corrupt_object_it_already_has(
    workspace: Workspace, cli: Cli, linked_type: str
) -> None:
    config = workspace.root / ".pipe/config.yaml"
    config.write_text(yaml.safe_dump({"schema": 1, "cache": {"type": linked_type}}))
    workspace.write({"a.bin": MODEL})
    cli.run("add", "a.bin")
    obj = _object(workspace, MODEL)
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.write(b"X")
    workspace.write({"b.bin": MODEL})  # the same content, intact in the workspace
    cli.run("add", "b.bin")
    assert (workspace.root / "b.bin").read_bytes() == MODEL
    assert obj.read_bytes() == MODEL  # the workspace copy replaced the corrupt object
    assert (workspace.root / ".pipe/cache/quarantine" / hash_bytes(MODEL)).exists()
    # a.bin was linked to the corrupt object: a symlink now leads to the good one, a hardlink
    # still holds the damaged inode (now in the quarantine), which status must not call up to date.
    a_intact = (workspace.root / "a.bin").read_bytes() == MODEL
    assert a_intact == (linked_type == "symlink")
    assert ("a.bin" in _status(cli)) != a_intact


def test_a_link_type_this_filesystem_lacks_is_a_clean_error(workspace: Workspace, cli: Cli) -> None:
    config = workspace.root / ".pipe/config.yaml"
    workspace.write({"a.bin": MODEL})
    cli.run("add", "a.bin")
    config.write_text(yaml.safe_dump({"schema": 1, "cache": {"type": "reflink"}}))
    (workspace.root / "a.bin").unlink()
    result = cli.run("checkout", exit_code=None)
    if result.exit_code == 0:
        pytest.skip("this filesystem supports reflinks")
    assert result.exit_code == 1 and "cache.type" in result.stderr and "copy" in result.stderr, result.stderr
    assert not list(workspace.root.glob(".pipetmp-*"))


def test_a_symlink_into_the_cache_is_known_by_its_target_without_reading_it(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from pipeline_engine.cache import scan as ws

    config = workspace.root / ".pipe/config.yaml"
    config.write_text(yaml.safe_dump({"schema": 1, "cache": {"type": "symlink"}}))
    workspace.write({"data": {"images": FILES}})
    cli.run("add", "data/images")
    for obj in (workspace.root / ".pipe/cache/objects").rglob("*"):
        if obj.is_file():
            old = obj.stat().st_mtime - 60
            os.utime(obj, (old, old))
    cli.run("cache", "verify")  # records every object as verified by its stat data
    db = sqlite3.connect(workspace.root / ".pipe/tmp/memo.sqlite")
    db.execute("DELETE FROM files")
    db.execute("DELETE FROM trees")
    db.commit()
    db.close()
    reads: list[str] = []
    real_hash = ws.hash_file
    monkeypatch.setattr(ws, "hash_file", lambda p, size=None: reads.append(str(p)) or real_hash(p, size))
    assert "up to date" in _status(cli)
    assert reads == []
    target = Path(os.path.realpath(workspace.root / "data/images/03.txt"))
    os.chmod(target, 0o644)
    target.write_text("changed through the link\n")  # new stat data: verified no more, hashed again
    assert "data/images" in _status(cli) and reads


def test_relink_after_changing_the_cache_type(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    config = workspace.root / ".pipe/config.yaml"
    wanted = config.read_text()
    config.write_text(yaml.safe_dump({"schema": 1, "cache": {"type": "copy"}}))
    _track(workspace)
    config.write_text(wanted)
    cli.run("checkout", "--relink")
    _assert_linked(workspace, cache_type, "data/model.bin", MODEL)
    _assert_linked(workspace, cache_type, "data/images/07.txt", FILES["07.txt"].encode())
    _assert_data(workspace)
    assert "up to date" in _status(cli)
    assert not list(workspace.root.rglob(".pipetmp-*"))
