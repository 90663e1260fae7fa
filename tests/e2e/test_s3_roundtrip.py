"""Two clones sharing data through a remote (the moto S3 server, a directory), `pipe` as a real subprocess."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import hash_file
from tests.conftest import Workspace
from tests.procutil import pipe_process
from tests.s3server import S3Server, s3_bucket_fixture, s3_server_fixture  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

FILES = {f"part-{i:03}.csv": "".join(f"{i},{j},{i * j}\n" for j in range(i + 1)) for i in range(60)}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.s3
def test_clone_b_pulls_exactly_what_clone_a_pushed(
    workspace: Workspace, s3_server: S3Server, s3_bucket: str
) -> None:
    a = workspace.root
    workspace.write({"data": {"raw": FILES, "labels.json": '{"classes": 3}\n'}})
    pipe_process("add", "data/raw", "data/labels.json", cwd=a, check=0)
    workspace.write_pipeline(
        {
            "count": {
                "cmd": "mkdir -p out && ls data/raw | wc -l > out/files.txt && cat data/raw/* | wc -l > out/rows.txt",
                "deps": ["data/raw"],
                "outs": ["out"],
            }
        }
    )
    pipe_process("repro", cwd=a, check=0)
    pipe_process("remote", "add", "-d", "shared", f"s3://{s3_bucket}/team/project", cwd=a, check=0)
    pipe_process("remote", "modify", "shared", "endpoint_url", s3_server.endpoint_url, cwd=a, check=0)
    pushed = pipe_process("push", cwd=a, check=0)
    assert "65 transferred" in pushed.stderr  # 60 files + manifest, labels, 2 outs + manifest
    assert "0 transferred" in pipe_process("push", cwd=a, check=0).stderr
    workspace.commit("data and pipeline on s3")

    b = workspace.clone("clone-b").root
    pulled = pipe_process("pull", cwd=b, check=0)
    assert "65 transferred" in pulled.stderr and "0 failed" in pulled.stderr
    assert "up to date" in pipe_process("status", cwd=b, check=0).stderr
    assert "nothing to do" in pipe_process("repro", cwd=b, check=0).stderr
    assert _files(b / "data") == _files(a / "data")
    assert _files(b / "out") == _files(a / "out")


def _run_then_kill(args: list[str], cwd: Path, started: Callable[[], bool]) -> bool:
    """Start `pipe ARGS` and SIGKILL it as soon as `started()`; True when it was killed, not done."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline_engine", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and not started() and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a real process
    proc.kill()
    return proc.wait() == -signal.SIGKILL


def _objects_are_intact(root: Path) -> int:
    count = 0
    for path in root.glob("??/*"):
        if path.name.startswith(".pipetmp-"):
            continue  # a killed transfer's temporary file: never an object (the next command sweeps it)
        oid = path.parent.name + path.name
        assert hash_file(path) == oid.removesuffix(".dir"), (
            f"partial or corrupt object {oid} under its final name"
        )
        count += 1
    return count


def test_killed_push_and_fetch_leave_no_partial_object_and_a_rerun_completes(
    workspace: Workspace, tmp_path: Path
) -> None:
    a = workspace.root
    workspace.write({"data": {"many": {f"{i:04}.txt": f"row {i}\n" * 50 for i in range(600)}}})
    pipe_process("add", "data/many", cwd=a, check=0)
    remote = tmp_path / "remote"
    pipe_process("remote", "add", "-d", "store", str(remote), cwd=a, check=0)
    # Loose objects, killed one by one mid-push (a push killed between a pack and its index:
    # tests/reliability/test_pack_reliability.py).
    pipe_process("remote", "modify", "store", "pack_threshold", "0", cwd=a, check=0)
    assert _run_then_kill(["push", "-j", "1"], a, lambda: len(list(remote.glob("??/*"))) >= 20)
    on_remote = _objects_are_intact(remote)
    assert 20 <= on_remote < 601
    rerun = pipe_process("push", cwd=a, check=0)
    assert f"{601 - on_remote} transferred" in rerun.stderr and f"{on_remote} already present" in rerun.stderr
    workspace.commit("data")

    b = workspace.clone("clone-b").root
    objects = b / ".pipe" / "cache" / "objects"
    # Downloads land beside their fan-out directory and get their final names a chunk at a time.
    assert _run_then_kill(["fetch", "-j", "1"], b, lambda: len(list(objects.glob("??/.pipetmp-*.part"))) >= 20)
    in_cache = _objects_are_intact(objects)
    rerun = pipe_process("pull", cwd=b, check=0)
    assert f"{601 - in_cache} transferred" in rerun.stderr
    assert _files(b / "data") == _files(a / "data")
