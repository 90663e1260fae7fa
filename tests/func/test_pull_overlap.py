"""`pipe pull` checks new directories out while the fetch runs, and never shows half an out.

A directory out whose path does not exist yet is placed chunk by chunk into a temporary directory
beside it as its objects arrive, then renamed into place; an out with a missing or corrupt object
is never in the workspace (nor its temporary directory), the other outs are. The checks fetch made
are remembered: the pull's own placing and a later hardlink checkout read no object again, and
the next status hashes nothing.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_engine.cache import memo as memo_module
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath, relpath_to_oid
from pipeline_engine.index import download
from pipeline_engine.remote.remote import Remote
from tests.cacheutil import count_opens, counting_hashes
from tests.conftest import Cli, Workspace
from tests.packutil import corrupt_packed

IMAGES = {f"{i:03}.txt": f"image {i}\n" * (i + 1) for i in range(40)}
IMAGES["dup.txt"] = IMAGES["005.txt"]  # one object at two paths: both are placed
NESTED = {"a": {"b": {"c.txt": "deep\n"}}, "x.bin": "x" * 3000}


def _oid(text: str) -> str:
    return hash_bytes(text.encode())


def _temps(root: Path) -> list[Path]:
    """Temporary files or directories anywhere in the project (the cache included)."""
    return [p for p in root.rglob("*") if ".pipetmp" in p.name]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetch 4 objects at a time, so a 41-file directory arrives in many chunks."""
    monkeypatch.setattr(download, "_FETCH_CHUNK", 4)


@pytest.fixture
def trusted_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """No racy window: every record the pull writes is kept as trusted, so what the next
    command re-reads is what the pull did not record (not what it wrote a moment ago)."""
    monkeypatch.setattr(memo_module, "_RACY_NS", 0)


def _pushed_clone(workspace: Workspace, cli: Cli, files: dict[str, Any]) -> Workspace:
    workspace.track(files)
    cli.run("push")
    workspace.commit("data and remote")
    return workspace.clone()


def _assert_all(clone: Workspace, files: dict[str, str], base: str) -> None:
    for name, text in files.items():
        assert clone.read(f"{base}/{name}") == text, f"{base}/{name}"


def test_files_of_a_new_directory_are_placed_while_later_chunks_download(
    workspace: Workspace, cli: Cli, local_remote: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None
) -> None:
    clone = _pushed_clone(workspace, cli, {"data/images": IMAGES})
    seen: list[tuple[int, bool]] = []  # (files placed in the temporary directory, out visible) per chunk
    real_get_many = Remote.get_many

    def watching(self: Remote, items: Any, **kwargs: Any) -> Any:
        if len(seen) >= 3:  # a few chunks in: the first ones' files appear in the temporary directory
            deadline = time.monotonic() + 30
            while not _placed(clone.root / "data") and time.monotonic() < deadline:
                time.sleep(0.01)
        seen.append((_placed(clone.root / "data"), (clone.root / "data/images").exists()))
        return real_get_many(self, items, **kwargs)

    monkeypatch.setattr(Remote, "get_many", watching)
    (clone.root / "data/.gitignore").unlink()  # as after a 'git rm': checkout ignores its out again
    cli.run("pull")
    assert len(seen) > 5, "the files came in several chunks"
    assert any(placed for placed, _ in seen), "no file was placed before the last chunk was fetched"
    assert not any(visible for _, visible in seen), "the out was visible before all its files were there"
    _assert_all(clone, IMAGES, "data/images")
    assert not _temps(clone.root)
    assert "/images" in clone.read("data/.gitignore").split()


def _placed(parent: Path) -> int:
    return sum(len(files) for d in parent.glob(".pipetmp-*") for _, _, files in os.walk(d)) if parent.is_dir() else 0


def test_an_out_with_a_corrupt_packed_and_a_missing_loose_object_never_appears(
    workspace: Workspace, cli: Cli, local_remote: Path, small_chunks: None
) -> None:
    first = dict(list(IMAGES.items())[:30])
    cli.run("remote", "modify", "store", "pack_threshold", "0")  # these go up loose
    workspace.track({"data/images": first, "data/other": NESTED})
    cli.run("push")
    cli.run("remote", "modify", "store", "pack_threshold", "1048576")  # the new ones packed
    workspace.track({"data/images": IMAGES})
    cli.run("push")
    workspace.commit("data and remote")
    corrupt, missing = _oid(IMAGES["035.txt"]), _oid(IMAGES["012.txt"])
    pack = corrupt_packed(local_remote / "packs", corrupt)
    os.unlink(local_remote / oid_to_relpath(missing))
    clone = workspace.clone()
    result = cli.run("pull", exit_code=1)
    assert f"data/images/035.txt ({corrupt})" in result.stderr
    assert f"corrupt in pack 'packs/{pack.name}'" in result.stderr
    assert f"data/images/012.txt ({missing})" in result.stderr
    assert not (clone.root / "data/images").exists(), "half an out reached the workspace"
    _assert_all(clone, {"a/b/c.txt": "deep\n", "x.bin": "x" * 3000}, "data/other")
    assert not _temps(clone.root), "a temporary directory or download was left behind"
    store = clone.project().store
    assert not store.exists(corrupt) and not store.exists(missing)
    assert all(store.is_intact(o) for o in store.iter_oids())


def _stage_out_without_parents(workspace: Workspace, cli: Cli) -> Workspace:
    """A stage out `build/er/images` whose parents the clone lacks (git ignores all of `build/`)."""
    workspace.stage("build", "mkdir -p build/er/images && echo one > build/er/images/1.txt && "
                    "echo two > build/er/images/2.txt", outs=["build/er/images"])
    cli.run("repro")
    workspace.track({"top": NESTED})
    cli.run("push")
    (workspace.root / "build/er/.gitignore").unlink()
    with open(workspace.root / ".gitignore", "a") as f:
        f.write("/build/\n")
    workspace.commit("stage, data and remote")
    return workspace.clone()


def test_an_out_under_missing_parents_that_fails_creates_no_parent(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    cli.run("remote", "modify", "store", "pack_threshold", "0")
    clone = _stage_out_without_parents(workspace, cli)
    assert not (clone.root / "build").exists()
    os.unlink(local_remote / oid_to_relpath(_oid("two\n")))
    result = cli.run("pull", exit_code=1)
    assert f"build/er/images/2.txt ({_oid('two' + chr(10))})" in result.stderr
    assert not (clone.root / "build").exists(), "a parent of an out that failed was created"
    assert clone.read("top/a/b/c.txt") == "deep\n"
    assert not _temps(clone.root)


def test_an_out_under_missing_parents_is_placed_and_ignored(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    clone = _stage_out_without_parents(workspace, cli)
    cli.run("pull")
    assert clone.read("build/er/images/1.txt") == "one\n" and clone.read("build/er/images/2.txt") == "two\n"
    assert clone.read("build/er/.gitignore").split() == ["/images"]
    assert not _temps(clone.root)


def test_two_new_directories_with_the_same_content_are_both_placed(
    workspace: Workspace, cli: Cli, local_remote: Path, small_chunks: None
) -> None:
    clone = _pushed_clone(workspace, cli, {"data/one": IMAGES, "data/two": IMAGES})
    cli.run("pull")
    _assert_all(clone, IMAGES, "data/one")
    _assert_all(clone, IMAGES, "data/two")
    assert not _temps(clone.root)


def test_an_empty_directory_out_is_placed(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    clone = _pushed_clone(workspace, cli, {"data/empty": {}, "data/images": IMAGES})
    cli.run("pull")
    assert (clone.root / "data/empty").is_dir() and not any((clone.root / "data/empty").iterdir())
    _assert_all(clone, IMAGES, "data/images")
    assert not _temps(clone.root)


def _is_file_object(path: str) -> bool:
    oid = relpath_to_oid("/".join(path.split("/")[-2:]))
    return oid is not None and not oid.endswith(".dir")


@pytest.mark.parametrize("cache_type", ["copy", "hardlink", "symlink", "reflink,copy"])
def test_pull_with_each_link_type_then_status_is_clean_and_hashes_nothing(
    workspace: Workspace, cli: Cli, local_remote: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None,
    trusted_now: None, cache_type: str,
) -> None:
    files = {**IMAGES, "run.sh": "#!/bin/sh\necho hi\n"}
    workspace.write({"data/images": files})
    os.chmod(workspace.root / "data/images/run.sh", 0o755)
    clone = _pushed_clone(workspace, cli, {"data/images": files})
    cli.run("config", "cache.type", cache_type)
    store = clone.project().store
    with pytest.MonkeyPatch.context() as mp:
        opens = count_opens(mp, store.root, _is_file_object)
        cli.run("pull")
    if cache_type in ("hardlink", "symlink"):  # an executable is copied (a link would share the object's mode)
        copied = os.fspath(store.path_of(_oid(files["run.sh"])))
        read = sorted(set(opens) - {copied})
        assert not read, f"placing read {len(read)} objects the fetch had just verified, e.g. {read[:2]}"
    _assert_all(clone, files, "data/images")
    image = clone.root / "data/images/001.txt"
    obj = store.path_of(_oid(IMAGES["001.txt"]))
    if cache_type == "hardlink":
        assert os.stat(image).st_ino == os.stat(obj).st_ino
    elif cache_type == "symlink":
        assert image.is_symlink() and Path(os.readlink(image)) == obj
    else:
        assert not image.is_symlink() and os.stat(image).st_ino != os.stat(obj).st_ino
    if cache_type in ("hardlink", "symlink"):
        assert not os.stat(image).st_mode & stat.S_IWUSR, "a linked object must stay read-only"
    assert os.stat(clone.root / "data/images/run.sh").st_mode & stat.S_IXUSR
    with counting_hashes(clone.root, monkeypatch) as hashed:
        result = cli.run("status")
    assert "up to date" in result.stderr, result.stderr
    assert hashed.paths == [], "status after pull re-hashed files the pull had just written"


@pytest.mark.parametrize("cache_type", ["copy", "hardlink"])
def test_status_right_after_a_pull_hashes_nothing(
    workspace: Workspace, cli: Cli, local_remote: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None,
    cache_type: str,
) -> None:
    """With the memo's real racy window: the files placed last (moments before the pull ends) count too."""
    clone = _pushed_clone(workspace, cli, {"data/images": IMAGES})
    cli.run("config", "cache.type", cache_type)
    cli.run("pull")
    with counting_hashes(clone.root, monkeypatch) as hashed:
        assert "up to date" in cli.run("status").stderr
    assert hashed.paths == [], f"status after pull re-hashed {len(hashed.paths)} files, e.g. {hashed.paths[:3]}"


def test_a_hardlink_checkout_after_fetch_reads_no_object(
    workspace: Workspace, cli: Cli, local_remote: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None,
    trusted_now: None,
) -> None:
    clone = _pushed_clone(workspace, cli, {"data/images": IMAGES})
    cli.run("config", "cache.type", "hardlink")
    cli.run("fetch")
    with pytest.MonkeyPatch.context() as mp:
        opens = count_opens(mp, clone.project().store.root, _is_file_object)
        cli.run("checkout")
    assert not opens, f"checkout read {len(opens)} objects that fetch had verified, e.g. {sorted(opens)[:2]}"
    _assert_all(clone, IMAGES, "data/images")


def test_an_existing_out_is_updated_after_the_fetch_as_before(
    workspace: Workspace, cli: Cli, local_remote: Path, small_chunks: None
) -> None:
    clone = _pushed_clone(workspace, cli, {"data/images": IMAGES})
    cli.run("pull")
    (clone.root / "data/images/mine.txt").write_text("not tracked\n")
    os.chdir(workspace.root)
    changed = {**IMAGES, "000.txt": "changed\n", "new.txt": "new\n"}
    del changed["039.txt"]
    (workspace.root / "data/images/039.txt").unlink()
    workspace.track({"data/images": changed})
    cli.run("push")
    workspace.commit("v2")
    os.chdir(clone.root)
    clone.git("pull", "-q")
    result = cli.run("pull")
    _assert_all(clone, changed, "data/images")
    assert clone.read("data/images/mine.txt") == "not tracked\n", "an untracked file in the out was kept"
    assert clone.read("data/images/039.txt") == IMAGES["039.txt"], "kept, as checkout keeps extra files"
    assert "2 file(s) written" in result.stderr, "only what changed was written"
    assert not _temps(clone.root)


def test_an_existing_out_with_uncached_changes_is_refused_and_kept(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    clone = _pushed_clone(workspace, cli, {"data/images": IMAGES, "data/other": NESTED})
    (clone.root / "data/images").mkdir(parents=True)
    (clone.root / "data/images/000.txt").write_text("my own work\n")
    result = cli.run("pull", exit_code=1)
    assert "data/images" in result.stderr and "not in the cache" in result.stderr
    assert clone.read("data/images/000.txt") == "my own work\n"
    assert clone.read("data/other/a/b/c.txt") == "deep\n"


def test_a_pull_with_every_object_cached_places_from_the_cache(
    workspace: Workspace, cli: Cli, local_remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = _pushed_clone(workspace, cli, {"data/images": IMAGES})
    cli.run("fetch")
    result = cli.run("pull")
    assert "0 transferred" in result.stderr or "transferred" not in result.stderr
    _assert_all(clone, IMAGES, "data/images")
    assert not _temps(clone.root)


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    """The placing thread ends with the pull (none is left running between tests)."""
    import threading

    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("pipe-place")]
