"""Remotes to push to: a new local directory or a new S3 bucket on a moto server that counts requests.

moto's server logs one line per HTTP request (werkzeug's access log); `MotoServer.count` reads
that log, so a workload's request count is the number of lines it added. The log is written after
each response is sent, so `count` waits until the log stops growing before it reads a total.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from common import Sample, run

__all__ = ["CREDENTIALS", "MotoServer", "RemoteTarget"]

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
}
# `"GET /bucket/key HTTP/1.1" 200`, the method possibly wrapped in ANSI colour codes
_REQUEST = re.compile(rb'"(?:\x1b\[[0-9;]*m)*(?:GET|PUT|POST|HEAD|DELETE) (?!/moto-api)')
_counter = itertools.count()


class MotoServer:
    """moto's S3 server on a free loopback port, its access log in `log`."""

    def __init__(self, log: Path) -> None:
        os.environ.update(CREDENTIALS)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        exe = Path(sys.executable).parent / "moto_server"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        self.log = log
        with open(log, "wb") as sink:
            self.process = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)],
                                            stdout=subprocess.DEVNULL, stderr=sink)
        self.endpoint = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)  # waiting for the server process to listen
        self.stop()
        raise SystemExit("bench: moto_server did not start")

    def requests(self) -> int:
        """S3 requests served so far, once the log has stopped growing."""
        size = -1
        while size != (size := self.log.stat().st_size):
            time.sleep(0.2)  # log lines follow responses; 0.2 s of silence means all are in
        return len(_REQUEST.findall(self.log.read_bytes()))

    def counted(self, action: Callable[[], Sample]) -> Sample:
        """Run `action` and add the number of S3 requests it made to its sample."""
        before = self.requests()
        sample = action()
        return Sample(sample.seconds, sample.rss_mib, sample.timed_out, self.requests() - before)

    def new_bucket(self) -> str:
        """A new empty bucket (moto's listing cost grows with the bucket, so never reuse one)."""
        import boto3

        name = f"bench-{next(_counter)}"
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        """Stop the server (the one this object started)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RemoteTarget:
    """Where a run pushes: a new local directory under `base`, or a new bucket on `server`."""

    def __init__(self, kind: str, base: Path, server: MotoServer | None = None) -> None:
        if kind == "s3" and server is None:
            raise ValueError("an s3 target needs a MotoServer")
        self.kind, self.base, self.server = kind, base, server

    @property
    def label(self) -> str:
        """How tables name this kind of remote."""
        return "moto S3" if self.server else "local dir"

    def fresh_url(self) -> str:
        """A new empty remote."""
        if self.server:
            return f"s3://{self.server.new_bucket()}/project"
        return str(self.base / f"remote-{next(_counter)}")

    def configure(self, tool: str, exe: str, root: Path, url: str) -> None:
        """Point the tool's default remote at `url`."""
        run([exe, "remote", "add", "-f", "-d", "r", url], root)
        if self.server:
            key = "endpoint_url" if tool == "pipe" else "endpointurl"
            run([exe, "remote", "modify", "r", key, self.server.endpoint], root)

    def measure(self, action: Callable[[], Sample]) -> Sample:
        """Run `action`, counting S3 requests when the remote is S3."""
        return self.server.counted(action) if self.server else action()
