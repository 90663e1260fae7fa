"""Between workspace and store: save a scanned path into the store (checking out is `cache.checkout`).

`scan` (in `cache.scan`, re-exported here) answers "what is this path now" at the cost of one
stat per unchanged file; `save` stores whatever the store lacks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from pipeline_engine.cache.link import SHARING_TYPES, LinkType
from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.relink import relink
from pipeline_engine.cache.scan import Scan, scan, scan_tree
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.hashing import hash_bytes, is_dir_oid
from pipeline_engine.core.parallel import IO_JOBS
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError

__all__ = ["Scan", "complete_tree", "is_cached", "save", "scan", "scan_tree"]

_RELINK_BATCH = 50_000
_FANOUTS = re.compile(r"^(?:[0-9a-f]{2})+$")


def is_cached(store: ObjectStore, oid: str, *, memo: HashMemo | None = None) -> bool:
    """True when the object and, for a directory, every file its manifest lists are in the store.

    With `memo`, a directory found complete before is answered without reading its manifest
    (a million-file manifest costs seconds to parse and check) while the manifest and the store
    directories holding its objects are unchanged since: removing an object (gc, quarantine,
    a manual `rm`) changes its directory's mtime, and so the stamp remembered with the answer.
    """
    if not is_dir_oid(oid):
        return store.exists(oid)
    if memo is not None and _known_complete(store, memo, oid):
        return True
    return complete_tree(store, oid, memo=memo) is not None


def complete_tree(store: ObjectStore, oid: str, *, memo: HashMemo | None = None) -> Tree | None:
    """The directory manifest `oid` when it and every file it lists are in the store, else None
    (absent or unreadable). With `memo`, the answer is remembered for `is_cached`."""
    try:
        manifest = os.stat(store.path_of(oid))  # before reading: the stamp is of what was read
        known = memo is not None and _known_complete(store, memo, oid)
        tree = tree_of(store, oid, memo)
    except (OSError, CacheError):
        return None
    if known:  # its files are in the store still: not listed again
        return tree
    fanouts = "".join(sorted(tree.fanouts() | {oid[:2]}))
    stamp = _stamp(store, manifest, fanouts)  # before the check: a removal after it changes the stamp
    if store.missing(set(tree.oids())):
        return None
    if memo is not None and stamp is not None:
        memo.put_complete(oid, fanouts, stamp[0], newest_mtime_ns=stamp[1])
    return tree


def _known_complete(store: ObjectStore, memo: HashMemo, oid: str) -> bool:
    known = memo.get_complete(oid)
    if known is None or not _FANOUTS.match(known[0]):
        return False
    try:
        manifest = os.stat(store.path_of(oid))
    except OSError:
        return False
    stamp = _stamp(store, manifest, known[0])
    return stamp is not None and stamp[0] == known[1]


def _stamp(store: ObjectStore, manifest: os.stat_result, fanouts: str) -> tuple[str, int] | None:
    """A digest of the stat data of the manifest and of the store's fan-out directories `fanouts`
    (two hex digits each, concatenated), and the newest mtime among them (for the memo's racy
    rule); None when a directory is absent. About 256 `stat`s for a large tree."""
    stats = [manifest]
    try:
        stats += [os.stat(os.path.join(store.root, fanouts[i:i + 2])) for i in range(0, len(fanouts), 2)]
    except OSError:
        return None
    text = ";".join(f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}" for st in stats)
    return hash_bytes(text.encode()), max(st.st_mtime_ns for st in stats)


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
