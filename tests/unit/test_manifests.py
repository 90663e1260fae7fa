"""cache.manifests: a large manifest is parsed once and read back from the memo while its object
is unchanged; a changed object, a tampered or foreign record, or a small manifest is parsed from
its bytes, as if nothing were remembered."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from pipeline_engine.cache import manifests
from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.errors import CorruptObjectError, ObjectNotFoundError


def _stored(tmp_path: Path, n: int) -> tuple[ObjectStore, Tree]:
    store = ObjectStore(tmp_path / "cache")
    tree = Tree.from_columns(
        [f"d{i % 7}/f{i:05}" for i in sorted(range(n), key=lambda i: f"d{i % 7}/f{i:05}")],
        [hash_bytes(str(i).encode()) for i in range(n)], range(n), [i % 3 == 0 for i in range(n)],
    )
    store.put_bytes(tree.to_bytes(), suffix=".dir")
    obj = store.path_of(tree.oid)
    old = obj.stat().st_mtime - 60  # settled: not in the racy window
    os.utime(obj, (old, old))
    return store, tree


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    real = Tree.from_bytes.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Tree], data: bytes, *, oid: str = "") -> Tree:
        parsed.append(oid)
        return real(cls, data, oid=oid)  # type: ignore[no-any-return]

    monkeypatch.setattr(Tree, "from_bytes", classmethod(counting))
    return parsed


def test_a_large_manifest_is_parsed_once_then_read_back_equal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, tree = _stored(tmp_path, 1500)
    memo = HashMemo(tmp_path / "memo.sqlite")
    parsed = _parses(monkeypatch)
    first = tree_of(store, tree.oid, memo)
    again = tree_of(store, tree.oid, memo)
    assert parsed == [tree.oid]
    assert first == tree and again == tree and again.oid == tree.oid


def test_an_object_changed_since_is_read_again_and_refused(tmp_path: Path) -> None:
    store, tree = _stored(tmp_path, 1500)
    memo = HashMemo(tmp_path / "memo.sqlite")
    tree_of(store, tree.oid, memo)
    obj = store.path_of(tree.oid)
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:  # same inode and size: only the bytes and the mtime differ
        f.seek(40)
        f.write(b"0")
    with pytest.raises(CorruptObjectError):
        tree_of(store, tree.oid, memo)


def test_a_record_with_an_unsafe_path_is_ignored_and_the_manifest_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, tree = _stored(tmp_path, 1500)
    memo = HashMemo(tmp_path / "memo.sqlite")
    tree_of(store, tree.oid, memo)
    with sqlite3.connect(tmp_path / "memo.sqlite") as db:  # a record as a hostile clone could carry it
        (paths,) = db.execute("SELECT paths FROM manifests").fetchone()
        db.execute("UPDATE manifests SET paths = ?", (b"../../escape" + paths[paths.index(b"\n"):],))
    db.close()
    parsed = _parses(monkeypatch)
    got = tree_of(store, tree.oid, memo)
    assert parsed == [tree.oid] and got == tree and "../../escape" not in got.paths()


def test_small_manifests_are_not_remembered_and_only_the_newest_large_ones_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifests, "_KEEP", 2)
    memo = HashMemo(tmp_path / "memo.sqlite")
    small_store, small = _stored(tmp_path / "small", 10)
    tree_of(small_store, small.oid, memo)
    stores = [_stored(tmp_path / f"big{k}", 1000 + k) for k in range(3)]
    for store, tree in stores:
        tree_of(store, tree.oid, memo)
    kept = {r[0] for r in memo.db.execute("SELECT oid FROM manifests")}
    assert kept == {stores[1][1].oid, stores[2][1].oid}


def test_a_manifest_missing_from_the_store_is_reported_as_such(tmp_path: Path) -> None:
    store, tree = _stored(tmp_path, 1500)
    memo = HashMemo(tmp_path / "memo.sqlite")
    tree_of(store, tree.oid, memo)
    os.unlink(store.path_of(tree.oid))
    with pytest.raises(ObjectNotFoundError):
        tree_of(store, tree.oid, memo)


def test_remembered_manifests_hold_a_bounded_number_of_entries_the_newest_always_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifests, "_KEEP_ENTRIES", 2500)
    memo = HashMemo(tmp_path / "memo.sqlite")
    stores = [_stored(tmp_path / f"big{k}", n) for k, n in enumerate((1000, 1200, 1100, 3000))]
    kept = []
    for store, tree in stores:
        tree_of(store, tree.oid, memo)
        kept.append({r[0] for r in memo.db.execute("SELECT oid FROM manifests")})
    oids = [t.oid for _, t in stores]
    assert kept == [{oids[0]}, {oids[0], oids[1]}, {oids[1], oids[2]}, {oids[3]}]
