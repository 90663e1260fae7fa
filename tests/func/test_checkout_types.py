"""`pipe checkout` with each cache type: right bytes and modes, never a corrupt object, links
verified once (the memo remembers), reflink tried once per filesystem, and real reflinks on a
loop-mounted XFS image where this machine can make one (skipped cleanly elsewhere)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import hash_bytes
from tests.cacheutil import age_objects, object_path, set_cache_type
from tests.conftest import Cli, Workspace

FILES = {f"d{i % 3}/{i:03}.txt": f"line {i}\n" * (i + 2) for i in range(90)}  # enough for the thread pool
TOOL = "#!/bin/sh\necho tool\n"
CACHE_TYPES = ["copy", "reflink,copy", "hardlink", "symlink"]


def _track(workspace: Workspace) -> None:
    workspace.write({"data": {"set": {p: t for p, t in FILES.items()}}, "tools": {"run.sh": TOOL, "x.txt": "x\n"}})
    os.chmod(workspace.root / "tools/run.sh", 0o755)
    workspace.pipe("add", "data/set", "tools")
    workspace.commit("data")


def _remove_data(root: Path) -> None:
    shutil.rmtree(root / "data/set")
    shutil.rmtree(root / "tools")


def _no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob(".pipetmp-*") if ".pipe" not in p.relative_to(root).parts]


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_checkout_writes_every_file_with_its_bytes_and_mode(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    set_cache_type(workspace.root, cache_type)
    _track(workspace)
    _remove_data(workspace.root)
    result = cli.run("checkout")
    assert "92 file(s) written" in result.stderr or "written" in result.stderr, result.stderr
    for rel, text in FILES.items():
        path = workspace.root / "data/set" / rel
        assert path.read_text() == text, rel
        obj = object_path(workspace.root, text.encode())
        if cache_type == "symlink":
            assert path.is_symlink() and Path(os.path.realpath(path)) == obj.resolve()
        elif cache_type == "hardlink":
            assert os.stat(path).st_ino == os.stat(obj).st_ino
        else:
            assert not path.is_symlink() and os.stat(path).st_ino != os.stat(obj).st_ino
            assert stat.S_IMODE(os.stat(path).st_mode) & 0o200, "a copy is the user's to edit"
    tool = workspace.root / "tools/run.sh"
    assert tool.read_text() == TOOL and os.access(tool, os.X_OK) and not tool.is_symlink()
    assert os.stat(tool).st_nlink == 1, "an executable is never a link to a read-only, non-executable object"
    assert not os.access(workspace.root / "tools/x.txt", os.X_OK) or cache_type == "symlink"
    for obj in (workspace.root / ".pipe/cache/objects").rglob("*"):
        if obj.is_file():
            assert not stat.S_IMODE(obj.stat().st_mode) & 0o222, obj
    assert _no_temp_files(workspace.root)
    assert "up to date" in (cli.run("status").stdout + cli.run("status").stderr)
    cli.run("cache", "verify")


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_a_corrupt_object_never_reaches_the_workspace(workspace: Workspace, cli: Cli, cache_type: str) -> None:
    set_cache_type(workspace.root, cache_type)
    _track(workspace)
    age_objects(workspace.root)
    cli.run("cache", "verify")  # every object verified and remembered: the corruption below must still be seen
    victim = FILES["d1/007.txt"]
    obj = object_path(workspace.root, victim.encode())
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:  # same size, same inode: only the bytes differ
        f.write(b"X")
    old = obj.stat().st_mtime - 30
    os.utime(obj, (old, old))
    _remove_data(workspace.root)
    result = cli.run("checkout", exit_code=1)
    assert "corrupt" in result.stderr and "data/set/d1/007.txt" in result.stderr and "pipe pull" in result.stderr
    assert not (workspace.root / "data/set/d1/007.txt").exists() and not (workspace.root / "data/set/d1/007.txt").is_symlink()
    assert (workspace.root / ".pipe/cache/quarantine" / hash_bytes(victim.encode())).is_file()
    assert not obj.exists()
    assert all((workspace.root / "data/set" / r).read_text() == t for r, t in FILES.items() if r != "d1/007.txt")
    assert _no_temp_files(workspace.root)


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_a_new_directory_with_objects_corrupt_and_missing_gets_every_other_file(
    workspace: Workspace, cli: Cli, cache_type: str
) -> None:
    """Enough files that links are made by several threads; a corrupt object (verified before,
    edited since), a missing one (the only file of its sub-directory) and an executable among them."""
    set_cache_type(workspace.root, cache_type)
    files = {f"d{i % 7}/{i:04}.txt": f"file {i}\n" for i in range(700)}
    files["lonely/only.txt"] = "only\n"
    files["spoilt/one.txt"] = "spoilt\n"
    workspace.write({"big": files})
    os.chmod(workspace.root / "big/d3/0003.txt", 0o755)
    cli.run("add", "big")
    age_objects(workspace.root)
    cli.run("cache", "verify")
    for text in (files["d2/0100.txt"], files["spoilt/one.txt"]):
        corrupt = object_path(workspace.root, text.encode())
        os.chmod(corrupt, 0o644)
        with open(corrupt, "r+b") as f:
            f.write(b"X")
    os.unlink(object_path(workspace.root, b"only\n"))
    shutil.rmtree(workspace.root / "big")
    result = cli.run("checkout", exit_code=1)
    assert "big/d2/0100.txt" in result.stderr and "corrupt" in result.stderr
    assert "big/lonely/only.txt" in result.stderr and "pipe pull" in result.stderr
    for empty in ("big/lonely", "big/spoilt"):
        assert not (workspace.root / empty).exists(), "no empty directory for files that could not be written"
    written = {r: t for r, t in files.items() if r not in ("d2/0100.txt", "lonely/only.txt", "spoilt/one.txt")}
    assert all((workspace.root / "big" / r).read_text() == t for r, t in written.items())
    assert os.stat(workspace.root / "big/d3/0003.txt").st_mode & 0o111
    if cache_type == "hardlink":
        assert all(os.stat(workspace.root / "big" / r).st_nlink >= 2 for r in written if r != "d3/0003.txt")
    assert not (workspace.root / "big/d2/0100.txt").exists() and _no_temp_files(workspace.root)


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink", "reflink,copy"])
def test_linked_objects_are_read_once_then_trusted_by_their_stat_data(
    workspace: Workspace, cli: Cli, cache_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_engine.cache import place

    set_cache_type(workspace.root, cache_type)
    _track(workspace)
    age_objects(workspace.root)
    reads: list[str] = []
    real_verify = place.verify_file
    monkeypatch.setattr(
        place, "verify_file", lambda p, oid, size=None: reads.append(str(p)) or real_verify(p, oid, size)
    )
    _remove_data(workspace.root)
    cli.run("checkout")
    first = len(reads)
    if cache_type != "reflink,copy":  # where reflinks fail, files are copies, hashed as written
        assert first == len(set(FILES.values())) + 1, "each linked object is verified once (tools/x.txt too)"
    for _ in range(2):
        _remove_data(workspace.root)
        cli.run("checkout")
    assert len(reads) == first, "an object verified before, its stat data unchanged, is not read again"
    assert all((workspace.root / "data/set" / r).read_text() == t for r, t in FILES.items())


def test_a_failed_reflink_is_tried_once_per_filesystem_not_per_file(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_engine.cache import link
    from pipeline_engine.core.parallel import IO_JOBS

    probe = workspace.root / "probe"
    probe.write_bytes(b"probe")
    try:
        link.reflink_file(str(probe), str(workspace.root / "probe2"), 0o644)
    except OSError:
        pass
    else:
        pytest.skip("this filesystem supports reflinks")
    set_cache_type(workspace.root, "reflink,copy")
    _track(workspace)
    monkeypatch.setattr(link, "_failed", set())
    calls: list[int] = []
    real_ioctl = link.fcntl.ioctl

    def counting_ioctl(fd: int, request: int, arg: int) -> object:
        calls.append(request)
        return real_ioctl(fd, request, arg)

    monkeypatch.setattr(link.fcntl, "ioctl", counting_ioctl)
    _remove_data(workspace.root)
    cli.run("checkout")
    assert 1 <= len(calls) <= IO_JOBS, f"{len(calls)} FICLONE calls for {len(FILES) + 2} files"
    assert all((workspace.root / "data/set" / r).read_text() == t for r, t in FILES.items())


# --- real reflinks ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xfs_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory on a freshly made, loop-mounted XFS filesystem with reflink support.

    Needs root, mkfs.xfs (Debian's xfsprogs) and loop devices; skipped when any is missing.
    """
    if os.geteuid() != 0 or shutil.which("mkfs.xfs") is None:
        pytest.skip("making an XFS filesystem needs root and mkfs.xfs (xfsprogs)")
    base = tmp_path_factory.mktemp("xfs")
    image, mount = base / "fs.img", base / "mnt"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(320 << 20)
    made = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=False, capture_output=True)
    mounted = made.returncode == 0 and subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount)], check=False, capture_output=True
    ).returncode == 0
    if not mounted:
        pytest.skip("cannot loop-mount an XFS image here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)
        with contextlib.suppress(OSError):
            image.unlink()


def _shares_extents(a: Path, b: Path) -> bool:
    """True when two files share their data extents (filefrag shows the same physical offsets)."""
    def extents(p: Path) -> str:
        out = subprocess.run(["filefrag", "-v", str(p)], check=False, capture_output=True, text=True).stdout
        return "\n".join(line.split(":", 2)[-1] for line in out.splitlines() if line.strip()[:1].isdigit())
    return extents(a) == extents(b) and extents(a) != ""


def test_reflink_on_a_filesystem_that_has_it(xfs_dir: Path, workspace: Workspace, cli: Cli) -> None:
    root = xfs_dir / "project"
    shutil.copytree(workspace.root, root, symlinks=True)
    big = os.urandom(256 << 10)
    with contextlib.chdir(root):
        ws = Workspace(root)
        ws.write({"model.bin": big, "data": {"set": FILES}})
        ws.pipe("add", "model.bin", "data/set")
        (root / "model.bin").unlink()
        shutil.rmtree(root / "data/set")
        ws.pipe("checkout")
        model = root / "model.bin"
        assert model.read_bytes() == big and not model.is_symlink()
        obj = object_path(root, big)
        assert os.stat(model).st_ino != os.stat(obj).st_ino
        if shutil.which("filefrag"):
            assert _shares_extents(model, obj), "checkout should have cloned the object's extents"
        with open(model, "ab") as f:  # copy-on-write: an edit never reaches the object
            f.write(b"edit")
        assert obj.read_bytes() == big
        status = ws.pipe("status")
        assert "modified" in status.stdout + status.stderr
        assert all((root / "data/set" / r).read_text() == t for r, t in FILES.items())
        ws.pipe("cache", "verify")
