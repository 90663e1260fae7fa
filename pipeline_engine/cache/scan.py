"""Hash a workspace path through the hash memo: what does this file or directory hold now?

One `stat` per unchanged file: the memo answers by (relative path, inode, mtime, size), and a
directory's manifest is memoised by a fingerprint of its files' stat data, so an unchanged tree
is never rebuilt. A symlink into the cache (`cache.type: symlink`) is accepted as the object it
names; one leading outside the project, or into its `.git` or `.pipe`, is never read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import xxhash

from pipeline_engine.cache.memo import FileStamp, HashMemo, TreeMemo, stamp_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree, TreeEntry
from pipeline_engine.core.fsutil import is_exec, walk_files
from pipeline_engine.core.hashing import Oid, hash_file, is_dir_oid
from pipeline_engine.core.layout import relpath_to_oid
from pipeline_engine.core.parallel import map_chunked
from pipeline_engine.core.pathgate import is_protected_name, resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.errors import PathError

__all__ = ["Scan", "foreign_link", "hash_memoised", "scan", "scan_tree"]

_SKIP_DIRS = frozenset({".git", ".pipe"})


@dataclass(frozen=True, slots=True)
class Scan:
    """What a workspace path holds now; `tree` is None for files and for memo hits."""

    relpath: str
    oid: Oid
    size: int
    nfiles: int | None
    tree: Tree | None = None
    isexec: bool = False



def scan(
    root: Path,
    relpath: str,
    memo: HashMemo,
    *,
    store: ObjectStore | None = None,
    progress: Progress | None = None,
) -> Scan:
    """Hash the project-relative file or directory `relpath`, reusing memoised hashes.

    With `store`, symlinks into it (`cache.type: symlink`) are accepted as the objects they name.
    Raises FileNotFoundError when the path does not exist.
    """
    path = resolve_in_project(root, relpath, source=relpath)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        foreign = foreign_link(root, store, path)
        if foreign is not None:
            raise PathError(
                f"'{relpath}' is a symlink to '{foreign}', outside the project or inside its .git or .pipe; "
                "pipe does not read it",
                hint=f"replace the link by the file itself, or run 'pipe checkout --force {relpath}'",
            )
        oid = hash_memoised(memo, store, relpath, path, st)
        return Scan(relpath, oid, st.st_size, None, isexec=is_exec(st.st_mode))
    if os.path.islink(path):  # a directory is entered, so a symlink naming it must lead inside too
        resolve_in_project(root, relpath, source=relpath, follow=True)
    files = sorted(walk_files(
        path, skip=_SKIP_DIRS, link_roots=_link_roots(store), shown_as=relpath, ignore_root=root
    ))
    fingerprint = _fingerprint(files)
    hit = memo.get_tree(relpath)
    if hit is not None and hit.fingerprint == fingerprint:
        return Scan(relpath, hit.oid, hit.size, hit.nfiles)
    tree = _build_tree(root, relpath, files, memo, store, progress or NullProgress())
    newest = max((s.st_mtime_ns for _, s in files), default=0)
    memoised = TreeMemo(fingerprint, tree.oid, tree.size, len(tree.entries))
    memo.put_tree(relpath, memoised, newest_mtime_ns=newest)
    return Scan(relpath, tree.oid, tree.size, len(tree.entries), tree)


def scan_tree(
    root: Path,
    relpath: str,
    memo: HashMemo | None,
    *,
    store: ObjectStore | None = None,
    progress: Progress | None = None,
) -> Tree:
    """The current manifest of directory `relpath`, always built (for diffs and saving)."""
    path = resolve_in_project(root, relpath, source=relpath, follow=True)
    files = sorted(walk_files(
        path, skip=_SKIP_DIRS, link_roots=_link_roots(store), shown_as=relpath, ignore_root=root
    ))
    return _build_tree(root, relpath, files, memo, store, progress or NullProgress())



def _link_roots(store: ObjectStore | None) -> tuple[Path, ...]:
    return (store.root,) if store is not None else ()


def _fingerprint(files: Sequence[tuple[str, os.stat_result]]) -> str:
    h = xxhash.xxh3_128()
    for rel, st in files:
        h.update(f"{rel}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_mode & 0o100}\n".encode())
    return h.hexdigest()


def hash_memoised(memo: HashMemo, store: ObjectStore | None, relpath: str, path: Path, st: os.stat_result) -> Oid:
    stamp = stamp_of(st)
    oid = memo.get(relpath, stamp)
    if oid is None:
        oid = _hash_path(memo, store, path, st)
        memo.put_many([(relpath, stamp, oid)])
    return oid


def _hash_path(memo: HashMemo | None, store: ObjectStore | None, path: Path, st: os.stat_result) -> Oid:
    """Hash a file; a symlink to a cache object whose verification is remembered costs no read."""
    linked = _linked_oid(store, path)
    stamp = stamp_of(st)
    if linked is not None and memo is not None and memo.is_verified(linked, stamp):
        return linked
    oid = hash_file(path, st.st_size)
    if linked == oid and memo is not None:
        memo.put_verified([(oid, stamp)])
    return oid


def foreign_link(root: Path, store: ObjectStore | None, path: Path) -> str | None:
    """Where `path` leads when it is a symlink to somewhere outside the project and the cache, or
    into the project's `.git` or `.pipe` (other than the cache): such a target is never read."""
    if not os.path.islink(path):
        return None
    real = os.path.realpath(path)
    for top in (os.path.realpath(r) for r in _link_roots(store)):
        if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
            return None
    top = os.path.realpath(root)
    if real.startswith(top.rstrip(os.sep) + os.sep):
        inside = os.path.relpath(real, top).split(os.sep)
        return real if any(is_protected_name(part) for part in inside) else None
    return None if real == top else real


def _linked_oid(store: ObjectStore | None, path: Path) -> Oid | None:
    """The oid of the store object that `path` symlinks to, or None."""
    if store is None or not os.path.islink(path):
        return None
    inside = os.path.relpath(os.path.realpath(path), os.path.realpath(store.root))
    if inside.startswith(".."):
        return None
    oid = relpath_to_oid(inside.replace(os.sep, "/"))
    return oid if oid is not None and not is_dir_oid(oid) else None


def _build_tree(
    root: Path,
    relpath: str,
    files: Sequence[tuple[str, os.stat_result]],
    memo: HashMemo | None,
    store: ObjectStore | None,
    progress: Progress,
) -> Tree:
    known = memo.get_under(relpath) if memo is not None else {}
    base = root / relpath
    oids: dict[str, Oid] = {}
    todo: list[tuple[str, os.stat_result]] = []
    for rel, st in files:
        hit = known.get(f"{relpath}/{rel}")
        if hit is not None and hit[0] == stamp_of(st):
            oids[rel] = hit[1]
        else:
            todo.append((rel, st))
    if todo:
        task = progress.task(f"hashing {relpath}", len(todo))

        def work(item: tuple[str, os.stat_result]) -> tuple[str, FileStamp, Oid]:
            rel, st = item
            oid = _hash_path(memo, store, base / rel, st)
            task.advance(nbytes=st.st_size)
            return rel, stamp_of(st), oid

        hashed = map_chunked(work, todo)
        task.close()
        if memo is not None:
            memo.put_many((f"{relpath}/{rel}", stamp, oid) for rel, stamp, oid in hashed)
        oids.update((rel, oid) for rel, _, oid in hashed)
    return Tree(tuple(TreeEntry(rel, oids[rel], st.st_size, is_exec(st.st_mode)) for rel, st in files))
