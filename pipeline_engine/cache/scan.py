"""Hash a workspace path through the hash memo: what does this file or directory hold now?

One `stat` per unchanged file: the memo answers by (relative path, inode, mtime, size), and a
directory's manifest is memoised by a fingerprint of its files' stat data, so an unchanged tree
is never rebuilt. A symlink into the cache (`cache.type: symlink`) is accepted as the object it
names; one leading outside the project, or into its `.git` or `.pipe`, is never read.
"""

from __future__ import annotations

import operator
import os
import stat
from array import array
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.cache.linkedit import separate_edit
from pipeline_engine.cache.memo import FileStamp, HashMemo, TreeMemo, stamp_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.fsutil import is_exec, walk_runs
from pipeline_engine.core.hashing import Oid, hash_file, is_dir_oid, new_hasher
from pipeline_engine.core.layout import relpath_to_oid
from pipeline_engine.core.parallel import map_chunked
from pipeline_engine.core.pathgate import is_protected_name, resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.errors import PathError

__all__ = ["Scan", "foreign_link", "hash_memoised", "scan", "scan_tree"]

_SKIP_DIRS = frozenset({".git", ".pipe"})
# Files hashed (or copied into the store) per batch: bounds the bookkeeping of a million new files.
_BATCH = 20_000
_INO, _MTIME, _SIZE = (operator.attrgetter(f) for f in ("st_ino", "st_mtime_ns", "st_size"))


@dataclass(frozen=True, slots=True)
class Scan:
    """What a workspace path holds now; `tree` is None for files and for memo hits.

    `fresh`: the objects this scan copied into the store (`ingest`), hashed as they were copied.
    """

    relpath: str
    oid: Oid
    size: int
    nfiles: int | None
    tree: Tree | None = None
    isexec: bool = False
    fresh: AbstractSet[str] = frozenset()


class _Files:
    """A walk's files in path order, keeping only the stat fields used: about 100 bytes a file."""

    __slots__ = ("exe", "ino", "mtime", "paths", "size")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.ino = array("Q")
        self.mtime = array("q")
        self.size = array("q")
        self.exe = bytearray()

    def stamp(self, i: int) -> FileStamp:
        return FileStamp(self.ino[i], self.mtime[i], self.size[i])


def scan(
    root: Path,
    relpath: str,
    memo: HashMemo,
    *,
    store: ObjectStore | None = None,
    progress: Progress | None = None,
    ingest: bool = False,
    unless: str | None = None,
) -> Scan:
    """Hash the project-relative file or directory `relpath`, reusing memoised hashes.

    With `store`, symlinks into it (`cache.type: symlink`) are accepted as the objects they name.
    With `ingest` (and `store`), files the memo does not know are copied into the store while
    they are hashed (`ObjectStore.ingest`): `pipe add` reads each new file once. With `unless`
    (the oid the caller has on record), a directory that no longer hashes to it comes with its
    tree even when the memo knew its oid, from the same walk.
    Raises FileNotFoundError when the path does not exist.
    """
    path = resolve_in_project(root, relpath, source=relpath)
    st = os.stat(path)
    into = store if ingest else None
    if not stat.S_ISDIR(st.st_mode):
        foreign = foreign_link(root, store, path)
        if foreign is not None:
            raise PathError(
                f"'{relpath}' is a symlink to '{foreign}', outside the project or inside its .git or .pipe; "
                "pipe does not read it",
                hint=f"replace the link by the file itself, or run 'pipe checkout --force {relpath}'",
            )
        stamp = stamp_of(st)
        if into is not None and memo.get(relpath, stamp) is None and _linked_oid(store, path) is None:
            oids, fresh = into.ingest([(path, stamp)])
            memo.put_many([(relpath, stamp, oids[0])])
            oid = _unshare(memo, into, relpath, path, st, oids[0])
            return Scan(relpath, oid, st.st_size, None, isexec=is_exec(st.st_mode), fresh=fresh)
        oid = hash_memoised(memo, store, relpath, path, st)
        return Scan(relpath, oid, st.st_size, None, isexec=is_exec(st.st_mode))
    if os.path.islink(path):  # a directory is entered, so a symlink naming it must lead inside too
        resolve_in_project(root, relpath, source=relpath, follow=True)
    files, fingerprint = _walk(root, relpath, path, store)
    hit = memo.get_tree(relpath)
    if hit is not None and hit.fingerprint == fingerprint and (unless is None or hit.oid == unless):
        return Scan(relpath, hit.oid, hit.size, hit.nfiles)
    tree, fresh = _build_tree(root, relpath, files, memo, store, progress or NullProgress(), into)
    newest = max(files.mtime, default=0)
    memoised = TreeMemo(fingerprint, tree.oid, tree.size, len(tree))
    memo.put_tree(relpath, memoised, newest_mtime_ns=newest)
    return Scan(relpath, tree.oid, tree.size, len(tree), tree, fresh=fresh)


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
    files, _ = _walk(root, relpath, path, store)
    return _build_tree(root, relpath, files, memo, store, progress or NullProgress(), None)[0]


def _walk(root: Path, relpath: str, path: Path, store: ObjectStore | None) -> tuple[_Files, str]:
    """The files under `path` in path order, and the fingerprint of their stat data (for the tree memo)."""
    files = _Files()
    paths, ino, mtime, size, exe = files.paths, files.ino, files.mtime, files.size, files.exe
    # A run of files at a time, column by column: per-file Python work is what a million unchanged
    # files cost beyond their `stat`s.
    for prefix, names, stats in walk_runs(path, skip=_SKIP_DIRS, link_roots=_link_roots(store), shown_as=relpath,
                                          ignore_root=root):
        paths += [prefix + name for name in names] if prefix else names
        ino.extend(map(_INO, stats))
        mtime.extend(map(_MTIME, stats))
        size.extend(map(_SIZE, stats))
        exe.extend([st.st_mode & 0o100 != 0 for st in stats])
    # Whole columns at once (no NUL can be in a name, so the joined paths are unambiguous).
    h = new_hasher()
    h.update("\0".join(paths).encode("utf-8", "surrogatepass"))
    for column in (ino, mtime, size, exe):
        h.update(b"\0" + bytes(column))
    return files, h.hexdigest()


def _link_roots(store: ObjectStore | None) -> tuple[Path, ...]:
    return (store.root,) if store is not None else ()


def hash_memoised(memo: HashMemo, store: ObjectStore | None, relpath: str, path: Path, st: os.stat_result) -> Oid:
    stamp = stamp_of(st)
    oid = memo.get(relpath, stamp)
    if oid is None:
        oid = _unshare(memo, store, relpath, path, st, _hash_path(memo, store, path, st))
        memo.put_many([(relpath, stamp, oid)])
    return oid


def _unshare(memo: HashMemo, store: ObjectStore | None, relpath: str, path: Path, st: os.stat_result, oid: Oid) -> Oid:
    """A hardlink edited in place changed its cache object too: see `linkedit.separate_edit`."""
    if st.st_nlink < 2 or store is None:
        return oid
    return separate_edit(store, path, st, oid, previous=memo.last_oid(relpath, st.st_ino))


def _hash_path(memo: HashMemo | None, store: ObjectStore | None, path: Path, st: os.stat_result) -> Oid:
    """Hash a file; a symlink to a cache object whose verification is remembered costs no read."""
    linked = _linked_oid(store, path)
    stamp = stamp_of(st)
    if linked is not None and memo is not None and memo.is_verified(linked, stamp):
        return linked
    oid = hash_file(path, st.st_size)
    if linked == oid and memo is not None:
        memo.put_verified([(oid, stamp)])
    elif linked is not None and store is not None:  # an edit through the symlink changed the object
        oid = separate_edit(store, path, st, oid, linked=linked)
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
    files: _Files,
    memo: HashMemo | None,
    store: ObjectStore | None,
    progress: Progress,
    into: ObjectStore | None,
) -> tuple[Tree, set[Oid]]:
    """The tree of the walked `files`: memoised oids by one sorted merge with the memo, the rest hashed.

    With `into`, files the memo does not know are copied into that store as they are hashed.
    Files are hashed in batches whose results go straight into the tree's oid column and the
    memo, so a million new files cost no per-file Python objects beyond a batch.
    Returns the tree and the oids copied in.
    """
    n = len(files.paths)
    oids = bytearray(16 * n)
    edited: dict[int, Oid] = {}
    todo = _merge_memo(relpath, files, memo, oids, edited)
    fresh: set[Oid] = set()
    base = root / relpath
    task = progress.task(f"hashing {relpath}", len(todo)) if todo else None

    def advance(nbytes: int) -> None:
        assert task is not None
        task.advance(nbytes=nbytes)

    def work(i: int) -> tuple[int, Oid]:
        path = base / files.paths[i]
        oid = _hash_path(memo, store, path, os.stat(path))
        advance(files.size[i])
        return i, oid

    prefix = f"{base}{os.sep}"  # str paths: a Path per file costs more than copying a small file
    for start in range(0, len(todo), _BATCH):
        batch = todo[start:start + _BATCH]
        hashed: list[tuple[int, Oid]] = []
        if into is not None:
            copy = [i for i in batch if not os.path.islink(prefix + files.paths[i])
                    or _linked_oid(store, base / files.paths[i]) is None]
            got, new = into.ingest([(prefix + files.paths[i], files.stamp(i)) for i in copy], on_done=advance)
            hashed += zip(copy, got, strict=True)
            fresh |= new
            done = set(copy)
            batch = [i for i in batch if i not in done]  # symlinks into the cache: hashed, not copied
        hashed += map_chunked(work, batch)
        if edited and store is not None:  # a hardlink edited in place changed its cache object too
            hashed = [
                (i, separate_edit(store, base / files.paths[i], os.stat(base / files.paths[i]), oid,
                                  previous=edited[i]) if i in edited else oid)
                for i, oid in hashed
            ]
        for i, oid in hashed:
            oids[16 * i:16 * (i + 1)] = bytes.fromhex(oid)
        if memo is not None:
            memo.put_many((f"{relpath}/{files.paths[i]}", files.stamp(i), oid) for i, oid in hashed)
    if task is not None:
        task.close()
    tree = Tree.from_columns(files.paths, bytes(oids), files.size, files.exe)
    return tree, fresh


def _merge_memo(
    relpath: str, files: _Files, memo: HashMemo | None, oids: bytearray, edited: dict[int, Oid] | None = None
) -> list[int]:
    """Fill `oids` with what the memo knows for unchanged files (one ordered pass over both lists);
    return the indexes of the files left to hash. `edited` receives, for a file changed in place
    (same inode, other mtime or size), the oid the memo remembered for it."""
    if memo is None:
        return list(range(len(files.paths)))
    todo: list[int] = []
    rows = memo.iter_under(relpath)
    row = next(rows, None)
    prefix = relpath + "/"
    ino, mtime, size = files.ino, files.mtime, files.size
    for i, rel in enumerate(files.paths):
        key = prefix + rel
        while row is not None and row[0] < key:
            row = next(rows, None)
        if row is not None and row[0] == key and row[1] == ino[i] and row[2] == mtime[i] and row[3] == size[i]:
            oids[16 * i:16 * (i + 1)] = bytes.fromhex(row[4])
            continue
        todo.append(i)
        if edited is not None and row is not None and row[0] == key and row[1] == ino[i]:
            edited[i] = Oid(row[4])
    return todo
