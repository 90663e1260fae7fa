"""A no-op `pipe status` answers "is it in the cache" from the hash memo, and still sees every change.

The memo remembers that a directory manifest and all its files were in the store, with a stamp of
the store directories holding them; every way an object leaves the store (gc, `pipe cache verify`
setting a corrupt one aside, a manual `rm`) must still make status say "not in cache".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from tests.conftest import Cli, Workspace

FILES = {"top.csv": "t\n", "sub": {f"{i:02}.csv": f"row {i}\n" for i in range(12)}, "sub/deeper": {"x.bin": "x"}}


def _age(path: Path) -> None:
    """Move `path`'s mtime a minute back: as any file or store directory not touched just now
    (the memo does not trust what changed within its racy window)."""
    then = os.stat(path).st_mtime_ns - 60 * 10**9
    os.utime(path, ns=(then, then), follow_symlinks=False)


def _settle(root: Path) -> None:
    for base in (root / "data", root / ".pipe/cache/objects"):
        for path in base.rglob("*"):
            _age(path)


def _tracked(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": FILES})
    cli.run("add", "data")
    _settle(workspace.root)
    assert "up to date" in cli.run("status").stderr  # remembers the tree and its completeness


class _Reads:
    """Counts manifest parses and store completeness checks."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.manifests = 0
        self.checks = 0
        parse, missing = Tree.from_bytes.__func__, ObjectStore.missing  # type: ignore[attr-defined]

        def counted_parse(cls: type[Tree], data: bytes, *, oid: str = "") -> Tree:
            self.manifests += 1
            return parse(cls, data, oid=oid)  # type: ignore[no-any-return]

        def counted_missing(store: ObjectStore, oids: object) -> set[str]:
            self.checks += 1
            return missing(store, oids)  # type: ignore[arg-type]

        monkeypatch.setattr(Tree, "from_bytes", classmethod(counted_parse))
        monkeypatch.setattr(ObjectStore, "missing", counted_missing)


def test_noop_status_reads_no_manifest_and_checks_no_completeness(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tracked(workspace, cli)
    reads = _Reads(monkeypatch)
    assert "up to date" in cli.run("status").stderr
    assert (reads.manifests, reads.checks) == (0, 0)
    (workspace.root / "data/sub/03.csv").write_text("changed\n")
    assert "1 modified" in cli.run("status").stdout
    # The changed directory's rows are read from the manifest by bisection, not by parsing it
    # whole; its files are known present.
    assert (reads.manifests, reads.checks) == (0, 0)


@pytest.mark.parametrize("change", ["edited", "added", "removed"])
def test_status_after_the_memo_still_sees_a_change_in_a_nested_directory(
    workspace: Workspace, cli: Cli, change: str
) -> None:
    _tracked(workspace, cli)
    target = workspace.root / "data/sub/deeper/x.bin"
    if change == "edited":
        target.write_text("y")
    elif change == "added":
        workspace.write({"data": {"sub": {"deeper": {"new.bin": "n"}}}})
    else:
        target.unlink()
    verbose = cli.run("status", "-v").stdout
    path = "data/sub/deeper/new.bin" if change == "added" else "data/sub/deeper/x.bin"
    assert f"{change.replace('edited', 'modified').replace('removed', 'deleted')}: {path}" in verbose
    assert "not in cache" not in verbose


def _manifest(workspace: Workspace) -> Path:
    store = workspace.project().store
    return store.path_of(next(o for o in store.iter_oids() if o.endswith(".dir")))


def test_status_says_not_in_cache_after_an_object_is_deleted_by_hand(workspace: Workspace, cli: Cli) -> None:
    _tracked(workspace, cli)
    victim = min(p for p in (workspace.root / ".pipe/cache/objects").rglob("*") if p.is_file()
                 and not p.name.endswith(".dir"))
    victim.unlink()
    assert "data  not in cache" in cli.run("status").stdout


def test_status_says_not_in_cache_after_gc_removed_the_objects(workspace: Workspace, cli: Cli) -> None:
    _tracked(workspace, cli)
    pointer = workspace.root / "data.pipe"
    kept = pointer.read_bytes()
    pointer.unlink()  # as on a branch that does not track it
    assert "removed 0 object(s)" not in cli.run("gc", "--workspace", "-f").stderr
    pointer.write_bytes(kept)
    assert "data  not in cache" in cli.run("status").stdout


@pytest.mark.parametrize("which", ["file", "manifest"])
def test_status_says_not_in_cache_after_verify_set_a_corrupt_object_aside(
    workspace: Workspace, cli: Cli, which: str
) -> None:
    _tracked(workspace, cli)
    store = workspace.project().store
    manifest = _manifest(workspace)
    if which == "manifest":
        victim = manifest
    else:
        victim = store.path_of(Tree.from_bytes(manifest.read_bytes()).entry(0).oid)
    os.chmod(victim, 0o644)
    victim.write_bytes(b"bit rot")
    cli.run("cache", "verify", exit_code=1)
    assert not victim.exists()
    assert "data  not in cache" in cli.run("status").stdout


def test_a_manifest_corrupted_in_place_is_not_trusted_from_the_memo(workspace: Workspace, cli: Cli) -> None:
    _tracked(workspace, cli)
    manifest = _manifest(workspace)
    os.chmod(manifest, 0o644)
    manifest.write_bytes(b"[]")
    assert "data  corrupt in cache" in cli.run("status").stdout
