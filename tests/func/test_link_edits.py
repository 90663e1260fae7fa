"""A workspace file linked to its cache object (`cache.type: hardlink` or `symlink`) and edited in
place, as root can or as an editor that rewrites a file does: the edit changes the object too.
pipe notices it the next time it hashes the file (status, add, checkout): the edit stays in the
workspace as an ordinary file, the damaged object goes to the quarantine (never served again
under its name), `pipe add` stores the new content, and another out that shared the object is
reported as not in the cache until `pipe pull` restores it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from tests.conftest import Cli, Workspace

MODEL = b"weights v1 " * 400
FILES = {f"{i:02}.txt": f"row {i}\n" * (i + 3) for i in range(10)}

pytestmark = pytest.mark.parametrize("linked_type", ["hardlink", "symlink"])


def _configure(workspace: Workspace, cache_type: str) -> None:
    config = workspace.root / ".pipe/config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data.setdefault("cache", {})["type"] = cache_type
    config.write_text(yaml.safe_dump(data))


def _object(workspace: Workspace, data: bytes) -> Path:
    return workspace.root / ".pipe/cache/objects" / oid_to_relpath(hash_bytes(data))


def _quarantined(workspace: Workspace, data: bytes) -> Path:
    return workspace.root / ".pipe/cache/quarantine" / hash_bytes(data)


def _age_objects(workspace: Workspace) -> None:
    """Objects a minute old, as any object is by the time a user edits a file: out of the memo's
    'racy' window, so the memo remembers what each workspace file held."""
    for obj in (workspace.root / ".pipe/cache/objects").rglob("*"):
        if obj.is_file():
            old = obj.stat().st_mtime - 60
            os.utime(obj, (old, old))


def _status(cli: Cli) -> str:
    result = cli.run("status")
    return result.stdout + result.stderr


def _edit_in_place(path: Path, extra: bytes) -> None:
    """`echo x >> path` through the link (root ignores the object's read-only mode)."""
    target = Path(os.path.realpath(path))
    if os.geteuid() != 0:
        os.chmod(target, 0o644)
    with open(path, "ab") as f:
        f.write(extra)


def _is_own_file(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def _shares_object(workspace: Workspace, relpath: str, data: bytes) -> bool:
    path, obj = workspace.root / relpath, _object(workspace, data)
    if path.is_symlink():
        return Path(os.path.realpath(path)) == obj.resolve()
    return os.stat(path).st_ino == os.stat(obj).st_ino


def test_an_edit_through_a_link_is_kept_and_the_damaged_object_quarantined(
    workspace: Workspace, cli: Cli, linked_type: str
) -> None:
    _configure(workspace, linked_type)
    workspace.track({"model.bin": MODEL})
    _age_objects(workspace)
    assert "up to date" in _status(cli)
    assert _shares_object(workspace, "model.bin", MODEL)
    _edit_in_place(workspace.root / "model.bin", b"tuned")

    status = _status(cli)
    assert "model.bin" in status and "modified" in status
    edited = MODEL + b"tuned"
    assert (workspace.root / "model.bin").read_bytes() == edited
    assert _is_own_file(workspace.root / "model.bin"), "the edit is the workspace's own file now"
    assert not _object(workspace, MODEL).exists(), "the damaged object is not served under its name"
    assert _quarantined(workspace, MODEL).read_bytes() == edited
    cli.run("cache", "verify")

    cli.run("add", "model.bin")
    assert _object(workspace, edited).read_bytes() == edited
    assert _shares_object(workspace, "model.bin", edited)
    assert "up to date" in _status(cli)
    cli.run("cache", "verify")


def test_a_directory_file_edited_through_a_link_is_detected_by_status_and_commit_stores_it(
    workspace: Workspace, cli: Cli, linked_type: str
) -> None:
    _configure(workspace, linked_type)
    workspace.track({"data/images": FILES})
    _age_objects(workspace)
    assert "up to date" in _status(cli)
    _edit_in_place(workspace.root / "data/images/04.txt", b"edited\n")

    status = _status(cli)
    assert "data/images" in status and "modified" in status
    assert workspace.read("data/images/04.txt") == FILES["04.txt"] + "edited\n"
    assert _is_own_file(workspace.root / "data/images/04.txt")
    assert not _object(workspace, FILES["04.txt"].encode()).exists()
    cli.run("cache", "verify")

    cli.run("add", "data/images")
    assert "up to date" in _status(cli)
    (workspace.root / "data/images/04.txt").unlink()
    cli.run("checkout")
    assert workspace.read("data/images/04.txt") == FILES["04.txt"] + "edited\n"
    assert all(workspace.read(f"data/images/{n}") == t for n, t in FILES.items() if n != "04.txt")


def test_another_out_sharing_the_damaged_object_is_restored_by_pull(
    workspace: Workspace, cli: Cli, linked_type: str, local_remote: Path
) -> None:
    _configure(workspace, linked_type)
    workspace.track({"a.bin": MODEL, "b.bin": MODEL})
    cli.run("push")
    _age_objects(workspace)
    assert "up to date" in _status(cli)
    _edit_in_place(workspace.root / "a.bin", b"tuned")  # b.bin shares the object: it sees the edit

    status = _status(cli)
    assert "modified" in status or "missing" in status
    assert "not in cache" in status, status
    assert not _object(workspace, MODEL).exists()
    # Whichever of the two was hashed first keeps the edit as its own file.
    kept = [n for n in ("a.bin", "b.bin") if _is_own_file(workspace.root / n)]
    assert kept and (workspace.root / kept[0]).read_bytes() == MODEL + b"tuned"

    result = cli.run("checkout", exit_code=1)
    assert "corrupt" in result.stderr and "pipe pull" in result.stderr, result.stderr
    cli.run("add", kept[0])
    cli.run("pull")
    other = "b.bin" if kept[0] == "a.bin" else "a.bin"
    assert (workspace.root / other).read_bytes() == MODEL
    assert (workspace.root / kept[0]).read_bytes() == MODEL + b"tuned"
    assert _object(workspace, MODEL).read_bytes() == MODEL
    assert "up to date" in _status(cli)
    cli.run("cache", "verify")


def test_checkout_detects_an_edited_hardlink_even_when_the_memo_never_saw_it(
    workspace: Workspace, cli: Cli, linked_type: str
) -> None:
    """Edited right after `add` (the memo skips files that young): checkout knows the oid it wants."""
    _configure(workspace, linked_type)
    workspace.track({"model.bin": MODEL})
    _edit_in_place(workspace.root / "model.bin", b"tuned")
    result = cli.run("checkout", exit_code=1)
    assert (workspace.root / "model.bin").read_bytes() == MODEL + b"tuned"
    assert _is_own_file(workspace.root / "model.bin")
    assert not _object(workspace, MODEL).exists()
    assert "corrupt" in result.stderr and "model.bin" in result.stderr and "pipe pull" in result.stderr
    result = cli.run("checkout", "--force", exit_code=1)  # nothing intact to check out: the edit stays
    assert (workspace.root / "model.bin").read_bytes() == MODEL + b"tuned"
    cli.run("cache", "verify")


def test_checking_out_another_version_replaces_the_link_never_writes_through_it(
    workspace: Workspace, cli: Cli, linked_type: str
) -> None:
    _configure(workspace, linked_type)
    workspace.track({"model.bin": MODEL, "data/images": FILES})
    workspace.commit("v1")
    (workspace.root / "model.bin").unlink()
    (workspace.root / "data/images/02.txt").unlink()
    workspace.write({"model.bin": b"v2", "data": {"images": {"02.txt": "v2\n"}}})
    cli.run("add", "model.bin", "data/images")
    assert _shares_object(workspace, "model.bin", b"v2")
    workspace.git("checkout", "-q", "HEAD", "--", "model.bin.pipe", "data/images.pipe")
    cli.run("checkout")
    assert (workspace.root / "model.bin").read_bytes() == MODEL
    assert workspace.read("data/images/02.txt") == FILES["02.txt"]
    assert _object(workspace, b"v2").read_bytes() == b"v2"
    assert _object(workspace, b"v2\n").read_bytes() == b"v2\n"
    assert _shares_object(workspace, "model.bin", MODEL)
    cli.run("cache", "verify")


def test_a_stage_out_edited_through_a_link_is_committed_as_its_new_content(
    workspace: Workspace, cli: Cli, linked_type: str
) -> None:
    _configure(workspace, linked_type)
    workspace.write({"n.txt": "3\n"})
    workspace.write_pipeline({"make": {"cmd": "seq $(cat n.txt) > total", "deps": ["n.txt"], "outs": ["total"]}})
    cli.run("repro")
    _age_objects(workspace)
    cli.run("status")
    assert _shares_object(workspace, "total", b"1\n2\n3\n")
    _edit_in_place(workspace.root / "total", b"4\n")

    status = _status(cli)
    assert "make" in status and "total" in status, status
    assert not _object(workspace, b"1\n2\n3\n").exists()
    assert workspace.read("total") == "1\n2\n3\n4\n" and _is_own_file(workspace.root / "total")
    cli.run("commit", "-f")
    outs = workspace.lock()["stages"]["make"]["outs"]
    assert outs[0]["oid"] == hash_bytes(b"1\n2\n3\n4\n")
    assert _object(workspace, b"1\n2\n3\n4\n").read_bytes() == b"1\n2\n3\n4\n"
    cli.run("cache", "verify")


def test_an_edit_right_after_add_is_still_caught_by_status(workspace: Workspace, cli: Cli, linked_type: str) -> None:
    """The memo cannot trust a file younger than its clock tick, but it still knows what a fresh
    link held: an edit made at once (before any status) is separated all the same."""
    _configure(workspace, linked_type)
    workspace.track({"model.bin": MODEL, "data/images": FILES})
    _edit_in_place(workspace.root / "model.bin", b"tuned")
    _edit_in_place(workspace.root / "data/images/01.txt", b"more\n")
    status = _status(cli)
    assert "model.bin" in status and "data/images" in status and "modified" in status
    assert _is_own_file(workspace.root / "model.bin") and _is_own_file(workspace.root / "data/images/01.txt")
    assert not _object(workspace, MODEL).exists() and not _object(workspace, FILES["01.txt"].encode()).exists()
    cli.run("add", "model.bin", "data/images")
    assert "up to date" in _status(cli)
    cli.run("cache", "verify")
