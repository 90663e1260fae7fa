"""A tracked directory against the manifest it should hold, a segment at a time (what `pipe status` asks).

A segment is the files directly inside one directory of the tree. The hash memo remembers, for
the manifest a directory was last compared with, its segments, how many files each holds, and
the stat fingerprint each segment had when its files were exactly the manifest's. A status then
walks the tree (one `stat` per file) and compares only the segments whose fingerprint moved:
their files are merged with the memo (and hashed if changed) and compared with that segment's
rows of the manifest, found by bisection in its verified bytes. After one edit in a million
files, no manifest is parsed whole, no memo row outside one directory is read, and no new tree
is serialised. Without such a record (first status after a checkout, after another command
memoised another tree) the whole tree is built and compared once, and the record written.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.cache.memo import HashMemo, SegmentMemo
from pipeline_engine.cache.scan import Walk, build_tree, remember, walk
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree, TreeDiff, count_entries, diff_trees, segment_of
from pipeline_engine.cache.workspace import complete_tree
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.errors import CacheError

__all__ = ["PARALLEL_WALK", "Comparison", "compare_dir"]

# Files in a tracked directory (as last compared) from which status walks it with several processes.
PARALLEL_WALK = 100_000


@dataclass(frozen=True, slots=True)
class Comparison:
    """`same`: the directory holds exactly the recorded manifest. `diff`: the files that differ,
    when the manifest is complete in the store (None otherwise, and when `same`)."""

    same: bool
    diff: TreeDiff | None = None


def compare_dir(
    root: Path, relpath: str, memo: HashMemo, recorded: Oid, *, store: ObjectStore, progress: Progress | None = None
) -> Comparison:
    """Compare the project-relative directory `relpath` with the directory manifest `recorded`.

    Raises:
        PathError: the walk meets a symlink leading outside the project (as `cache.scan.scan`).
    """
    progress = progress or NullProgress()
    path = resolve_in_project(root, relpath, source=relpath, follow=True)
    known = memo.get_segments(relpath)
    current = {p: s.fingerprint for p, s in known.items() if s.oid == recorded}
    walked = walk(root, relpath, path, store, jobs=_jobs(sum(s.nfiles for s in known.values())), known=current)
    if known and all(s.oid == recorded for s in known.values()):
        moved = sorted({p for p, s in walked.segments.items()
                        if p not in known or known[p].fingerprint != s.fingerprint}
                       | (known.keys() - walked.segments.keys()))
        if not moved:
            return Comparison(True)
        found = _compare_segments(root, relpath, memo, store, progress, walked, recorded, known, moved)
        if found is not None:
            return found
    return _compare_whole(root, relpath, memo, store, progress, walked, recorded)


def _compare_segments(
    root: Path, relpath: str, memo: HashMemo, store: ObjectStore, progress: Progress, walked: Walk, recorded: Oid,
    known: dict[str, SegmentMemo], moved: list[str],
) -> Comparison | None:
    """Compare the segments `moved` only; None when the manifest or the memo's record of it does
    not bear that out (unreadable, not canonical, counts that disagree: compare the whole tree)."""
    try:
        data = store.read_bytes(recorded)  # checked against its oid: the bytes the record was made from
    except (OSError, CacheError):
        return None
    if sum(s.nfiles for s in known.values()) != count_entries(data):
        return None
    diffs: list[TreeDiff] = []
    matched: list[tuple[str, str, int, int]] = []
    for prefix in moved:
        old = segment_of(data, prefix, oid=recorded)
        if old is None or len(old) != (known[prefix].nfiles if prefix in known else 0):
            return None
        segment = walked.segments.get(prefix)
        new = (build_tree(root, relpath, walked.files({prefix}), memo, store, progress, None, under=prefix)[0]
               if segment is not None else Tree())
        diff = diff_trees(old.by_path(), new.by_path())
        if diff.is_empty and segment is not None:
            matched.append((prefix, segment.fingerprint, segment.nfiles, segment.newest_mtime_ns))
        diffs.append(diff)
    memo.put_segments(relpath, recorded, matched, whole=False)
    diff = TreeDiff(*(tuple(sorted(p for d in diffs for p in getattr(d, side))) for side in ("added", "modified",
                                                                                             "deleted")))
    return Comparison(diff.is_empty, None if diff.is_empty else diff)


def _compare_whole(
    root: Path, relpath: str, memo: HashMemo, store: ObjectStore, progress: Progress, walked: Walk, recorded: Oid
) -> Comparison:
    """Build the whole current tree and compare it with the recorded one; remember the segments
    of the recorded manifest, with the fingerprint of each that the workspace matches."""
    if not walked.complete:  # the other processes kept the runs of the segments that matched
        walked = walk(root, relpath, resolve_in_project(root, relpath, source=relpath, follow=True), store)
    tree = build_tree(root, relpath, walked.take_files(), memo, store, progress, None)[0]
    remember(memo, relpath, walked, tree)  # as `scan` does: other commands find the current tree
    if tree.oid == recorded:
        return Comparison(True)
    old = complete_tree(store, recorded, memo=memo)
    if old is None:
        return Comparison(False)
    diff = diff_trees(old.by_path(), tree.by_path())
    changed = {_prefix(p) for p in (*diff.added, *diff.modified, *diff.deleted)}
    counts: dict[str, int] = {}
    for p in old.paths():
        prefix = _prefix(p)
        counts[prefix] = counts.get(prefix, 0) + 1
    rows = []
    for prefix, n in counts.items():
        segment = walked.segments.get(prefix)
        if segment is None or prefix in changed:
            rows.append((prefix, "", n, 0))  # R's segment, but not what the workspace holds now
        else:
            rows.append((prefix, segment.fingerprint, n, segment.newest_mtime_ns))
    memo.put_segments(relpath, recorded, rows, whole=True)
    return Comparison(False, diff)


def _jobs(nfiles: int) -> int:
    """Processes to walk a tree of about `nfiles` files with: one per CPU (at most 4) from
    PARALLEL_WALK files on, where the stats saved outweigh forking (~20 ms a process). A caller
    with threads of its own (a parallel repro, an API user's server) walks alone: a fork copies
    their locks in whatever state they are, and a child can hang on one."""
    if nfiles < PARALLEL_WALK or threading.active_count() > 1:
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _prefix(path: str) -> str:
    return path[:path.rfind("/") + 1]
