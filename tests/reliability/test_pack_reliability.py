"""Packed remotes under kills, concurrent pushes, damage and hostile indexes; S3 requests counted on the server.

A push killed between a pack and its index leaves an invisible pack that gc removes once old; two
pushes at once write separate packs and never rewrite a shared file; a damaged pack or index is
reported by its path, nothing damaged enters the cache and everything else arrives.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import xxhash

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.remote.open import open_remote
from tests.conftest import Cli, Workspace
from tests.s3server import DUMMY_ENV

pytestmark = pytest.mark.reliability

_PATCHED_PUSH = """
import os, sys, time
from pipeline_engine.remote import packed

def upload(self, local_pack, index):  # the pack goes up, then the process stalls before its index
    self.site.upload(local_pack, f"{self.dir}/{index.name}.pack")
    open(os.environ["PACK_UP"], "w").close()
    time.sleep(120)

packed.Packs.upload = upload
from pipeline_engine.cli import main
sys.argv = ["pipe", "push"]
main()
"""


def _files(rng: random.Random, prefix: str, count: int) -> dict[str, bytes]:
    return {f"{prefix}/{i:03}.bin": rng.randbytes(rng.randint(0, 2000)) + prefix.encode() + bytes([i % 256]) * 3
            for i in range(count)}


def _remote_oids(store: Path) -> set[str]:
    return set(open_remote("check", str(store), {}, base_dir=store).iter_oids())


def _pipe(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pipeline_engine", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_push_killed_between_pack_and_index_leaves_an_invisible_pack_that_gc_removes(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    files = _files(random.Random(seed), "data/images", 40)
    workspace.write(files)
    cli.run("add", "data/images")
    store = workspace.add_remote(tmp_path / "remote")
    workspace.commit("data")
    mark = tmp_path / "pack-up"
    env = {**os.environ, "PACK_UP": str(mark)}
    proc = subprocess.Popen([sys.executable, "-c", _PATCHED_PUSH], cwd=workspace.root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert proc.poll() is None and time.monotonic() < deadline, f"seed={seed}: push ended early"
            time.sleep(0.05)  # waiting on a real process to reach the window
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    (orphan,) = (store / "packs").glob("*.pack")
    assert not list((store / "packs").glob("*.idx"))
    assert _remote_oids(store) == set(), f"seed={seed}: a pack without an index is invisible"
    status = cli.run("status", "-c", "--exit-code", exit_code=1)
    assert "data/images  41 not pushed (of 41 objects)" in status.stdout
    kept = cli.run("gc", "-w", "-c", "-f")
    assert "kept 1 pack(s) without an index, younger than 1 hour" in kept.stderr and orphan.exists()
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    assert "removed 1 pack(s) without an index" in cli.run("gc", "-w", "-c", "-f").stderr
    assert not orphan.exists()
    assert "41 transferred" in cli.run("push").stderr
    clone = workspace.clone()
    cli.run("pull")
    assert all((clone.root / rel).read_bytes() == data for rel, data in files.items()), f"seed={seed}"


def test_two_concurrent_pushes_to_one_remote_then_pulls_get_everything(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    shared = _files(rng, "data/shared", 60)
    store = workspace.add_remote(tmp_path / "remote")
    workspace.commit("remote")
    clones = []
    for name in ("a", "b"):
        os.chdir(workspace.root)
        clone = workspace.clone(name)
        own = _files(rng, f"data/{name}", 150)
        clone.write({**shared, **own})
        cli.run("add", "data/shared", f"data/{name}")
        clone.commit(f"data {name}")
        clones.append((clone, {**shared, **own}))
    procs = [_pipe(c.root, "push", "-j", "4") for c, _ in clones]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], f"seed={seed}: {outs}"
    packs = sorted(p.name for p in (store / "packs").iterdir())
    assert packs and all(p.endswith((".pack", ".idx")) for p in packs) and not list((store / "tmp").glob("*"))
    for clone, files in clones:
        os.chdir(clone.root)
        for rel in files:
            (clone.root / rel).unlink()
        for obj in list(clone.project().store.root.rglob("*")):
            if obj.is_file():
                obj.chmod(0o644)
                obj.unlink()
        cli.run("pull")
        wrong = [rel for rel, data in files.items() if (clone.root / rel).read_bytes() != data]
        assert wrong == [], f"seed={seed}"


def _index_with_row(name_hex: str, pack_size: int, rows: list[tuple[str, int, int]]) -> bytes:
    body = struct.pack(">8sIIQ16s", b"PIPEPIDX", 1, len(rows), pack_size, bytes.fromhex(name_hex))
    for oid, offset, length in sorted(rows):
        body += struct.pack(">16sBQQ", bytes.fromhex(oid), 0, offset, length)
    return body + xxhash.xxh3_128_digest(body)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "hostile-index"])
def test_pack_damage_is_reported_by_path_and_nothing_damaged_enters_the_cache(
    workspace: Workspace, cli: Cli, tmp_path: Path, damage: str
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    files = _files(rng, "data/images", 20)
    files["data/big.bin"] = rng.randbytes(3000)
    workspace.write(files)
    cli.run("add", "data/images", "data/big.bin")
    store = workspace.add_remote(tmp_path / "remote")
    cli.run("remote", "modify", "store", "pack_threshold", "2200")  # big.bin stays loose
    cli.run("push")
    workspace.commit("data")
    (pack,) = (store / "packs").glob("*.pack")
    idx = pack.with_suffix(".idx")
    for path in (pack, idx):
        path.chmod(0o644)
    data = pack.read_bytes()
    if damage == "flip":
        at = rng.randrange(len(data))
        pack.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
        expect = f"in pack 'packs/{pack.name}'"
    elif damage == "truncate":
        pack.write_bytes(data[: rng.randrange(len(data))])
        expect = f"packs/{idx.name}' is invalid"
    elif damage == "delete":
        pack.unlink()
        expect = "is not on remote 'store'"
    else:  # a well-formed, checksummed index whose rows point past the pack
        some = sorted(hash_bytes(v) for k, v in files.items() if k.startswith("data/images"))[:3]
        rows = [(some[0], 0, 10), (some[1], len(data) - 5, 10), (some[2], 2**63, 1)]
        idx.write_bytes(_index_with_row(pack.stem, len(data), rows))
        expect = f"packs/{idx.name}' is invalid: object at"
    clone = workspace.clone()
    result = cli.run("fetch", exit_code=1)
    assert expect in result.stderr, f"seed={seed}: {result.stderr}"
    store_now = clone.project().store
    assert store_now.exists(hash_bytes(files["data/big.bin"])), f"seed={seed}: the loose object still arrived"
    for oid in store_now.iter_oids():  # whatever arrived is intact
        assert store_now.is_intact(oid), f"seed={seed}"
    leftovers = [p for p in store_now.root.rglob("*") if p.is_file() and ".pipetmp" in p.name]
    assert not leftovers, f"seed={seed}: a refused download was left behind"
    assert "Traceback" not in result.stderr


# -- request counts on a real S3 server ----------------------------------------------------------

_REQUEST = re.compile(rb'"(?:\x1b\[[0-9;]*m)*(?:GET|PUT|POST|HEAD|DELETE) (?!/moto-api)')


class _LoggedS3:
    """A moto server of this test alone, its access log (one line per request) in a file."""

    def __init__(self, log: Path) -> None:
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
                time.sleep(0.1)  # waiting on a real process to start listening
        raise RuntimeError("moto_server did not start")

    def requests(self) -> int:
        size = -1
        while size != (size := self.log.stat().st_size):
            time.sleep(0.2)  # log lines follow responses: wait until none is pending
        return len(_REQUEST.findall(self.log.read_bytes()))


@pytest.fixture
def logged_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_LoggedS3]:
    for key, value in DUMMY_ENV.items():
        monkeypatch.setenv(key, value)
    server = _LoggedS3(tmp_path / "moto.log")
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


@pytest.mark.s3
def test_push_and_pull_of_2000_small_files_to_s3_take_a_few_dozen_requests(
    workspace: Workspace, cli: Cli, logged_s3: _LoggedS3
) -> None:
    import boto3

    boto3.client("s3", endpoint_url=logged_s3.endpoint, region_name="us-east-1").create_bucket(Bucket="packs")
    files = {f"data/files/{i:04}.txt": f"small file {i}\n" * (i % 9 + 1) for i in range(2000)}
    workspace.write(files)
    cli.run("add", "data/files")
    cli.run("remote", "add", "-d", "s3", "s3://packs/project")
    cli.run("remote", "modify", "s3", "endpoint_url", logged_s3.endpoint)
    workspace.commit("data")
    before = logged_s3.requests()
    assert "2001 transferred" in cli.run("push").stderr
    pushed = logged_s3.requests()
    clone = workspace.clone()
    cli.run("pull")
    pulled = logged_s3.requests()
    assert all((clone.root / rel).read_text() == text for rel, text in files.items())
    # One request per object would be 2,001 each way.
    assert pushed - before <= 30, f"push took {pushed - before} requests"
    assert pulled - pushed <= 30, f"pull took {pulled - pushed} requests"
