"""Remote workloads (issue: remote storage): push, no-op push and pull of 10,000 small files.

Run:  python bench/bench_remote.py [--files 10000] [--repeat 3] [--kinds local,s3]
Needs moto's server (`moto[server]`, from the test extra) for the S3 rows; it is started on a
free loopback port and stopped at the end. Times `pipe` and, when found, `dvc` (with dvc-s3 for
the S3 rows; see bench/common.py) on identical data, and prints medians and pipe/dvc ratios.
Benchmark a normal install (`pip install .`), not an editable one.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench_core import make_files, new_repo
from common import Timing, available_tools, print_table, run, time_runs

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_counter = itertools.count()


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's S3 server on a free port; returns the process and its endpoint URL."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "moto_server"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen(
        [*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)  # waiting for the server process to listen
    proc.kill()
    raise SystemExit("bench: moto_server did not start")


class RemoteTarget:
    """Where a run pushes: a fresh local directory or a fresh S3 prefix each time."""

    def __init__(self, kind: str, base: Path, endpoint: str | None) -> None:
        self.kind, self.base, self.endpoint = kind, base, endpoint

    def fresh_url(self) -> str:
        """A new empty remote (on S3, a new bucket: moto's listings cost grows with the bucket)."""
        n = next(_counter)
        if self.kind == "s3":
            import boto3

            boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(
                Bucket=f"bench-{n}"
            )
            return f"s3://bench-{n}/project"
        path = self.base / f"remote-{n}"
        return str(path)

    def configure(self, tool: str, exe: str, root: Path, url: str) -> None:
        """Point the tool's default remote at `url`."""
        if tool == "pipe":
            run([exe, "remote", "add", "-f", "-d", "r", url], root)
            if self.endpoint:
                run([exe, "remote", "modify", "r", "endpoint_url", self.endpoint], root)
        else:
            run([exe, "remote", "add", "-f", "-d", "r", url], root)
            if self.endpoint:
                run([exe, "remote", "modify", "r", "endpointurl", self.endpoint], root)


def remote_workloads(
    base: Path, tool: str, exe: str, target: RemoteTarget, files: int, repeat: int
) -> dict[str, float]:
    """push to an empty remote, no-op push, pull into a repository without cache or data."""
    root = new_repo(base, tool, exe)
    make_files(root / "data" / "images", files)
    run([exe, "add", "data/images"], root)
    cache = root / (".pipe/cache" if tool == "pipe" else ".dvc/cache")
    times: dict[str, float] = {}
    times["push"] = time_runs(
        lambda: run([exe, "push"], root),
        setup=lambda: target.configure(tool, exe, root, target.fresh_url()),
        repeat=repeat,
    )
    times["no-op push"] = time_runs(lambda: run([exe, "push"], root), repeat=repeat)

    def wipe() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(root / "data" / "images", ignore_errors=True)
        for tmp in (root / ".pipe/tmp", root / ".dvc/tmp"):
            shutil.rmtree(tmp, ignore_errors=True)

    times["pull"] = time_runs(lambda: run([exe, "pull"], root), setup=wipe, repeat=repeat)
    check = sum(1 for _ in (root / "data" / "images").rglob("*.bin"))
    if check != files:
        raise SystemExit(f"bench: {tool} pull restored {check} of {files} files")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kinds", default="local,s3", help="comma-separated: local, s3")
    args = parser.parse_args()
    tools = available_tools()
    os.environ.update(CREDENTIALS)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    stop: Callable[[], object] = lambda: None
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="pipe-bench-remote-") as tmp:
        base = Path(tmp)
        try:
            endpoint = None
            if "s3" in kinds:
                proc, endpoint = start_moto()
                stop = proc.terminate
            for kind in kinds:
                target = RemoteTarget(kind, base, endpoint if kind == "s3" else None)
                results = {
                    t: remote_workloads(base, t, exe, target, args.files, args.repeat)
                    for t, exe in tools.items()
                }
                where = "local dir" if kind == "local" else "moto S3"
                timings.extend(
                    Timing(
                        f"{name} {args.files} files, {where}",
                        results["pipe"][name],
                        results.get("dvc", {}).get(name),
                    )
                    for name in results["pipe"]
                )
        finally:
            stop()
    print_table("pipe remote transfers (median seconds)", timings)


if __name__ == "__main__":
    main()
