"""The compact tree and its streaming manifest codec: the same bytes, oids and refusals as plain json."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline_engine.cache.tree import Tree, TreeEntry, diff_trees
from pipeline_engine.core.hashing import DIR_SUFFIX, hash_bytes
from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.errors import CacheError, UnsafePathError


def _old_bytes(entries: list[TreeEntry]) -> bytes:
    """The manifest bytes as pipe wrote them before the compact tree (json.dumps of a list of dicts)."""
    rows = [{"hash": e.oid, "isexec": e.isexec, "relpath": e.relpath, "size": e.size} for e in entries]
    return json.dumps(rows, sort_keys=True, separators=(",", ":")).encode("utf-8")


# Any text a file name may hold, surrogate escapes of undecodable bytes included; the path gate
# decides what a manifest may name, so the codec must carry every one of them exactly.
_NAME = st.text(st.characters(blacklist_characters="/\x00"), min_size=1, max_size=12)
_PATH = st.lists(_NAME, min_size=1, max_size=3).map("/".join)
_ENTRY = st.builds(
    TreeEntry, _PATH, st.binary(min_size=1, max_size=8).map(hash_bytes), st.integers(0, 2**63 - 1), st.booleans()
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_ENTRY, max_size=30))
def test_bytes_and_oid_are_those_of_the_json_form(entries: list[TreeEntry]) -> None:
    tree = Tree.from_entries(entries)
    old = _old_bytes(sorted(entries, key=lambda e: e.relpath))
    assert tree.to_bytes() == old
    assert tree.oid == hash_bytes(old) + DIR_SUFFIX
    assert b"".join(tree.iter_bytes()) == old
    assert list(tree.entries) == sorted(entries, key=lambda e: e.relpath)


@settings(max_examples=150, deadline=None)
@given(st.lists(_ENTRY, max_size=30, unique_by=lambda e: e.relpath))
@example([TreeEntry("0/.", hash_bytes(b"\x00"), 0)])  # normalised to `0` (found by a CI run)
def test_parse_round_trips_or_refuses_as_the_json_parser(entries: list[TreeEntry]) -> None:
    data = _old_bytes(sorted(entries, key=lambda e: e.relpath))
    try:
        expected: Tree | str = _json_only(data)
    except CacheError as exc:
        expected = str(exc)
    try:
        got: Tree | str = Tree.from_bytes(data, oid="x")
    except CacheError as exc:
        got = str(exc)
    assert got == expected
    if isinstance(got, Tree):
        # Only a path the gate normalises (`a//b`, `./a`, `a/.`) is written back differently.
        assert got.to_bytes() == data or any(_normalised(e.relpath) for e in entries)


def _normalised(path: str) -> bool:
    try:
        return check_relpath(path, source="test") != path
    except UnsafePathError:
        return False


def _json_only(data: bytes) -> Tree:
    from pipeline_engine.cache import tree as tree_module

    return tree_module._parse_json(data, "directory manifest 'x'")


def test_manifests_written_before_keep_their_oids() -> None:
    # Bytes as the json.dumps writer produced them, with escapes of every kind in the paths.
    entries = [
        TreeEntry('a "quoted"\\name', hash_bytes(b"1"), 1, False),
        TreeEntry("caf\u00e9/\U0001f600.txt", hash_bytes(b"2"), 22, True),
        TreeEntry("back\\slash", hash_bytes(b"3"), 0, False),
        TreeEntry("x\udcff", hash_bytes(b"4"), 2**40, False),
    ]
    old = _old_bytes(sorted(entries, key=lambda e: e.relpath))
    tree = Tree.from_bytes(old, oid="m")
    assert tree.to_bytes() == old
    assert tree.oid == hash_bytes(old) + DIR_SUFFIX
    assert Tree().to_bytes() == b"[]" == _old_bytes([])
    controls = [TreeEntry("tab\there\x7f\x01", hash_bytes(b"5"), 3)]
    assert Tree.from_entries(controls).to_bytes() == _old_bytes(controls)  # written as json did; refused on reading


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[{"hash":"%s","isexec":false,"relpath":"../x","size":1}]', "leaves the project"),
        (b'[{"hash":"%s","isexec":false,"relpath":"/etc/passwd","size":1}]', "must be relative"),
        (b'[{"hash":"%s","isexec":false,"relpath":".git/config","size":1}]', "inside '.git'"),
        (b'[{"hash":"%s","isexec":false,"relpath":"a\\nb","size":1}]', "control character"),
        (b'[{"hash":"%s","isexec":false,"relpath":"a","size":1},'
         b'{"hash":"%s","isexec":false,"relpath":"a","size":1}]', "listed twice"),
        (b'[{"hash":"%s","isexec":false,"relpath":"a","size":1},'
         b'{"hash":"%s","isexec":false,"relpath":"a/b","size":1}]', "both a file and a directory"),
        (b'[{"hash":"%s","isexec":false,"relpath":"a","size":9223372036854775808}]', "integer 'size'"),
        (b'[{"hash":"%s","isexec":false,"relpath":"a","size":1}', "not valid JSON"),
        (b'[{"hash":"%s.dir","isexec":false,"relpath":"a","size":1}]', "no valid file oid"),
    ],
)
def test_hostile_manifests_are_refused_as_before(data: bytes, message: str) -> None:
    oid = hash_bytes(b"x").encode()
    data = data.replace(b"%s", oid)
    with pytest.raises(CacheError) as fast:
        Tree.from_bytes(data, oid="m")
    with pytest.raises(CacheError) as plain:
        _json_only(data.replace(b"'x'", b"'m'"))
    assert message in str(fast.value)
    assert str(fast.value).replace("'m'", "'x'") == str(plain.value)


def test_by_path_and_diff_agree_with_dicts() -> None:
    old = Tree.from_entries(TreeEntry(p, hash_bytes(p.encode()), 1) for p in ("a", "b/c", "d", "e"))
    new = Tree.from_entries(
        [TreeEntry("a", hash_bytes(b"a"), 1), TreeEntry("b/c", hash_bytes(b"changed"), 1),
         TreeEntry("c", hash_bytes(b"c"), 1), TreeEntry("e", hash_bytes(b"e"), 1, True)]
    )
    merged = diff_trees(old.by_path(), new.by_path())
    plain = diff_trees(dict(old.by_path()), dict(new.by_path()))
    assert merged == plain
    assert (merged.added, merged.modified, merged.deleted) == (("c",), ("b/c", "e"), ("d",))
    assert new.by_path()["b/c"] == TreeEntry("b/c", hash_bytes(b"changed"), 1)
    assert "zz" not in new.by_path() and len(new.by_path()) == 4


def test_a_50k_file_manifest_is_parsed_in_bounded_memory() -> None:
    n = 50_000
    oid = hash_bytes(b"content")
    paths = [f"d{i // 1000:03d}/file-{i:06d}.jpg" for i in range(n)]
    tree = Tree.from_columns(paths, [oid] * n, [1234] * n, [False] * n)
    data = tree.to_bytes()
    assert sum(len(c) for c in tree.iter_bytes()) == len(data)
    tracemalloc.start()
    try:
        parsed = Tree.from_bytes(data, oid="m")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert parsed == tree
    # Through json (a dict per file, then a TreeEntry per file) the peak was about 24 MB here;
    # columns cost about 110 bytes a file.
    assert peak < 16 * 2**20


def test_under_selects_the_run_of_a_sub_directory() -> None:
    paths = ["a", "b-c", "b.x", "b/c", "b/d/e", "b0", "ba/x"]
    tree = Tree.from_entries(TreeEntry(p, hash_bytes(p.encode()), 1) for p in paths)
    assert [e.relpath for e in tree.under("b")] == ["b/c", "b/d/e"]
    assert [e.relpath for e in tree.under("b/d")] == ["b/d/e"]
    assert tree.under("zz") == []
    unsorted = Tree(reversed(list(tree.entries)))  # a manifest listing its entries out of order
    assert [e.relpath for e in unsorted.under("b")] == ["b/d/e", "b/c"]


def test_rows_are_the_entries_as_plain_tuples_in_every_slice() -> None:
    entries = [TreeEntry(f"d{i % 3}/f{i:03}", f"{i:032x}", i, i % 4 == 0) for i in range(50)]
    tree = Tree.from_entries(entries)
    rows = tree.rows()
    plain = [(e.relpath, e.oid, e.isexec) for e in tree.entries]
    assert len(rows) == 50 and list(rows) == plain
    for s in (slice(None), slice(3, 17), slice(40, 99), slice(None, None, 3), slice(None, None, -2), slice(7, 7)):
        assert list(rows[s]) == plain[s], s
    assert rows[-1] == plain[-1] and rows[0] == plain[0]
    with pytest.raises(IndexError):
        rows[50]
