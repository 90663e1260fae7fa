"""Reading one directory's entries out of a manifest's bytes by bisection: exactly what a full parse gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_engine.cache.tree import Tree, TreeEntry, count_entries, segment_of
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.errors import CacheError

# Names that sort around '/' and '0' (the bisection's bounds), escapes and non-ASCII included.
_NAME = st.sampled_from(["a", "a-b", "a.b", "a0", "b", "é", "a b", "A", "~", "a_", 'q"', "\\", "\x7f"])
_PATH = st.lists(_NAME, min_size=1, max_size=3).map("/".join)
_ENTRY = st.builds(TreeEntry, _PATH, st.binary(min_size=1, max_size=4).map(hash_bytes), st.integers(0, 2**40),
                   st.booleans())


def _direct(tree: Tree, prefix: str) -> list[TreeEntry]:
    return [e for e in tree.entries if e.relpath.startswith(prefix) and "/" not in e.relpath[len(prefix):]]


@settings(max_examples=200, deadline=None)
@given(st.lists(_ENTRY, max_size=40, unique_by=lambda e: e.relpath))
def test_a_segment_read_by_bisection_is_that_directory_of_the_parsed_tree(entries: list[TreeEntry]) -> None:
    paths = {e.relpath for e in entries}
    if any(p.rpartition("/")[0] in paths for p in paths):
        return  # a path that is both a file and a directory: no manifest pipe writes or accepts
    tree = Tree.from_entries(entries)
    data = tree.to_bytes()
    assert count_entries(data) == len(tree)
    try:
        parsed = Tree.from_bytes(data)
    except CacheError:
        parsed = None  # a name the path gate refuses
    prefixes = {"", "zz/"} | {p[: i + 1] for p in paths for i, c in enumerate(p) if c == "/"}
    for prefix in sorted(prefixes):
        got = segment_of(data, prefix)
        if parsed is not None:
            assert got is not None and list(got.entries) == _direct(parsed, prefix)
        elif got is not None:  # the refused name is elsewhere: this directory's entries are exact
            assert list(got.entries) == _direct(tree, prefix)


def test_a_segment_with_a_path_the_gate_refuses_is_not_read() -> None:
    good = TreeEntry("sub/a", hash_bytes(b"a"), 1)
    data = Tree([TreeEntry("sub/../../evil", hash_bytes(b"e"), 1), good]).to_bytes()
    assert segment_of(data, "sub/") is None


def test_bytes_that_are_not_rows_as_pipe_writes_them_are_not_read() -> None:
    data = Tree([TreeEntry("sub/a", hash_bytes(b"a"), 1), TreeEntry("sub/b", hash_bytes(b"b"), 2)]).to_bytes()
    spaced = data.replace(b'","isexec"', b'", "isexec"')
    unsorted = data.replace(b"sub/a", b"sub/c")
    assert segment_of(spaced, "sub/") is None
    assert segment_of(unsorted, "sub/") is None
