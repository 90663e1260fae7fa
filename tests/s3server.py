"""A real S3-compatible server for tests: moto's server as a subprocess on a free loopback port.

Import the fixtures into a conftest or test module
(`from tests.s3server import s3_bucket_fixture, s3_server_fixture`): they register as `s3_server` and
`s3_bucket`. The server starts once per test process and stops when the session ends. Dummy AWS
credentials are put in the environment so that s3fs never looks for real ones (nor at an
instance-metadata endpoint).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
}
_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint URL and process."""

    endpoint_url: str
    process: subprocess.Popen[bytes]

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique one by default) and return its name."""
        import boto3

        bucket = name or f"pipe-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        return bucket

    def client(self) -> object:
        """A boto3 S3 client talking to this server (to inspect or damage objects in tests)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_command(port: int) -> list[str]:
    exe = Path(sys.executable).parent / "moto_server"
    if exe.exists():
        return [str(exe), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)  # waiting on a real process to start listening
    raise RuntimeError(f"moto_server did not answer on {url} within {_START_TIMEOUT} s")


_running: list[S3Server] = []


def start_server() -> S3Server:
    """Start (once per process) and return the moto S3 server."""
    if _running and _running[0].process.poll() is None:
        return _running[0]
    os.environ.update(DUMMY_ENV)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(_moto_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(url, process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    _running[:] = [S3Server(url, process)]
    return _running[0]


def stop_server() -> None:
    """Stop the server if it runs."""
    while _running:
        server = _running.pop()
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="session", name="s3_server")
def s3_server_fixture() -> Iterator[S3Server]:
    """The moto S3 server of this test session."""
    yield start_server()
    stop_server()


@pytest.fixture(name="s3_bucket")
def s3_bucket_fixture(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the test server; the dummy credentials are in the environment."""
    for key, value in DUMMY_ENV.items():
        monkeypatch.setenv(key, value)
    return s3_server.create_bucket()
