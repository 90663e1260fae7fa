"""cache.staging.OidIndex: which files of several trees hold an oid (the placing side of pull's overlap)."""

from __future__ import annotations

from pipeline_engine.cache.staging import OidIndex
from pipeline_engine.cache.tree import Tree, TreeEntry
from pipeline_engine.core.hashing import Oid

A, B, C = (Oid(c * 32) for c in "abc")
TWIN = Oid("a" * 16 + "f" * 16)  # same first 16 hex digits as A: the index's key, not the oid


def _tree(*pairs: tuple[str, str]) -> Tree:
    return Tree.from_entries(TreeEntry(path, Oid(oid), 1) for path, oid in pairs)


def test_every_file_holding_an_oid_is_found_in_every_tree_and_nothing_else() -> None:
    first = _tree(("x/1", A), ("x/2", B), ("y", A))
    second = _tree(("z", A), ("w", TWIN))
    index = OidIndex([first, second])
    assert {n: sorted(p) for n, p in index.find([A]).items()} == {0: [0, 2], 1: [1]}
    assert index.find([TWIN]) == {1: [0]}
    assert index.find([C]) == {}
    assert index.find([]) == {}


def test_an_index_of_no_files() -> None:
    assert OidIndex([Tree(())]).find([A]) == {}
    assert OidIndex([]).find([A]) == {}
