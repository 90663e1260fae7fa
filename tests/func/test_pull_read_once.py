"""push and pull read each object once, and the single read is still the check.

push hashes an object while it copies it into a pack (or right before a loose upload), fetch
while it writes a download; no object is read again to verify it. These tests count the files
opened, damage objects on both sides, and kill a pull mid-fetch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath, relpath_to_oid
from pipeline_engine.remote.batch import GIVE_UP
from tests.cacheutil import count_opens
from tests.conftest import Cli, Workspace
from tests.packutil import corrupt_packed, index_of

IMAGES = {f"{i:03}.txt": f"image {i}\n" * (i + 1) for i in range(30)}


def _oid(name: str) -> str:
    return hash_bytes(IMAGES[name].encode())


def _is_object(path: str) -> bool:
    return relpath_to_oid("/".join(path.split("/")[-2:])) is not None


def _leftovers(store_root: Path) -> list[Path]:
    return [p for p in store_root.rglob("*") if p.is_file() and ".pipetmp" in p.name]


@pytest.mark.parametrize("threshold", ["1048576", "0"], ids=["packed", "loose"])
def test_push_opens_each_cached_object_once(
    workspace: Workspace, cli: Cli, local_remote: Path, monkeypatch: pytest.MonkeyPatch, threshold: str
) -> None:
    cli.run("remote", "modify", "store", "pack_threshold", threshold)
    workspace.track({"data/images": IMAGES})
    store_root = workspace.project().store.root
    opens = count_opens(monkeypatch, store_root, _is_object)
    result = cli.run("push")
    monkeypatch.undo()
    assert "31 transferred" in result.stderr
    files = {os.fspath(store_root / oid_to_relpath(_oid(n))) for n in IMAGES}
    assert files <= set(opens), "every file object was read"
    if threshold == "0":  # loose: fsspec's upload opens the file too, after the check
        assert all(opens[f] == 2 for f in files), dict(opens)
    else:
        assert all(opens[f] == 1 for f in files), f"a packed object was read more than once: {dict(opens)}"


def test_fetch_opens_each_download_once(
    workspace: Workspace, cli: Cli, local_remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.track({"data/images": IMAGES})
    cli.run("push")
    workspace.commit("data and remote")
    clone = workspace.clone()
    opens = count_opens(monkeypatch, clone.project().store.root, lambda p: ".pipetmp" in p)
    result = cli.run("fetch")
    monkeypatch.undo()
    assert "31 transferred" in result.stderr
    assert len(opens) == 31, dict(opens)
    packed = {p: n for p, n in opens.items() if ".dir" not in p}  # the manifest, pushed alone, is loose
    assert len(packed) == 30
    assert all(n == 1 for n in packed.values()), f"a download was read again to verify it: {packed}"
    store = clone.project().store
    assert all(store.is_intact(o) for o in store.iter_oids())
    assert not _leftovers(store.root)


@pytest.mark.parametrize("threshold", ["1048576", "0"], ids=["packed", "loose"])
def test_push_refuses_every_corrupt_object_by_name_and_sends_the_rest(
    workspace: Workspace, cli: Cli, local_remote: Path, threshold: str
) -> None:
    cli.run("remote", "modify", "store", "pack_threshold", threshold)
    workspace.track({"data/images": IMAGES})
    store = workspace.project().store
    damaged = sorted(IMAGES)[: GIVE_UP + 2]  # more than a batch gives up after: corrupt is no reason to stop
    for name in damaged:
        obj = store.path_of(_oid(name))
        os.chmod(obj, 0o644)
        obj.write_text("damaged")
    result = cli.run("push", exit_code=1)
    for name in damaged:
        assert f"data/images/{name} ({_oid(name)}): corrupt in the cache" in result.stderr
    assert f"{len(damaged) + 1} object(s) failed ({len(IMAGES) - len(damaged)} transferred" in result.stderr
    pushed = _remote_objects(local_remote)
    assert pushed == {_oid(n) for n in IMAGES if n not in damaged}, "only intact objects, and no manifest"


def _remote_objects(remote: Path) -> set[str]:
    """Every object on a local remote, loose or in a pack (read from the pack indexes)."""
    found = {oid for p in remote.rglob("*") if p.is_file() and (oid := relpath_to_oid(
        p.relative_to(remote).as_posix())) is not None}
    for idx in (remote / "packs").glob("*.idx") if (remote / "packs").is_dir() else []:
        found |= {r.oid for r in index_of(idx.with_suffix(".pack")).rows}
    return found


def test_pull_from_a_pack_with_a_corrupt_object_checks_out_the_rest(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    workspace.track({"data/images": IMAGES, "data/other": {"a.txt": "a\n"}})
    cli.run("push")
    workspace.commit("data and remote")
    bad = _oid("007.txt")
    pack = corrupt_packed(local_remote / "packs", bad)  # files and manifests: two pushes, two packs
    clone = workspace.clone()
    result = cli.run("pull", exit_code=1)
    assert f"data/images/007.txt ({bad})" in result.stderr
    assert f"corrupt in pack 'packs/{pack.name}' on remote 'store'" in result.stderr
    store = clone.project().store
    assert not store.exists(bad)
    assert not (clone.root / "data/images/007.txt").exists(), "a corrupt object reached the workspace"
    assert clone.read("data/other/a.txt") == "a\n", "an out with all its objects is checked out"
    assert all(store.is_intact(o) for o in store.iter_oids())
    assert not _leftovers(store.root)


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pipeline_engine.remote import batch
    seen = []
    limit = int(sys.argv[1])
    finish = batch.Batch.finish
    def dying(self, oid, exc):
        finish(self, oid, exc)
        seen.append(oid)
        if len(seen) == limit:
            os.kill(os.getpid(), signal.SIGKILL)  # as a user's kill -9 in the middle of the fetch
    batch.Batch.finish = dying
    from pipeline_engine.cli import main
    sys.argv = ["pipe", "pull"]
    main()
""")


@pytest.mark.parametrize("threshold", ["1048576", "0"], ids=["packed", "loose"])
def test_a_pull_killed_mid_fetch_leaves_no_temporary_file_that_counts_as_an_object(
    workspace: Workspace, cli: Cli, local_remote: Path, threshold: str
) -> None:
    cli.run("remote", "modify", "store", "pack_threshold", threshold)
    workspace.track({"data/images": IMAGES})
    cli.run("push")
    workspace.commit("data and remote")
    clone = workspace.clone()
    proc = subprocess.run([sys.executable, "-c", _KILLER, "10"], cwd=clone.root, capture_output=True, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = clone.project().store
    assert _leftovers(store.root), "the kill came mid-fetch: its downloads are still there"
    assert set(store.iter_oids()) <= {_oid(n) for n in IMAGES} | {o for o in store.iter_oids() if o.endswith(".dir")}
    assert all(store.is_intact(o) for o in store.iter_oids()), "only verified objects count"
    assert store.missing({_oid(n) for n in IMAGES}), "the unfinished downloads are not objects"
    assert not (clone.root / "data/images").exists()
    cli.run("pull")  # takes the project lock left by a killed process: sweeps its temporary files
    assert not _leftovers(store.root)
    assert all(clone.read(f"data/images/{n}") == text for n, text in IMAGES.items())
