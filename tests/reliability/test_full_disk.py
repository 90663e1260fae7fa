"""OS errors are user errors: a full disk, a read-only or immutable directory, a name too long.

Each command runs as a real `pipe` process and must end with exit 1 and one `error:` line naming
the path and the cause (never a traceback), leave no temporary file, and keep the cache verifiably
intact and every earlier file unchanged. The full-disk cases use a small tmpfs (mounting needs
root, as in CI); the trials draw data sizes from a seed printed in every assertion message.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import hash_file
from pipeline_engine.project import Project
from tests.conftest import git
from tests.procutil import pipe_process
from tests.reliability.mounts import mount, tmpfs

pytestmark = pytest.mark.reliability

TRIALS = int(os.environ.get("PIPE_TRIALS", "2"))
FS_SIZE = 4 * 1024 * 1024


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs."""
    with tmpfs(tmp_path / "small-fs", str(FS_SIZE)) as mnt:
        yield mnt


def _project(root: Path, config: str | None = None) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    Project.init(root)
    if config is not None:
        (root / ".pipe/config.yaml").write_text(config)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    return root


def _temps(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in [*filenames, *dirnames]:
            if name.startswith(".pipetmp-") or name.endswith((".tmp", ".part")):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def _digests(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".pipe")]
        for name in filenames:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _assert_user_error(proc: subprocess.CompletedProcess[str], cause: str, cwd: Path, why: str) -> Path:
    """Exit 1, exactly one error line naming an existing path and `cause`; returns that path."""
    assert proc.returncode == 1, f"{why}: exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, f"{why}\n{proc.stderr}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"{why}: expected one error line\n{proc.stderr}"
    m = re.search(r"'([^']+)'", errors[0])
    assert m is not None and cause in errors[0].lower(), f"{why}: no path or cause '{cause}'\n{proc.stderr}"
    named = cwd / m.group(1)
    # A directory that could not be created is named too: then its parent exists.
    assert named.parent.exists(), f"{why}: the error names '{m.group(1)}', which is nowhere\n{proc.stderr}"
    return named


def _assert_intact(ws: Path, why: str) -> None:
    assert _temps(ws) == [], f"{why}: temporary files left: {_temps(ws)}"
    verify = pipe_process("cache", "verify", cwd=ws)
    assert verify.returncode == 0, f"{why}: cache verify failed\n{verify.stderr}"


@pytest.mark.parametrize("trial", range(TRIALS))
def test_add_on_a_full_disk_fails_cleanly(small_fs: Path, trial: int) -> None:
    seed = int(os.environ.get("PIPE_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    why = f"seed {seed}"
    ws = _project(small_fs / "ws")
    (ws / "early.txt").write_text("earlier data\n")
    assert pipe_process("add", "early.txt", cwd=ws).returncode == 0, why
    # The data fits on the disk, but not twice (the cache needs a copy).
    count = rng.randint(3, 40)
    total = rng.randint(FS_SIZE * 55 // 100, FS_SIZE * 80 // 100)
    (ws / "big").mkdir()
    for i in range(count):
        (ws / "big" / f"{i:03}.bin").write_bytes(rng.randbytes(total // count))
    before = _digests(ws)
    proc = pipe_process("add", "big", cwd=ws)
    named = _assert_user_error(proc, "no space left on device", ws, why)
    assert named.resolve().is_relative_to(ws), why
    assert "free some space" in proc.stderr, why
    _assert_intact(ws, why)
    assert _digests(ws) == before, f"{why}: workspace files changed"
    assert not (ws / "big.pipe").exists(), why
    status = pipe_process("status", "early.txt", "--exit-code", cwd=ws)
    assert status.returncode == 0, f"{why}\n{status.stdout}{status.stderr}"


@pytest.mark.parametrize("trial", range(TRIALS))
def test_pull_on_a_full_disk_fails_cleanly(small_fs: Path, tmp_path: Path, trial: int) -> None:
    seed = int(os.environ.get("PIPE_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    why = f"seed {seed}"
    src = _project(tmp_path / "src")
    (src / "early.txt").write_text("earlier data\n")
    count = rng.randint(3, 40)
    # Sometimes the download itself does not fit, sometimes only the checkout after it.
    total = rng.randint(FS_SIZE * 50 // 100, FS_SIZE * 150 // 100)
    (src / "big").mkdir()
    for i in range(count):
        (src / "big" / f"{i:03}.bin").write_bytes(rng.randbytes(total // count))
    for args in (("add", "early.txt", "big"), ("remote", "add", "-d", "store", str(tmp_path / "remote")), ("push",)):
        assert pipe_process(*args, cwd=src).returncode == 0, why
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "data")
    ws = small_fs / "ws"
    git(tmp_path, "clone", "-q", str(src), str(ws))
    assert pipe_process("pull", "early.txt", cwd=ws).returncode == 0, why
    proc = pipe_process("pull", cwd=ws)
    named = _assert_user_error(proc, "no space left on device", ws, f"{why}, {total} bytes")
    assert named.resolve().is_relative_to(ws), why
    _assert_intact(ws, why)
    assert (ws / "early.txt").read_text() == "earlier data\n", why
    for path in (ws / "big").glob("*") if (ws / "big").is_dir() else ():
        assert path.read_bytes() == (src / "big" / path.name).read_bytes(), f"{why}: '{path}' is not whole"


def test_add_into_a_read_only_cache_names_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "objects").mkdir(parents=True)
    ws = _project(tmp_path / "ws", f"schema: 1\ncache:\n  dir: {cache}\n")
    mount("--bind", str(cache), str(cache))
    try:
        mount("-o", "remount,bind,ro", str(cache))
        (ws / "data.csv").write_text("a,b\n1,2\n")
        proc = pipe_process("add", "data.csv", cwd=ws)
        named = _assert_user_error(proc, "read-only file system", ws, "read-only cache")
        assert named.resolve().is_relative_to(cache)
        assert "writable location" in proc.stderr
        assert _temps(ws) == [] and (ws / "data.csv").read_text() == "a,b\n1,2\n"
        assert not (ws / "data.csv.pipe").exists()
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False)


def test_add_into_an_immutable_directory_names_it(tmp_path: Path) -> None:
    ws = _project(tmp_path / "ws")
    (ws / "data").mkdir()
    (ws / "data" / "f.csv").write_text("x\n")
    chattr = ["chattr", "+i", str(ws / "data")]
    if shutil.which("chattr") is None or subprocess.run(chattr, capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        proc = pipe_process("add", "data/f.csv", cwd=ws)
        named = _assert_user_error(proc, "operation not permitted", ws, "immutable directory")
        assert named.resolve() == (ws / "data").resolve() or named.resolve().parent == (ws / "data").resolve()
        assert not (ws / "data" / "f.csv.pipe").exists()
    finally:
        subprocess.run(["chattr", "-i", str(ws / "data")], check=False)
    _assert_intact(ws, "immutable directory")


def test_a_name_too_long_for_its_pointer_is_a_user_error(tmp_path: Path) -> None:
    ws = _project(tmp_path / "ws")
    name = "n" * 252  # fits (NAME_MAX is 255); its pointer 'NAME.pipe' does not
    (ws / name).write_text("data\n")
    proc = pipe_process("add", name, cwd=ws)
    _assert_user_error(proc, "file name too long", ws, "long name")
    _assert_intact(ws, "long name")
    assert (ws / name).read_text() == "data\n"


@pytest.mark.parametrize("trial", range(TRIALS))
def test_push_to_a_full_remote_fails_cleanly_and_leaves_only_whole_objects(
    small_fs: Path, tmp_path: Path, trial: int
) -> None:
    seed = int(os.environ.get("PIPE_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    why = f"seed {seed}"
    ws = _project(tmp_path / "ws")
    count = rng.randint(3, 40)
    total = rng.randint(FS_SIZE * 110 // 100, FS_SIZE * 200 // 100)
    (ws / "big").mkdir()
    for i in range(count):
        (ws / "big" / f"{i:03}.bin").write_bytes(rng.randbytes(total // count))
    remote = small_fs / "remote"
    for args in (("add", "big"), ("remote", "add", "-d", "store", str(remote))):
        assert pipe_process(*args, cwd=ws).returncode == 0, why
    proc = pipe_process("push", "-j", str(rng.randint(1, 4)), cwd=ws)
    named = _assert_user_error(proc, "no space left on device", ws, why)
    assert named.resolve().is_relative_to(remote), why
    assert not any((remote / "tmp").iterdir()), f"{why}: partial uploads left on the remote"
    for path in remote.glob("??/*"):
        oid = path.parent.name + path.name
        assert hash_file(path) == oid.removesuffix(".dir"), f"{why}: '{path}' on the remote is not whole"
    assert not list(remote.glob("??/*.dir")), f"{why}: a manifest was pushed before its files"


@pytest.mark.parametrize("trial", range(TRIALS))
def test_add_out_of_file_handles_fails_cleanly(tmp_path: Path, trial: int) -> None:
    seed = int(os.environ.get("PIPE_SEED") or random.randrange(2**32))
    limit = random.Random(seed).randint(8, 12)  # low enough to fail most runs
    why = f"seed {seed}, ulimit -n {limit}"
    ws = _project(tmp_path / "ws")
    (ws / "d").mkdir()
    for i in range(300):
        (ws / "d" / str(i)).write_text(f"{i}\n")
    before = _digests(ws)

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "pipeline_engine", "add", "d"], cwd=ws, capture_output=True,
                          text=True, check=False, preexec_fn=few_files)
    assert "Traceback" not in proc.stderr, f"{why}\n{proc.stderr}"
    if proc.returncode == 0:  # the threads happened to need fewer files at once: then it must be complete
        _assert_intact(ws, why)
        assert pipe_process("status", "--exit-code", cwd=ws).returncode == 0, why
        return
    assert proc.returncode == 1, f"{why}: exit {proc.returncode}\n{proc.stderr}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "too many open files" in errors[0], f"{why}\n{proc.stderr}"
    assert "ulimit -n" in proc.stderr, why
    _assert_intact(ws, why)
    assert _digests(ws) == before and not (ws / "d.pipe").exists(), why
