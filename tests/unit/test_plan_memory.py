"""A transfer plan of a big directory stays small: no workspace path string per file, one set of oids.

At a million files a path per file (and a second set of oids per directory) cost ~1 GB in push and
pull; these tests bound tracemalloc's peak (bytes allocated, not time) at 50,000 files.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.record import PathRecord
from pipeline_engine.index.objects import plan_objects

_FILES = 50_000


def _store_with_dir(tmp_path: Path) -> tuple[ObjectStore, PathRecord, list[str]]:
    store = ObjectStore(tmp_path / "cache")
    oids = [hash_bytes(f"file {i}\n".encode()) for i in range(_FILES)]
    paths = [f"part{i // 1000:03d}/file-{i:06d}.csv" for i in range(_FILES)]
    tree = Tree.from_columns(paths, oids, [8] * _FILES, [False] * _FILES)
    oid = store.put_bytes(tree.to_bytes(), suffix=".dir")
    return store, PathRecord("data/big", oid, 8 * _FILES, _FILES), oids


def test_plan_of_a_50000_file_directory_keeps_no_path_per_file(tmp_path: Path) -> None:
    store, out, oids = _store_with_dir(tmp_path)
    tracemalloc.start()
    try:
        plan = plan_objects(store, [out])
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert set(plan.files) == set(oids) and len(plan.dirs) == 1
    # One oid string (~81 B) and one dict slot (~40-80 B) per file; the old plan also held a
    # path string (~110 B) per file and a frozenset of oid copies (~120 B): 16 MB held, 23 MB peak at 50,000.
    assert held < 13_500_000, f"the plan holds {held / 1e6:.1f} MB for {_FILES} files"
    assert peak < 19_000_000, f"planning peaked at {peak / 1e6:.1f} MB for {_FILES} files"


def test_failures_are_still_named_by_workspace_path(tmp_path: Path) -> None:
    store, out, oids = _store_with_dir(tmp_path)
    single = PathRecord("model.bin", hash_bytes(b"model"), 5)
    plan = plan_objects(store, [single, out, PathRecord("data/copy", out.oid, out.size, out.nfiles)])
    paths = plan.paths_of([oids[0], oids[-1], single.oid, "f" * 32])
    assert paths == {
        oids[0]: "data/big/part000/file-000000.csv",
        oids[-1]: f"data/big/part049/file-0{_FILES - 1}.csv",
        single.oid: "model.bin",
        "f" * 32: "",
    }
