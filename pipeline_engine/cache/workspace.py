"""Between workspace and store: hash a path (through the memo), save it, and check it out again.

`scan` answers "what is this path now" at the cost of one stat per unchanged file; `save`
stores whatever the store lacks; `checkout` makes a path match an oid, touching only the files
that differ and refusing to destroy content that exists nowhere else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import xxhash

from pipeline_engine.cache.link import LinkType, link
from pipeline_engine.cache.memo import FileStamp, HashMemo, TreeMemo, stamp_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree, TreeDiff, TreeEntry, diff_trees
from pipeline_engine.core.fsutil import is_exec, walk_files
from pipeline_engine.core.hashing import Oid, hash_file, is_dir_oid
from pipeline_engine.core.parallel import IO_JOBS, map_chunked
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError, CheckoutError, ObjectNotFoundError

__all__ = ["CheckoutResult", "Scan", "checkout", "is_cached", "save", "scan", "scan_tree", "tree_of"]

_SKIP_DIRS = frozenset({".git", ".pipe"})


@dataclass(frozen=True, slots=True)
class Scan:
    """What a workspace path holds now; `tree` is None for files and for memo hits."""

    relpath: str
    oid: Oid
    size: int
    nfiles: int | None
    tree: Tree | None = None


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    """What `checkout` changed: files written, deleted, and extra files it kept."""

    relpath: str
    written: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    kept_extra: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when any file was written or deleted."""
        return bool(self.written or self.deleted)


def scan(root: Path, relpath: str, memo: HashMemo, *, progress: Progress | None = None) -> Scan:
    """Hash the project-relative file or directory `relpath`, reusing memoised hashes.

    Raises FileNotFoundError when the path does not exist.
    """
    path = resolve_in_project(root, relpath, source=relpath)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        return Scan(relpath, _hash_one(memo, relpath, path, st), st.st_size, None)
    # A directory is entered, so a symlink naming it must lead inside the project too.
    resolve_in_project(root, relpath, source=relpath, follow=True)
    files = sorted(walk_files(path, skip=_SKIP_DIRS))
    fingerprint = _fingerprint(files)
    hit = memo.get_tree(relpath)
    if hit is not None and hit.fingerprint == fingerprint:
        return Scan(relpath, hit.oid, hit.size, hit.nfiles)
    tree = _build_tree(root, relpath, files, memo, progress or NullProgress())
    newest = max((s.st_mtime_ns for _, s in files), default=0)
    memo.put_tree(relpath, TreeMemo(fingerprint, tree.oid, tree.size, len(tree.entries)), newest_mtime_ns=newest)
    return Scan(relpath, tree.oid, tree.size, len(tree.entries), tree)


def scan_tree(root: Path, relpath: str, memo: HashMemo | None, *, progress: Progress | None = None) -> Tree:
    """The current manifest of directory `relpath`, always built (for diffs and saving)."""
    files = sorted(walk_files(resolve_in_project(root, relpath, source=relpath, follow=True), skip=_SKIP_DIRS))
    return _build_tree(root, relpath, files, memo, progress or NullProgress())


def tree_of(store: ObjectStore, oid: str) -> Tree:
    """Load the manifest `oid` from the store.

    Raises:
        ObjectNotFoundError: the manifest is not in the cache.
    """
    return Tree.from_bytes(store.read_bytes(oid), oid=oid)


def is_cached(store: ObjectStore, oid: str) -> bool:
    """True when the object and, for a directory, every file its manifest lists are in the store."""
    if not store.exists(oid):
        return False
    if not is_dir_oid(oid):
        return True
    try:
        return not store.missing([e.oid for e in tree_of(store, oid).entries])
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
    replaced by links to their objects; with reflink or copy the workspace copy is left as is.
    """
    progress = progress or NullProgress()
    path = resolve_in_project(root, scanned.relpath, source=scanned.relpath, follow=is_dir_oid(scanned.oid))
    if not is_dir_oid(scanned.oid):
        store.add_files([(path, scanned.oid)])
        _relink(store, [(path, scanned.oid, is_exec(os.stat(path).st_mode))], link_types)
        return PathRecord(scanned.relpath, scanned.oid, scanned.size, None)
    tree = scanned.tree
    if tree is None:
        # A memo hit may name a manifest the store no longer has (after gc): build it again.
        tree = tree_of(store, scanned.oid) if store.exists(scanned.oid) else scan_tree(root, scanned.relpath, memo)
    absent = store.missing([e.oid for e in tree.entries])
    missing = [(path / e.relpath, e.oid) for e in tree.entries if e.oid in absent]
    task = progress.task(f"caching {scanned.relpath}", len(missing))
    store.add_files(missing, jobs=IO_JOBS, on_done=task.advance)
    task.close()
    store.add_bytes(tree.to_bytes(), suffix=".dir")
    _relink(store, [(path / e.relpath, e.oid, e.isexec) for e in tree.entries], link_types)
    return PathRecord(scanned.relpath, tree.oid, tree.size, len(tree.entries))


def checkout(
    store: ObjectStore,
    root: Path,
    relpath: str,
    oid: str,
    memo: HashMemo,
    *,
    link_types: Sequence[LinkType],
    force: bool = False,
    relink: bool = False,
    progress: Progress | None = None,
) -> CheckoutResult:
    """Make workspace path `relpath` hold `oid`, touching only what differs.

    A file whose current content is in no cache object would be lost by overwriting it: unless
    `force`, such files are listed in a CheckoutError and nothing is changed. Files inside a
    directory that its manifest does not list are kept (and reported) unless `force`.

    Raises:
        ObjectNotFoundError: an object needed is not in the cache.
        CheckoutError: user changes would be lost without `force`.
    """
    progress = progress or NullProgress()
    # A file is replaced by a rename (a symlink there is replaced, not followed); a directory is
    # written into, so it must resolve inside the project itself.
    resolve_in_project(root, relpath, source=relpath, follow=is_dir_oid(oid))
    if is_dir_oid(oid):
        return _checkout_dir(store, root, relpath, tree_of(store, oid), memo, link_types, force, relink, progress)
    return _checkout_file(store, root, relpath, Oid(oid), memo, link_types, force, relink)


# --- scanning -------------------------------------------------------------------------------


def _fingerprint(files: Sequence[tuple[str, os.stat_result]]) -> str:
    h = xxhash.xxh3_128()
    for rel, st in files:
        h.update(f"{rel}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_mode & 0o100}\n".encode())
    return h.hexdigest()


def _hash_one(memo: HashMemo, relpath: str, path: Path, st: os.stat_result) -> Oid:
    stamp = stamp_of(st)
    oid = memo.get(relpath, stamp)
    if oid is None:
        oid = hash_file(path, st.st_size)
        memo.put_many([(relpath, stamp, oid)])
    return oid


def _build_tree(
    root: Path, relpath: str, files: Sequence[tuple[str, os.stat_result]], memo: HashMemo | None, progress: Progress
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
            oid = hash_file(base / rel, st.st_size)
            task.advance()
            return rel, stamp_of(st), oid

        hashed = map_chunked(work, todo)
        task.close()
        if memo is not None:
            memo.put_many((f"{relpath}/{rel}", stamp, oid) for rel, stamp, oid in hashed)
        oids.update((rel, oid) for rel, _, oid in hashed)
    return Tree(tuple(TreeEntry(rel, oids[rel], st.st_size, is_exec(st.st_mode)) for rel, st in files))


# --- linking --------------------------------------------------------------------------------


def _relink(store: ObjectStore, files: Sequence[tuple[Path, Oid, bool]], link_types: Sequence[LinkType]) -> None:
    """Replace workspace copies by links when the preferred link type shares storage."""
    if not link_types or link_types[0] in (LinkType.COPY, LinkType.REFLINK):
        return
    for path, oid, isexec in files:
        _place(store.path_of(oid), path, link_types, isexec=isexec)


def _place(obj: Path, dest: Path, link_types: Sequence[LinkType], *, isexec: bool) -> None:
    """Put a link to `obj` at `dest` atomically: link beside it, then rename over it."""
    tmp = dest.with_name(f".{dest.name}.pipe-link")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a crash
    link(obj, tmp, link_types, isexec=isexec)
    os.replace(tmp, dest)


# --- checkout -------------------------------------------------------------------------------


def _current_file_oid(memo: HashMemo, root: Path, relpath: str) -> Oid | None:
    path = root / relpath
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return Oid("")  # a directory where a file belongs: never equal to a file oid
    return _hash_one(memo, relpath, path, st)


def _checkout_file(
    store: ObjectStore,
    root: Path,
    relpath: str,
    oid: Oid,
    memo: HashMemo,
    link_types: Sequence[LinkType],
    force: bool,
    relink: bool,
) -> CheckoutResult:
    path = root / relpath
    current = _current_file_oid(memo, root, relpath)
    if current == oid and not relink:
        return CheckoutResult(relpath)
    if not store.exists(oid):
        raise ObjectNotFoundError(
            f"'{relpath}' is not in the cache (object '{oid}')", hint="run 'pipe pull' to fetch it"
        )
    if current is not None and current != oid and not force and not (current and store.exists(current)):
        raise CheckoutError(
            f"'{relpath}' has changes that are not in the cache; checkout would lose them",
            hint=f"run 'pipe add {relpath}' to keep them, or 'pipe checkout --force' to discard them",
        )
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _place(store.path_of(oid), path, link_types, isexec=False)
    _remember(memo, [(relpath, path, oid)])
    return CheckoutResult(relpath, written=(relpath,))


def _checkout_dir(
    store: ObjectStore,
    root: Path,
    relpath: str,
    tree: Tree,
    memo: HashMemo,
    link_types: Sequence[LinkType],
    force: bool,
    relink: bool,
    progress: Progress,
) -> CheckoutResult:
    base = root / relpath
    not_cached = store.missing([e.oid for e in tree.entries])
    absent = [e for e in tree.entries if e.oid in not_cached]
    if absent:
        raise ObjectNotFoundError(
            f"'{relpath}': {len(absent)} of {len(tree.entries)} files are not in the cache "
            f"(first: '{absent[0].relpath}')",
            hint="run 'pipe pull' to fetch them",
        )
    if base.exists() and not base.is_dir():
        current = _current_file_oid(memo, root, relpath)
        if not force and not (current and store.exists(current)):
            raise CheckoutError(
                f"'{relpath}' is a file with changes that are not in the cache; checkout would lose it",
                hint="rerun with '--force' to discard it",
            )
        base.unlink()
    current_tree = scan_tree(root, relpath, memo, progress=progress) if base.is_dir() else Tree(())
    wanted = tree.by_path()
    diff = diff_trees(current_tree.by_path(), wanted)
    _refuse_losses(store, relpath, current_tree, diff, force)
    write = [wanted[p] for p in (*diff.added, *diff.modified)]
    if relink:
        write = list(tree.entries)
    _write_entries(store, base, write, link_types, progress, relpath)
    deleted: tuple[str, ...] = ()
    if force and diff.deleted:
        for p in diff.deleted:
            (base / p).unlink()
        deleted = diff.deleted
    _remember(memo, [(f"{relpath}/{e.relpath}", base / e.relpath, e.oid) for e in write])
    return CheckoutResult(
        relpath,
        written=tuple(f"{relpath}/{e.relpath}" for e in write),
        deleted=tuple(f"{relpath}/{p}" for p in deleted),
        kept_extra=() if force else tuple(f"{relpath}/{p}" for p in diff.deleted),
    )


def _refuse_losses(store: ObjectStore, relpath: str, current: Tree, diff: TreeDiff, force: bool) -> None:
    if force:
        return
    cur = current.by_path()
    lost = [p for p in diff.modified if not store.exists(cur[p].oid)]
    if lost:
        listed = ", ".join(f"'{relpath}/{p}'" for p in lost[:5]) + (" ..." if len(lost) > 5 else "")
        raise CheckoutError(
            f"{len(lost)} file(s) in '{relpath}' have changes that are not in the cache: {listed}",
            hint=f"run 'pipe add {relpath}' to keep them, or 'pipe checkout --force' to discard them",
        )


def _write_entries(
    store: ObjectStore,
    base: Path,
    entries: Sequence[TreeEntry],
    link_types: Sequence[LinkType],
    progress: Progress,
    relpath: str,
) -> None:
    task = progress.task(f"checking out {relpath}", len(entries))
    made: set[Path] = set()
    for e in entries:
        parent = (base / e.relpath).parent
        if parent not in made:
            parent.mkdir(parents=True, exist_ok=True)
            made.add(parent)

    def work(e: TreeEntry) -> None:
        _place(store.path_of(e.oid), base / e.relpath, link_types, isexec=e.isexec)
        task.advance()

    map_chunked(work, list(entries))
    task.close()


def _remember(memo: HashMemo, written: Sequence[tuple[str, Path, Oid]]) -> None:
    """Record what was just written, so the next status does not re-hash it."""
    memo.put_many((rel, stamp_of(os.stat(path)), oid) for rel, path, oid in written)
