"""Scanning a directory streams: the walk comes in path order, memo hits are merged, not looked up one by one."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.scan import scan, scan_tree
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.fsutil import walk_files
from pipeline_engine.core.hashing import hash_bytes

_NAME = st.sampled_from(["a", "a-b", "a.b", "a0", "b", "é", "a b", "A", "~", "a_"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(_NAME, min_size=1, max_size=3), min_size=1, max_size=12))
def test_walk_yields_paths_in_sorted_order(tmp_path_factory: object, layouts: list[list[str]]) -> None:
    root: Path = tmp_path_factory.mktemp("w")  # type: ignore[attr-defined]
    for parts in layouts:
        target = root.joinpath(*parts)
        if any(p.is_file() for p in target.parents) or target.is_dir():
            continue  # a file where a directory is wanted (or the reverse): not this layout
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x")
    walked = [rel for rel, _ in walk_files(root)]
    assert walked == sorted(walked)
    assert set(walked) == {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _old(path: Path) -> None:
    then = os.stat(path).st_mtime_ns - 60 * 10**9
    os.utime(path, ns=(then, then))


def test_a_changed_directory_known_to_the_memo_still_comes_with_its_tree(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (tmp_path / "d" / name).write_text(name)
        _old(tmp_path / "d" / name)
    memo = HashMemo(tmp_path / "memo.sqlite")
    first = scan(tmp_path, "d", memo)
    assert first.tree is not None and [e.relpath for e in first.tree.entries] == ["a", "b", "sub/c"]
    (tmp_path / "d" / "b").write_text("changed")
    _old(tmp_path / "d" / "b")
    changed = scan(tmp_path, "d", memo)
    again = scan(tmp_path, "d", memo, unless=first.oid)  # the memo knows the new oid: no hashing needed
    assert again.oid == changed.oid != first.oid
    assert again.tree is not None and again.tree.by_path()["b"].oid == hash_bytes(b"changed")
    assert scan(tmp_path, "d", memo, unless=changed.oid).tree is None  # unchanged since: a memo hit
    assert scan_tree(tmp_path, "d", memo) == again.tree


def test_ingest_stores_each_new_file_and_reports_what_it_added(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for i in range(100):
        (tmp_path / "d" / f"{i:03}").write_text(str(i % 10))  # ten distinct contents
    store = ObjectStore(tmp_path / "cache")
    memo = HashMemo(tmp_path / "memo.sqlite")
    scanned = scan(tmp_path, "d", memo, store=store, ingest=True)
    assert scanned.fresh == {hash_bytes(str(i).encode()) for i in range(10)}
    assert set(store.iter_oids()) == scanned.fresh
    assert all(store.is_intact(o) for o in scanned.fresh)
    leftovers = [p for p in (tmp_path / "cache").rglob(".pipetmp-*")]
    assert leftovers == []
    assert scan(tmp_path, "d", memo, store=store, ingest=True).fresh == frozenset()  # nothing new
