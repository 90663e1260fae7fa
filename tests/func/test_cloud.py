"""pipe status --cloud, and gc_remote (the ops behind `pipe gc --cloud`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from pipeline_engine.index.remotes import open_project_remote
from pipeline_engine.index.used import used_outs
from pipeline_engine.ops.cloud import gc_remote
from pipeline_engine.ops.gc import collect_used
from pipeline_engine.remote import partial as remote_partial
from tests.conftest import Cli, Workspace

IMAGES = {f"{i:02}.txt": f"image {i}\n" for i in range(10)}


def _pushed(workspace: Workspace, cli: Cli, tmp_path: Path) -> Path:
    workspace.track({"data/images": IMAGES, "data/model.bin": "weights v1"})
    store = workspace.add_remote(tmp_path / "remote-store")
    # Loose layout: these tests look at and damage object files (packed remotes: test_pack_remote.py).
    cli.run("remote", "modify", "store", "pack_threshold", "0")
    cli.run("push")
    return store


def _remote_oids(store: Path) -> set[str]:
    return {p.parent.name + p.name for p in store.glob("??/*")}


def test_status_cloud_says_in_sync_after_push(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    _pushed(workspace, cli, tmp_path)
    assert "in sync with remote 'store': 2 tracked path(s)" in cli.run("status", "--cloud").stderr


def test_status_cloud_lists_what_is_not_pushed_and_not_fetched(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    _pushed(workspace, cli, tmp_path)
    workspace.write({"data": {"images": {"new.txt": "fresh"}}})
    cli.run("add", "data/images")
    model = workspace.project().store.path_of(hash_bytes(b"weights v1"))
    os.chmod(model, 0o644)
    model.unlink()
    result = cli.run("status", "--cloud", "--exit-code", exit_code=1)
    assert "data/images  2 not pushed (of 12 objects)" in result.stdout
    assert "data/model.bin  1 not fetched (of 1 objects)" in result.stdout
    data = json.loads(cli.run("status", "-c", "--json").stdout)
    assert {e["path"]: e["not_pushed"] for e in data["cloud"]} == {"data/images": 2, "data/model.bin": 0}


def test_status_cloud_quiet_prints_nothing_and_exits_1_when_not_pushed(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    # DVC's `status -c -q`: the exit code alone says whether the remote is behind
    _pushed(workspace, cli, tmp_path)
    assert cli.run("status", "-c", "-q").stdout == ""
    workspace.track({"new.csv": "n\n"})
    assert cli.run("status", "-c", "-q", exit_code=1).stdout == ""


def test_gc_remote_deletes_only_unreferenced_objects(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    store = _pushed(workspace, cli, tmp_path)
    old_model = hash_bytes(b"weights v1")
    workspace.write({"data": {"model.bin": "weights v2"}})
    cli.run("add", "data/model.bin")
    cli.run("push")
    project = workspace.project()
    keep = collect_used(project).oids
    rem = open_project_remote(project)
    dry = gc_remote(rem, keep, dry=True)
    assert dry.removed == (old_model,) and old_model in _remote_oids(store)
    done = gc_remote(open_project_remote(project, "store"), keep, dry=False)
    assert done.removed == (old_model,)
    assert _remote_oids(store) == set(keep)


def test_gc_cloud_keeps_files_of_a_directory_whose_manifest_is_only_remote(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    store = _pushed(workspace, cli, tmp_path)
    before = _remote_oids(store)
    shutil.rmtree(workspace.project().store.root)
    cli.run("gc", "-w", "--cloud", "-f")  # the manifest comes from the remote, so its files are known
    assert _remote_oids(store) == before


def test_gc_cloud_refuses_when_a_kept_manifest_is_nowhere(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    store = _pushed(workspace, cli, tmp_path)
    project = workspace.project()
    manifest = next(o.oid for o in used_outs(project) if o.oid.endswith(".dir"))
    shutil.rmtree(project.store.root)
    os.unlink(store / oid_to_relpath(manifest))
    before = _remote_oids(store)
    result = cli.run("gc", "-w", "--cloud", "-f", exit_code=1)
    assert "gc stopped before deleting anything" in result.stderr
    assert f"'{manifest}'" in result.stderr and "'store'" in result.stderr
    assert "data/images.pipe" in result.stderr and "--skip-failed" in result.stderr
    assert _remote_oids(store) == before


def test_pipe_gc_cloud_cleans_cache_and_remote(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    store = _pushed(workspace, cli, tmp_path)
    old_model = hash_bytes(b"weights v1")
    workspace.write({"data": {"model.bin": "weights v2"}})
    cli.run("add", "data/model.bin")
    cli.run("push")
    assert old_model in _remote_oids(store)
    dry = cli.run("gc", "--workspace", "--cloud", "--dry")
    assert "remote 'store': would remove 1 object(s)" in dry.stderr
    assert old_model in _remote_oids(store)
    cli.run("gc", "-w", "-c", "-f")
    assert old_model not in _remote_oids(store)
    assert not workspace.project().store.exists(old_model)
    shutil.rmtree(workspace.root / ".pipe/cache")
    cli.run("pull")
    assert workspace.read("data/model.bin") == "weights v2"


def test_pipe_gc_cloud_asks_before_deleting(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    store = _pushed(workspace, cli, tmp_path)
    workspace.write({"data": {"model.bin": "weights v2"}})
    cli.run("add", "data/model.bin")
    cli.run("push")
    before = _remote_oids(store)
    result = cli.run("gc", "-w", "--cloud", input="n\n", exit_code=1)
    assert "remove 1 object(s), 10 B, from the cache, and 1 object(s) from the remote 'store'?" in result.stderr
    assert _remote_oids(store) == before


def test_verify_finds_and_repairs_objects_deleted_from_the_remote(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    store = _pushed(workspace, cli, tmp_path)
    lost = hash_bytes(b"image 3\n")
    (store / oid_to_relpath(lost)).unlink()
    # The manifest on the remote still vouches for its files: only --verify looks.
    assert "in sync with remote 'store'" in cli.run("status", "--cloud").stderr
    assert "0 transferred" in cli.run("push").stderr
    result = cli.run("status", "--cloud", "--verify", "--exit-code", exit_code=1)
    assert "data/images  1 not pushed (of 11 objects)" in result.stdout
    assert "'pipe push --verify'" in result.stderr
    assert "1 transferred" in cli.run("push", "--verify").stderr
    assert lost in _remote_oids(store)
    assert "in sync with remote 'store'" in cli.run("status", "-c", "--verify").stderr
    assert "--cloud" in cli.run("status", "--verify", exit_code=2).stderr


def test_fetch_reports_a_corrupt_download_by_path_and_keeps_it_out_of_the_cache(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    store = _pushed(workspace, cli, tmp_path)
    bad = hash_bytes(b"image 4\n")
    (store / oid_to_relpath(bad)).write_text("bit rot")
    shutil.rmtree(workspace.project().store.root)
    result = cli.run("fetch", exit_code=1)
    assert f"data/images/04.txt ({bad})" in result.stderr and "corrupt on remote 'store'" in result.stderr
    assert not workspace.project().store.exists(bad)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_push_removes_partial_uploads_of_killed_pushes(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    store = _pushed(workspace, cli, tmp_path)
    tmp = store / "tmp"
    host = remote_partial.HOST
    dead = tmp / f".pipetmp-{_dead_pid()}-0123abcd.{host}"
    live = tmp / f".pipetmp-{os.getpid()}-0123abcd.{host}"  # a push still running (here: this process)
    foreign_new = tmp / ".pipetmp-1-0123abcd.other-host"
    foreign_old = tmp / ".pipetmp-1-89abcdef.other-host"
    legacy_old = tmp / f"{hash_bytes(b'x')}.{'e' * 32}"
    for path in (dead, live, foreign_new, foreign_old, legacy_old):
        path.write_bytes(b"partial")
    for path in (foreign_old, legacy_old):
        os.utime(path, (time.time() - 2 * 86400,) * 2)
    cli.run("push")
    assert sorted(p.name for p in tmp.iterdir()) == sorted([live.name, foreign_new.name])
    assert "in sync" in cli.run("status", "-c", "--verify").stderr


def test_push_to_a_killed_push_leaves_no_partial_upload(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    """A real SIGKILL in the middle of a push: the next push completes and leaves no temp file."""
    workspace.track({"big": {f"{i:03}.bin": os.urandom(20_000) for i in range(300)}})
    store = workspace.add_remote(tmp_path / "remote-store")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline_engine", "push", "-j", "1"], cwd=workspace.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (store / "tmp").is_dir():  # the first upload has started
        assert proc.poll() is None and time.monotonic() < deadline, "push ended before it could be killed"
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    left = sorted(p.name for p in (store / "tmp").iterdir())
    cli.run("push")
    assert not any((store / "tmp").iterdir()), f"left by the killed push: {left}"
    assert "in sync" in cli.run("status", "-c", "--verify").stderr
