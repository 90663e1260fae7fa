"""Between workspace and store: save a scanned path into the store (checking out is `cache.checkout`).

`scan` (in `cache.scan`, re-exported here) answers "what is this path now" at the cost of one
stat per unchanged file; `save` stores whatever the store lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline_engine.cache.link import SHARING_TYPES, LinkType
from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.place import relink
from pipeline_engine.cache.scan import Scan, scan, scan_tree
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.parallel import IO_JOBS
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError

__all__ = ["Scan", "is_cached", "save", "scan", "scan_tree", "tree_of"]

_RELINK_BATCH = 50_000


def tree_of(store: ObjectStore, oid: str) -> Tree:
    """Load the manifest `oid` from the store.

    Raises:
        ObjectNotFoundError: the manifest is not in the cache.
        CorruptObjectError: its content does not match its oid.
    """
    return Tree.from_bytes(store.read_bytes(oid), oid=oid)


def is_cached(store: ObjectStore, oid: str) -> bool:
    """True when the object and, for a directory, every file its manifest lists are in the store."""
    if not store.exists(oid):
        return False
    if not is_dir_oid(oid):
        return True
    try:
        return not store.missing(set(tree_of(store, oid).oids()))
    except CacheError:
        return False


def save(
    store: ObjectStore,
    root: Path,
    scanned: Scan,
    *,
    link_types: Sequence[LinkType],
    memo: HashMemo | None = None,
    progress: Progress | None = None,
) -> PathRecord:
    """Store every object of `scanned` that the store lacks, then its manifest; return its record.

    A manifest is stored only after all of its files, so a manifest in the store implies its
    files were there. With hardlink or symlink first in `link_types`, workspace files are
    replaced by links to their (verified) objects, except executable files, which stay copies
    (a link shares the object's read-only, non-executable mode). With reflink or copy the
    workspace copy is left as is. An object found corrupt is replaced by the workspace copy.
    """
    progress = progress or NullProgress()
    path = resolve_in_project(root, scanned.relpath, source=scanned.relpath, follow=is_dir_oid(scanned.oid))
    if not is_dir_oid(scanned.oid):
        fresh = store.missing([scanned.oid]) | scanned.fresh
        store.put(scanned.oid, path)
        relink(store, memo, [(scanned.relpath, path, scanned.oid, scanned.isexec)], link_types, fresh)
        return PathRecord(scanned.relpath, scanned.oid, scanned.size, None, scanned.isexec)
    tree = scanned.tree
    if tree is None:
        # A memo hit may name a manifest the store no longer has (after gc): build it again.
        tree = (
            tree_of(store, scanned.oid)
            if store.exists(scanned.oid)
            else scan_tree(root, scanned.relpath, memo, store=store)
        )
    # Objects `scan(ingest=True)` copied in are present already; others (known to the memo, or
    # collected by gc since) are copied now, hashed as they are copied.
    absent = store.missing(set(tree.oids()))
    missing = [(e.oid, path / e.relpath) for e in tree.entries if e.oid in absent] if absent else []
    task = progress.task(f"caching {scanned.relpath}", len(missing))
    refused = store.put_many(missing, jobs=IO_JOBS, on_done=lambda _oid, _error: task.advance())
    task.close()
    for error in refused.values():
        raise error  # a file changed while it was being cached: no manifest for a directory not all stored
    store.put_chunks(tree.iter_bytes(), suffix=".dir")
    if link_types and link_types[0] in SHARING_TYPES:
        fresh = absent | scanned.fresh
        for start in range(0, len(tree), _RELINK_BATCH):  # bounded memory for a million files
            files = [(f"{scanned.relpath}/{e.relpath}", path / e.relpath, e.oid, e.isexec)
                     for e in tree.entries[start:start + _RELINK_BATCH]]
            relink(store, memo, files, link_types, fresh)
    return PathRecord(scanned.relpath, tree.oid, tree.size, len(tree))
