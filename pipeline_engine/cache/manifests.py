"""Loading directory manifests, with their parsed form remembered in the hash memo.

Parsing a manifest checks every path against the gate and the bytes against the canonical form:
~15 ms for 10,000 entries, ~1.5 s for a million, paid by every checkout and status that reads
it. A manifest of at least `_REMEMBER_MIN` entries is remembered parsed (its columns) by the stat
data of its object in the store, like a verified object (`cache.memo`): an object changed since
has other stat data, so its record no longer applies and the bytes are read and checked again.
The memo lives in `.pipe/tmp`, which a clone could carry, but nobody can foresee the inode and
nanosecond mtime of an object written on this machine; the paths read back still pass the gate.
"""

from __future__ import annotations

import os
from array import array

from pipeline_engine.cache.memo import HashMemo, stamp_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.pathgate import all_plain
from pipeline_engine.errors import ObjectNotFoundError

__all__ = ["tree_of"]

# Smaller manifests parse in about a millisecond: not worth a row.
_REMEMBER_MIN = 1000
# Manifests remembered at a time (the most recently added): the current version of a few tracked
# directories, and the one a branch switch goes back to; and the entries they may hold in all (the
# newest is always kept): ~50 bytes each in the memo.
_KEEP = 16
_KEEP_ENTRIES = 4_000_000


def tree_of(store: ObjectStore, oid: str, memo: HashMemo | None = None) -> Tree:
    """Load directory manifest `oid` from the store (with `memo`, its remembered parse if any).

    Raises:
        ObjectNotFoundError: the manifest is not in the cache.
        CorruptObjectError: its content does not match its oid.
        CacheError: its content is not a valid manifest.
    """
    if memo is None:
        return Tree.from_bytes(store.read_bytes(oid), oid=oid)
    try:
        stamp = stamp_of(os.stat(store.path_of(oid)))  # before reading: the stamp is of what is read
    except FileNotFoundError:
        raise ObjectNotFoundError(f"object '{oid}' is not in the cache") from None
    columns = memo.get_manifest(oid, stamp)
    tree = _from_columns(columns) if columns is not None else None
    if tree is None:
        tree = Tree.from_bytes(store.read_bytes(oid), oid=oid)
        if len(tree) >= _REMEMBER_MIN:
            paths, oids, sizes, isexec = tree.columns()
            memo.put_manifest(oid, stamp, ("\n".join(paths).encode(), oids, sizes.tobytes(), isexec), keep=_KEEP, entries=_KEEP_ENTRIES)
    return tree


def _from_columns(columns: tuple[bytes, bytes, bytes, bytes]) -> Tree | None:
    """The tree of remembered columns; None when they do not fit together or a path is not plain
    (then the manifest is parsed as if nothing were remembered)."""
    raw_paths, oids, raw_sizes, isexec = columns
    try:
        paths = raw_paths.decode().split("\n")
        sizes = array("q")
        sizes.frombytes(raw_sizes)
    except (UnicodeDecodeError, ValueError, TypeError):
        return None
    n = len(paths)
    if not (len(oids) == 16 * n and len(sizes) == n and len(isexec) == n and all_plain(paths)):
        return None
    try:
        return Tree.from_columns(paths, oids, sizes, isexec)
    except (ValueError, AssertionError):
        return None
