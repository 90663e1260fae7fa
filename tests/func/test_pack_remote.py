"""Packed remotes through the commands: push, fetch, pull, status --cloud, push --verify and gc --cloud.

Small objects go into `<remote>/packs/<name>.pack` with `<name>.idx`; these tests look inside a
local directory remote and damage it the way a disk, a killed push or another tool would.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from pipeline_engine.remote.open import open_remote
from pipeline_engine.remote.pack import PackWriter
from tests.conftest import Cli, Workspace
from tests.packutil import corrupt_packed, index_of

IMAGES = {f"{i:02}.txt": f"image {i}\n" * (i + 1) for i in range(12)}


def _packs(store: Path, ext: str = ".pack") -> list[Path]:
    return sorted((store / "packs").glob(f"*{ext}"))


def _remote_oids(store: Path) -> set[str]:
    return set(open_remote("check", str(store), {}, base_dir=store).iter_oids())


def _pushed(workspace: Workspace, cli: Cli, tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    workspace.track({"data/images": files or IMAGES})
    store = workspace.add_remote(tmp_path / "remote-store")
    assert "13 transferred" in cli.run("push").stderr
    workspace.commit("data and remote")
    return store


def _image(name: str) -> str:
    return hash_bytes(IMAGES[name].encode())


def test_push_packs_small_files_and_a_clone_pulls_them(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    store = _pushed(workspace, cli, tmp_path)
    (pack,) = _packs(store)
    index = index_of(pack)
    assert sorted(r.oid for r in index.rows) == sorted(_image(n) for n in IMAGES)
    assert not [p for p in store.glob("??/*") if not p.name.endswith(".dir")], "no small file left loose"
    assert "in sync with remote 'store'" in cli.run("status", "--cloud", "--verify").stderr
    assert "0 transferred" in cli.run("push", "--verify").stderr
    clone = workspace.clone()
    cli.run("pull")
    for name, text in IMAGES.items():
        assert (clone.root / "data/images" / name).read_text() == text


def test_mixed_loose_and_packed_remote_serves_both(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    workspace.track({"data/old": {"a.txt": "old a\n", "b.txt": "old b\n"}})
    store = workspace.add_remote(tmp_path / "remote-store")
    cli.run("remote", "modify", "store", "pack_threshold", "0")
    cli.run("push")  # an existing remote, written loose
    assert not (store / "packs").exists()
    cli.run("remote", "modify", "store", "pack_threshold", "1048576")
    workspace.track({"data/new": IMAGES, "data/big.bin": "x" * 5000})
    cli.run("remote", "modify", "store", "pack_threshold", "4096")
    cli.run("push")
    assert len(_packs(store)) == 1 and (store / oid_to_relpath(hash_bytes(b"x" * 5000))).is_file()
    assert (store / oid_to_relpath(hash_bytes(b"old a\n"))).is_file()
    workspace.commit("mixed")
    assert "in sync" in cli.run("status", "-c", "--verify").stderr
    clone = workspace.clone()
    cli.run("pull")
    assert (clone.root / "data/old/a.txt").read_text() == "old a\n"
    assert (clone.root / "data/new/03.txt").read_text() == IMAGES["03.txt"]
    assert (clone.root / "data/big.bin").read_text() == "x" * 5000


def test_a_pack_without_an_index_is_invisible_then_removed_by_gc_once_old(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    workspace.track({"data/images": IMAGES})
    store = workspace.add_remote(tmp_path / "remote-store")
    # What a push killed between its pack and its index leaves: the pack alone.
    cache = workspace.project().store
    writer = PackWriter(tmp_path / "work")
    for oid in sorted(_image(n) for n in IMAGES):
        assert writer.add(oid, cache.path_of(oid)) is None
    index = writer.finish()
    (store / "packs").mkdir(parents=True)
    orphan = store / "packs" / f"{index.name}.pack"
    shutil.copyfile(writer.path, orphan)
    writer.abort()
    result = cli.run("status", "--cloud", "--exit-code", exit_code=1)
    assert "data/images  13 not pushed (of 13 objects)" in result.stdout
    workspace.commit("data")
    clone = workspace.clone()
    fetched = cli.run("fetch", exit_code=1)
    assert "is not on remote 'store'" in fetched.stderr and not any(clone.project().store.iter_oids())
    os.chdir(workspace.root)
    young = cli.run("gc", "-w", "-c", "-f")
    assert "kept 1 pack(s) without an index, younger than 1 hour" in young.stderr and orphan.exists()
    old = time.time() - 2 * 3600
    os.utime(orphan, (old, old))
    gone = cli.run("gc", "-w", "-c", "-f")
    assert "removed 1 pack(s) without an index, older than 1 hour" in gone.stderr and not orphan.exists()


def test_gc_repacks_a_mostly_dead_pack_keeping_every_live_object(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    store = _pushed(workspace, cli, tmp_path)
    (old_pack,) = _packs(store)
    keep = ["00.txt", "11.txt", "05.txt"]  # a small share of the pack's bytes
    for name in IMAGES:
        if name not in keep:
            (workspace.root / "data/images" / name).unlink()
    cli.run("add", "data/images")
    cli.run("push")
    workspace.commit("fewer images")
    dry = cli.run("gc", "-w", "-c", "--dry")
    assert "would repack 1" in dry.stderr and old_pack.exists()
    result = cli.run("gc", "-w", "-c", "-f")
    assert "repacked 1 (less than half used)" in result.stderr
    assert not old_pack.exists() and not old_pack.with_suffix(".idx").exists()
    live = {_image(n) for n in keep}
    dead = {_image(n) for n in IMAGES} - live
    on_remote = _remote_oids(store)
    assert live <= on_remote and not dead & on_remote
    clone = workspace.clone()
    cli.run("pull")
    assert sorted(p.name for p in (clone.root / "data/images").iterdir()) == sorted(keep)
    assert all((clone.root / "data/images" / n).read_text() == IMAGES[n] for n in keep)


def test_gc_deletes_a_pack_with_no_live_object_and_leaves_mostly_live_ones(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    store = _pushed(workspace, cli, tmp_path)
    (first,) = _packs(store)
    (workspace.root / "data/images/00.txt").unlink()  # the smallest: the pack stays more than half live
    cli.run("add", "data/images")
    workspace.track({"data/other": {"x.txt": "x\n", "y.txt": "y\n"}})
    cli.run("push")
    result = cli.run("gc", "-w", "-c", "-f")
    assert "1 unused object(s) stay in packs still more than half used" in result.stderr and first.exists()
    shutil.rmtree(workspace.root / "data/images")
    (workspace.root / "data/images.pipe").unlink()
    result = cli.run("gc", "-w", "-c", "-f")
    assert "deleted 1" in result.stderr and not first.exists() and not first.with_suffix(".idx").exists()
    assert hash_bytes(b"x\n") in _remote_oids(store)


def test_fetch_refuses_a_corrupt_object_in_a_pack_by_its_path_and_fetches_the_rest(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    store = _pushed(workspace, cli, tmp_path)
    bad = _image("04.txt")
    pack = corrupt_packed(store / "packs", bad)
    clone = workspace.clone()
    result = cli.run("fetch", exit_code=1)
    assert f"data/images/04.txt ({bad})" in result.stderr
    assert f"corrupt in pack 'packs/{pack.name}' on remote 'store'" in result.stderr
    store_now = clone.project().store
    assert not store_now.exists(bad)
    assert {o for o in store_now.iter_oids()} >= {_image(n) for n in IMAGES if n != "04.txt"}
    leftovers = [p for p in store_now.root.rglob("*") if p.is_file() and ".pipetmp" in p.name]
    assert not leftovers, "a refused object was left behind"


def test_fetch_reports_a_corrupt_index_by_path_and_fetches_the_loose_objects(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    store = _pushed(workspace, cli, tmp_path)
    workspace.track({"data/big.bin": "b" * 3000})
    cli.run("remote", "modify", "store", "pack_threshold", "2000")
    cli.run("push")
    workspace.commit("big")
    (idx,) = _packs(store, ".idx")
    data = bytearray(idx.read_bytes())
    data[60] ^= 0x01
    os.chmod(idx, 0o644)
    idx.write_bytes(bytes(data))
    clone = workspace.clone()
    result = cli.run("fetch", exit_code=1)
    assert "pack index 'remote 'store'" in result.stderr and f"packs/{idx.name}' is invalid" in result.stderr
    project = clone.project()
    assert project.store.exists(hash_bytes(b"b" * 3000)), "the loose object still came"
    assert not any(project.store.exists(_image(n)) for n in IMAGES)
    # push from the original sees the objects as absent and uploads them again, in a new pack
    os.chdir(workspace.root)
    assert "12 transferred" in cli.run("push", "--verify").stderr
    os.chdir(clone.root)
    cli.run("pull")
    assert (clone.root / "data/images/07.txt").read_text() == IMAGES["07.txt"]


def test_a_cached_index_whose_pack_is_gone_vouches_for_nothing(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    store = _pushed(workspace, cli, tmp_path)
    (pack,) = _packs(store)
    assert "in sync" in cli.run("status", "-c").stderr
    assert list((workspace.root / ".pipe/tmp/packs").rglob("*.idx")), "the index is kept locally"
    os.chmod(pack, 0o644)
    pack.unlink()
    result = cli.run("status", "-c", "--verify", "--exit-code", exit_code=1)
    assert "data/images  12 not pushed (of 13 objects)" in result.stdout
    assert "12 transferred" in cli.run("push", "--verify").stderr
    assert {_image(n) for n in IMAGES} <= _remote_oids(store)


class _Handler(http.server.SimpleHTTPRequestHandler):
    refuse_listings = False

    def list_directory(self, path: str | os.PathLike[str]) -> None:  # type: ignore[override]
        if self.refuse_listings:
            self.send_error(403, "listing refused")
            return None
        return super().list_directory(path)  # type: ignore[return-value]

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _served(directory: Path, *, refuse_listings: bool) -> Iterator[str]:
    handler = functools.partial(type("H", (_Handler,), {"refuse_listings": refuse_listings}), directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("layout", ["packed", "loose, listings refused"])
def test_a_read_only_http_remote_serves_a_pull(workspace: Workspace, cli: Cli, tmp_path: Path, layout: str) -> None:
    workspace.track({"data/images": IMAGES})
    store = workspace.add_remote(tmp_path / "remote-store")
    if layout != "packed":
        cli.run("remote", "modify", "store", "pack_threshold", "0")
    cli.run("push")
    assert bool(_packs(store)) == (layout == "packed")
    if layout != "packed":
        (store / "packs").mkdir()  # there, but its listing is refused (403): no packs, loose objects served
    with _served(store, refuse_listings=layout != "packed") as url:
        cli.run("remote", "add", "-d", "web", url)
        workspace.commit("data, remotes")
        clone = workspace.clone()
        cli.run("pull")
    assert all((clone.root / "data/images" / n).read_text() == t for n, t in IMAGES.items())


def test_a_push_over_a_killed_pushs_pack_of_the_same_objects_completes_it(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    store = _pushed(workspace, cli, tmp_path)
    (idx,) = _packs(store, ".idx")
    idx.unlink()  # as if a push had been killed after its pack: the same objects make the same pack
    assert "12 not pushed" in cli.run("status", "-c", "--verify", "--exit-code", exit_code=1).stdout
    assert "12 transferred" in cli.run("push", "--verify").stderr
    assert [p.name for p in _packs(store, ".idx")] == [idx.name]
    assert "in sync with remote 'store'" in cli.run("status", "-c", "--verify").stderr
