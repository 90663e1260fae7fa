"""Two clones sharing data through the moto S3 server, with `pipe` as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Workspace, git
from tests.s3server import S3Server, s3_bucket, s3_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

FILES = {f"part-{i:03}.csv": "".join(f"{i},{j},{i * j}\n" for j in range(i + 1)) for i in range(60)}


def pipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline_engine", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"pipe {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_clone_b_pulls_exactly_what_clone_a_pushed(
    workspace: Workspace, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    a = workspace.root
    workspace.write({"data": {"raw": FILES, "labels.json": '{"classes": 3}\n'}})
    pipe("add", "data/raw", "data/labels.json", cwd=a)
    pipe("remote", "add", "-d", "shared", f"s3://{s3_bucket}/team/project", cwd=a)
    pipe("remote", "modify", "shared", "endpoint_url", s3_server.endpoint_url, cwd=a)
    pushed = pipe("push", cwd=a)
    assert "62 transferred" in pushed.stderr
    assert "0 transferred" in pipe("push", cwd=a).stderr
    workspace.commit("data on s3")

    b = tmp_path / "clone-b"
    git(tmp_path, "clone", "-q", str(a), str(b))
    pulled = pipe("pull", cwd=b)
    assert "62 transferred" in pulled.stderr and "0 failed" in pulled.stderr
    assert "up to date" in pipe("status", cwd=b).stderr
    assert _files(b / "data") == _files(a / "data")
