"""Hash a workspace path through the hash memo: what does this file or directory hold now?

One `stat` per unchanged file: the memo answers by (relative path, inode, mtime, size), and a
directory's manifest is memoised by a fingerprint of its files' stat data, so an unchanged tree
is never rebuilt. A symlink into the cache (`cache.type: symlink`) is accepted as the object it
names; one leading outside the project, or into its `.git` or `.pipe`, is never read.
"""

from __future__ import annotations

import operator
import os
import re
import stat
import struct
import zlib
from array import array
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_engine.cache.linkedit import separate_edit
from pipeline_engine.cache.memo import FileStamp, HashMemo, TreeMemo, stamp_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.fsutil import is_exec, require_regular, walk_runs
from pipeline_engine.core.hashing import Oid, hash_file, is_dir_oid, new_hasher
from pipeline_engine.core.layout import relpath_to_oid
from pipeline_engine.core.parallel import map_chunked
from pipeline_engine.core.pathgate import is_protected_name, resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.errors import PathError

__all__ = [
    "Files", "Scan", "Segment", "Walk", "build_tree", "foreign_link", "hash_memoised", "remember", "scan", "scan_tree",
    "walk",
]

_SKIP_DIRS = frozenset({".git", ".pipe"})
# Files hashed (or copied into the store) per batch: bounds the bookkeeping of a million new files.
_BATCH = 20_000
_HEADER = struct.Struct("<QQ")
_INO, _MTIME, _SIZE, _MODE = (operator.attrgetter(f) for f in ("st_ino", "st_mtime_ns", "st_size", "st_mode"))
_EXEC = stat.S_IXUSR
# What a manifest cannot name (the path gate refuses it on reading): a control character, or a
# byte that is not UTF-8 (os.scandir hands it over as a lone surrogate).
_UNNAMEABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


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


class Files:
    """Walked files in path order, keeping only the stat fields used: about 100 bytes a file."""

    __slots__ = ("exe", "ino", "mtime", "paths", "size")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.ino = array("Q")
        self.mtime = array("q")
        self.size = array("q")
        self.exe = bytearray()

    def stamp(self, i: int) -> FileStamp:
        return FileStamp(self.ino[i], self.mtime[i], self.size[i])


@dataclass(frozen=True, slots=True)
class Segment:
    """The files directly inside one directory of a walked tree: how many, the newest mtime, and
    a fingerprint of their names and stat data (ino, mtime, size, mode)."""

    fingerprint: str
    nfiles: int
    newest_mtime_ns: int


# One run of `walk_runs`, kept as columns: (prefix, names, ino, mtime_ns, size, mode).
_Run = tuple[str, list[str], "array[int]", "array[int]", "array[int]", "array[int]"]
# A run as a worker process sends it back: the names joined by NUL.
_Sent = tuple[str, str, "array[int]", "array[int]", "array[int]", "array[int]"]


class Walk:
    """A directory's files as one walk found them, a run of one directory's files at a time.

    `segments` (by prefix: `""` for the directory itself, `"sub/"`, `"sub/deeper/"`) fingerprint
    each directory's own files, and `fingerprint` all of them: a million unchanged files cost
    their `stat`s and no per-file Python object (paths are joined only when `files` is asked).
    """

    __slots__ = ("complete", "fingerprint", "runs", "segments")

    def __init__(self, runs: list[_Run], segments: dict[str, Segment], *, complete: bool = True) -> None:
        self.runs = runs
        self.segments = segments
        self.complete = complete  # False: only some segments' runs are held (see `walk`'s `known`)
        h = new_hasher()
        for prefix in sorted(segments):
            h.update(f"{prefix}\0{segments[prefix].fingerprint}\0".encode("utf-8", "surrogatepass"))
        self.fingerprint = h.hexdigest()

    @property
    def newest_mtime_ns(self) -> int:
        return max((s.newest_mtime_ns for s in self.segments.values()), default=0)

    def files(self, prefixes: AbstractSet[str] | None = None) -> Files:
        """The columns of every file, or of the files of the segments `prefixes`, in path order."""
        files = Files()
        for run in self.runs:
            if prefixes is None or run[0] in prefixes:
                _append(files, run)
        return files

    def take_files(self) -> Files:
        """The columns of every file; the runs are let go as they are copied, so a million names
        are not held twice (the walk is no longer `complete` after)."""
        files = Files()
        runs, self.runs, self.complete = self.runs, [], False
        runs.reverse()
        while runs:
            _append(files, runs.pop())
        return files


def _append(files: Files, run: _Run) -> None:
    prefix, names, ino, mtime, size, mode = run
    files.paths += [prefix + name for name in names] if prefix else names
    files.ino += ino
    files.mtime += mtime
    files.size += size
    files.exe += bytes(map(_EXEC.__and__, mode))  # 0 or 0o100: `Tree.from_columns` takes any truth


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
        require_regular(st.st_mode, relpath)  # a FIFO would block the read forever
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
    walked = walk(root, relpath, path, store)
    hit = memo.get_tree(relpath)
    if hit is not None and hit.fingerprint == walked.fingerprint and (unless is None or hit.oid == unless):
        return Scan(relpath, hit.oid, hit.size, hit.nfiles)
    tree, fresh = build_tree(root, relpath, walked.take_files(), memo, store, progress or NullProgress(), into)
    remember(memo, relpath, walked, tree)
    return Scan(relpath, tree.oid, tree.size, len(tree), tree, fresh=fresh)


def remember(memo: HashMemo, relpath: str, walked: Walk, tree: Tree) -> None:
    """Remember that directory `relpath`, as `walked` found it, holds `tree` (and its segments)."""
    memo.put_tree(relpath, TreeMemo(walked.fingerprint, tree.oid, tree.size, len(tree)),
                  newest_mtime_ns=walked.newest_mtime_ns)
    memo.put_segments(relpath, tree.oid, [(p, s.fingerprint, s.nfiles, s.newest_mtime_ns)
                                          for p, s in walked.segments.items()], whole=True)


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
    files = walk(root, relpath, path, store).take_files()
    return build_tree(root, relpath, files, memo, store, progress or NullProgress(), None)[0]


def walk(
    root: Path, relpath: str, path: Path, store: ObjectStore | None, *, jobs: int = 1,
    known: Mapping[str, str] | None = None,
) -> Walk:
    """Walk the directory `path` (project-relative `relpath`) with the rules of `walk_runs`.

    With `jobs` > 1, its top-level sub-directories are shared out between that many processes
    (forked: each walks its share with the same rules and hands its runs back), as git stats
    the index in parallel threads: a million `stat`s are most of what a no-op status costs,
    and they are syscalls each process makes on its own core. Threads would not help: each
    `stat` would hand the GIL back and forth. Forking is only safe from a single-threaded caller
    (`pipe status`; not repro's stage threads). With `known` (prefix -> the fingerprint the
    caller has for it), other processes hand back only the runs of segments that differ: a
    no-op status needs none, and the walk is then not `complete`.

    Raises:
        PathError: as `walk_runs`.
    """
    link_roots = _link_roots(store)
    if jobs < 2:
        return Walk(*_walk_part(root, relpath, path, link_roots, (0, 1)))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        pool = ProcessPoolExecutor(jobs - 1, mp_context=multiprocessing.get_context("fork"))
    except (OSError, ImportError, NotImplementedError):  # no semaphores here (no /dev/shm): one process
        return walk(root, relpath, path, store)
    complete = True
    with pool:
        parts = [pool.submit(_walk_share, root, relpath, path, link_roots, (k, jobs), known) for k in range(1, jobs)]
        runs, segments = _walk_part(root, relpath, path, link_roots, (0, jobs))
        for part in parts:
            try:
                more, found = part.result()
            except BrokenProcessPool:  # a worker died (killed, out of memory): walk it all here
                return walk(root, relpath, path, store)
            if isinstance(more, str):
                raise PathError(more, hint=found if isinstance(found, str) else None)
            assert isinstance(found, dict)
            got = [(r[0], r[1].split("\0"), r[2], r[3], r[4], r[5]) for r in more]
            complete = complete and sum(len(r[1]) for r in got) == sum(s.nfiles for s in found.values())
            runs += got
            segments.update(found)
    runs.sort(key=_first_path)  # each run is a slice of the sorted paths: in order of their first paths
    return Walk(runs, segments, complete=complete)


def _first_path(run: _Run) -> str:
    return run[0] + run[1][0]


def _walk_part(
    root: Path, relpath: str, path: Path, link_roots: tuple[Path, ...], part: tuple[int, int]
) -> tuple[list[_Run], dict[str, Segment]]:
    """Share `part` = (k, n) of a walk: the files directly in `path` when k is 0, and the
    top-level sub-directories whose name hashes to k modulo n."""
    k, n = part
    runs: list[_Run] = []
    hashers: dict[str, tuple[Any, list[int]]] = {}  # prefix -> (hasher, [nfiles, newest mtime])
    # A run of files at a time, column by column: per-file Python work is what a million unchanged
    # files cost beyond their `stat`s.
    for prefix, names, stats in walk_runs(path, skip=_SKIP_DIRS, link_roots=link_roots, shown_as=relpath,
                                          ignore_root=root, contained_in=path, top_files=k == 0,
                                          enter=None if n == 1 else lambda sub: _share(sub, n) == k):
        if not prefix and k != 0:
            continue
        if _UNNAMEABLE.search(prefix) or _UNNAMEABLE.search("/".join(names)):
            raise _unnameable(relpath, prefix, names)
        run: _Run = (prefix, names, array("Q", map(_INO, stats)), array("q", map(_MTIME, stats)),
                     array("q", map(_SIZE, stats)), array("Q", map(_MODE, stats)))
        runs.append(run)
        h, counts = hashers.get(prefix) or hashers.setdefault(prefix, (new_hasher(), [0, 0]))
        blob = "\0".join(names).encode("utf-8", "surrogatepass")  # no NUL can be in a name
        h.update(_HEADER.pack(len(names), len(blob)))  # lengths first: no two runs hash alike
        h.update(blob)
        for column in run[2:]:
            h.update(column)
        counts[0] += len(names)
        counts[1] = max(counts[1], max(run[3]))
    return runs, {p: Segment(h.hexdigest(), count, newest) for p, (h, (count, newest)) in hashers.items()}


def _unnameable(relpath: str, prefix: str, names: list[str]) -> PathError:
    """The error for a file whose name a manifest cannot hold (one of `names`, or `prefix` itself)."""
    name = next((n for n in names if _UNNAMEABLE.search(prefix + n)), names[0])
    text = os.fsencode(f"{relpath}/{prefix}{name}").decode("utf-8", "backslashreplace")  # bad bytes as \xNN
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return PathError(
        f"'{shown}' has a name that is not UTF-8 or holds a control character (a newline, ...); "
        "a directory manifest cannot record it",
        hint=f"rename it, or exclude it in a .pipeignore file; then 'pipe status {relpath}' works again",
    )


def _walk_share(
    root: Path, relpath: str, path: Path, link_roots: tuple[Path, ...], part: tuple[int, int],
    known: Mapping[str, str] | None,
) -> tuple[list[_Sent], dict[str, Segment]] | tuple[str, str | None]:
    """`_walk_part` in a worker process, each run's names joined by NUL (a list of a million
    names pickles 10 times slower than one string); a refused path comes back as (message, hint)."""
    try:
        runs, segments = _walk_part(root, relpath, path, link_roots, part)
    except PathError as exc:  # pickled, an error would lose its hint
        return exc.message, exc.hint
    if known is not None:
        runs = [r for r in runs if known.get(r[0]) != segments[r[0]].fingerprint]
    return [(r[0], "\0".join(r[1]), r[2], r[3], r[4], r[5]) for r in runs], segments


def _share(name: str, n: int) -> int:
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) % n


def _link_roots(store: ObjectStore | None) -> tuple[Path, ...]:
    return (store.root,) if store is not None else ()


def hash_memoised(memo: HashMemo, store: ObjectStore | None, relpath: str, path: Path, st: os.stat_result) -> Oid:
    """The oid of file `relpath` with stat data `st`: remembered, else hashed (and remembered).

    Raises:
        PathError: it is not a regular file (a FIFO, a socket, a device).
    """
    require_regular(st.st_mode, relpath)
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


def build_tree(
    root: Path,
    relpath: str,
    files: Files,
    memo: HashMemo | None,
    store: ObjectStore | None,
    progress: Progress,
    into: ObjectStore | None,
    *,
    under: str = "",
) -> tuple[Tree, set[Oid]]:
    """The tree of the walked `files`: memoised oids by one sorted merge with the memo, the rest hashed.

    `under` (a prefix such as `"sub/"`): every file is inside that sub-directory, so only the
    memo's rows there are read.

    With `into`, files the memo does not know are copied into that store as they are hashed.
    Files are hashed in batches whose results go straight into the tree's oid column and the
    memo, so a million new files cost no per-file Python objects beyond a batch.
    Returns the tree and the oids copied in.
    """
    n = len(files.paths)
    oids = bytearray(16 * n)
    edited: dict[int, Oid] = {}
    todo = _merge_memo(relpath, files, memo, oids, edited, under=under)
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
    links = _Symlinks(prefix)
    for start in range(0, len(todo), _BATCH):
        batch = todo[start:start + _BATCH]
        hashed: list[tuple[int, Oid]] = []
        if into is not None:
            copy = [i for i in batch if files.paths[i] not in links.of(files.paths[i])
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


class _Symlinks:
    """The symlinks among the walked files, one listing per directory (`DirEntry.is_symlink` reads
    the entry's type: no `lstat` per file, ~20 ms of a 10,000-file add), kept across batches."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._by_dir: dict[str, frozenset[str]] = {}

    def of(self, relpath: str) -> frozenset[str]:
        """The relpaths of the symlinks in the directory holding `relpath` (relative to the walk)."""
        parent = relpath[:relpath.rfind("/") + 1]
        found = self._by_dir.get(parent)
        if found is None:
            try:
                with os.scandir(self._prefix + parent) as entries:
                    found = frozenset(parent + e.name for e in entries if e.is_symlink())
            except OSError:  # gone meanwhile: its files fail when they are read, by path
                found = frozenset()
            self._by_dir[parent] = found
        return found


def _merge_memo(
    relpath: str, files: Files, memo: HashMemo | None, oids: bytearray, edited: dict[int, Oid] | None = None,
    *, under: str = "",
) -> list[int]:
    """Fill `oids` with what the memo knows for unchanged files (one ordered pass over both lists);
    return the indexes of the files left to hash. `edited` receives, for a file changed in place
    (same inode, other mtime or size), the oid the memo remembered for it."""
    if memo is None:
        return list(range(len(files.paths)))
    todo: list[int] = []
    rows = memo.iter_under(f"{relpath}/{under.rstrip('/')}" if under else relpath)
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
