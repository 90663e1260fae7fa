"""Between workspace and store: hash a path (through the memo), save it, and check it out again.

`scan` answers "what is this path now" at the cost of one stat per unchanged file; `save`
stores whatever the store lacks; `checkout` makes a path match an oid, touching only the files
that differ and refusing to destroy content that exists nowhere else.

Corrupt objects never reach the workspace (cache.place verifies every object it puts there):
a corrupt object is moved to the store's quarantine and its workspace paths are reported in
`CheckoutResult.corrupt`; every other path is still checked out.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import xxhash

from pipeline_engine.cache.link import LinkType, file_mode
from pipeline_engine.cache.memo import FileStamp, HashMemo, TreeMemo, stamp_of
from pipeline_engine.cache.place import Placer, make_dirs, relink
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree, TreeDiff, TreeEntry, diff_trees
from pipeline_engine.core.fsutil import is_exec, remove_path, walk_files
from pipeline_engine.core.hashing import Oid, hash_file, is_dir_oid
from pipeline_engine.core.layout import relpath_to_oid
from pipeline_engine.core.parallel import IO_JOBS, map_chunked
from pipeline_engine.core.pathgate import is_protected_name, resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import (
    CacheError,
    CheckoutError,
    CorruptObjectError,
    ObjectNotFoundError,
    PathError,
)

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
    isexec: bool = False


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    """What `checkout` changed: files written, deleted, extra files it kept, and corrupt objects.

    `corrupt` lists (workspace path, oid) pairs whose object failed verification: the object was
    moved to the quarantine and the path was left as it was. `missing` lists the files of a
    directory whose objects are not in the cache (the other files were checked out).
    `kept_changed` lists data pipe placed that nothing tracks any more but that changed since
    (kept; see ops.checkout).
    """

    relpath: str
    written: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    kept_extra: tuple[str, ...] = ()
    corrupt: tuple[tuple[str, str], ...] = ()
    missing: tuple[tuple[str, str], ...] = ()
    kept_changed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when any file was written or deleted."""
        return bool(self.written or self.deleted)


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
        foreign = _foreign_link(root, store, path)
        if foreign is not None:
            raise PathError(
                f"'{relpath}' is a symlink to '{foreign}', outside the project or inside its .git or .pipe; "
                "pipe does not read it",
                hint=f"replace the link by the file itself, or run 'pipe checkout --force {relpath}'",
            )
        oid = _hash_one(memo, store, relpath, path, st)
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
    replaced by links to their (verified) objects, except executable files, which stay copies
    (a link shares the object's read-only, non-executable mode). With reflink or copy the
    workspace copy is left as is. An object found corrupt is replaced by the workspace copy.
    """
    progress = progress or NullProgress()
    path = resolve_in_project(root, scanned.relpath, source=scanned.relpath, follow=is_dir_oid(scanned.oid))
    if not is_dir_oid(scanned.oid):
        fresh = store.missing([scanned.oid])
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
    absent = store.missing([e.oid for e in tree.entries])
    missing = [(e.oid, path / e.relpath) for e in tree.entries if e.oid in absent]
    task = progress.task(f"caching {scanned.relpath}", len(missing))
    refused = store.put_many(missing, jobs=IO_JOBS, on_done=lambda _oid, _error: task.advance())
    task.close()
    for error in refused.values():
        raise error  # a file changed while it was being cached: no manifest for a directory not all stored
    store.put_bytes(tree.to_bytes(), suffix=".dir")
    files = [(f"{scanned.relpath}/{e.relpath}", path / e.relpath, e.oid, e.isexec) for e in tree.entries]
    relink(store, memo, files, link_types, absent)
    return PathRecord(scanned.relpath, tree.oid, tree.size, len(tree.entries))


def checkout(
    store: ObjectStore,
    root: Path,
    relpath: str,
    oid: str,
    memo: HashMemo,
    *,
    link_types: Sequence[LinkType],
    isexec: bool = False,
    force: bool = False,
    relink: bool = False,
    progress: Progress | None = None,
) -> CheckoutResult:
    """Make workspace path `relpath` hold `oid` (and, for a file, the exec bit `isexec`).

    Only what differs is touched. A file whose current content is in no cache object would be
    lost by overwriting it: unless `force`, such files are listed in a CheckoutError and nothing
    is changed. Files inside a directory that its manifest does not list are kept (and reported)
    unless `force`. Objects that fail verification are quarantined and listed in the result's
    `corrupt`, the files of a directory whose objects are not in the cache in `missing`; the
    other files are still written.

    Raises:
        ObjectNotFoundError: the file's object or the directory's manifest is not in the cache.
        CorruptObjectError: the directory manifest is corrupt (it was moved to the quarantine).
        CheckoutError: user changes would be lost without `force`.
        PathError: a directory on the way resolves through a symlink outside the tracked directory.
    """
    progress = progress or NullProgress()
    # A file is replaced by a rename (a symlink there is replaced, not followed); a directory is
    # written into, so it must resolve inside the project itself.
    resolve_in_project(root, relpath, source=relpath, follow=is_dir_oid(oid))
    placer = Placer(store, memo, link_types)
    if is_dir_oid(oid):
        tree = _load_tree(store, relpath, oid)
        result = _checkout_dir(placer, root, relpath, tree, force=force, relink=relink, progress=progress)
    else:
        result = _checkout_file(placer, root, relpath, Oid(oid), isexec=isexec, force=force, relink=relink)
    memo.put_placed([(relpath, oid)])
    return result


# --- scanning -------------------------------------------------------------------------------


def _link_roots(store: ObjectStore | None) -> tuple[Path, ...]:
    return (store.root,) if store is not None else ()


def _fingerprint(files: Sequence[tuple[str, os.stat_result]]) -> str:
    h = xxhash.xxh3_128()
    for rel, st in files:
        h.update(f"{rel}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_mode & 0o100}\n".encode())
    return h.hexdigest()


def _hash_one(memo: HashMemo, store: ObjectStore | None, relpath: str, path: Path, st: os.stat_result) -> Oid:
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


def _foreign_link(root: Path, store: ObjectStore | None, path: Path) -> str | None:
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


# --- checkout -------------------------------------------------------------------------------


def _load_tree(store: ObjectStore, relpath: str, oid: str) -> Tree:
    """The manifest of directory out `relpath`; a corrupt one is quarantined and reported."""
    try:
        return tree_of(store, oid)
    except ObjectNotFoundError:
        empty = Tree(())
        if oid == empty.oid:  # an empty directory's manifest is known without any cache (a fresh clone)
            store.put_bytes(empty.to_bytes(), suffix=".dir")
            return empty
        raise ObjectNotFoundError(
            f"'{relpath}' is not in the cache (directory manifest '{oid}')",
            hint="run 'pipe pull' to fetch it",
        ) from None
    except CorruptObjectError:
        store.quarantine(oid)
        raise CorruptObjectError(
            f"'{relpath}': its directory manifest '{oid}' is corrupt in the cache; "
            "it was moved to the quarantine",
            hint="run 'pipe pull' to fetch a good copy, then 'pipe checkout'",
        ) from None


def _current_file(placer: Placer, root: Path, relpath: str) -> tuple[Oid | None, bool]:
    """The oid and exec bit of the file at `relpath` (None when absent, "" for a directory)."""
    path = root / relpath
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, False
    if stat.S_ISDIR(st.st_mode) or _foreign_link(root, placer.store, path) is not None:
        # A directory, or a link leading out of the project (never read): unknown content that
        # only --force replaces; "" never equals a file oid.
        return Oid(""), False
    assert placer.memo is not None
    return _hash_one(placer.memo, placer.store, relpath, path, st), is_exec(st.st_mode)


def _checkout_file(
    placer: Placer, root: Path, relpath: str, oid: Oid, *, isexec: bool, force: bool, relink: bool
) -> CheckoutResult:
    store = placer.store
    path = root / relpath
    current, current_exec = _current_file(placer, root, relpath)
    if current == oid and current_exec == isexec and not relink:
        return CheckoutResult(relpath)
    if current == oid and not relink and _is_own_copy(path):
        _set_exec(path, isexec)  # only the exec bit differs: no need to rewrite the bytes
        return CheckoutResult(relpath, written=(relpath,))
    if not store.exists(oid):
        raise ObjectNotFoundError(
            f"'{relpath}' is not in the cache (object '{oid}')", hint="run 'pipe pull' to fetch it"
        )
    if current is not None and current != oid and not force and not (current and store.exists(current)):
        raise CheckoutError(
            f"'{relpath}' has changes that are not in the cache; checkout would lose them",
            hint=f"run 'pipe add {relpath}' to keep them, or 'pipe checkout --force' to discard them",
        )
    if os.path.isdir(path) and not os.path.islink(path):
        remove_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = placer.place(oid, path, isexec=isexec)
    if stamp is None:
        return CheckoutResult(relpath, corrupt=((relpath, oid),))
    _remember(placer, [(relpath, stamp, oid)])
    return CheckoutResult(relpath, written=(relpath,))


def _is_own_copy(path: Path) -> bool:
    """True for a regular file that shares its inode with nothing (safe to chmod)."""
    st = os.lstat(path)
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def _set_exec(path: Path, isexec: bool) -> None:
    mode = os.stat(path).st_mode & 0o7777
    os.chmod(path, (mode | (file_mode(True) & 0o111)) if isexec else (mode & ~0o111))


def _checkout_dir(
    placer: Placer, root: Path, relpath: str, tree: Tree, *, force: bool, relink: bool, progress: Progress
) -> CheckoutResult:
    store = placer.store
    base = root / relpath
    _clear_non_directory(placer, root, relpath, force)
    current_tree = (
        scan_tree(root, relpath, placer.memo, store=store, progress=progress) if base.is_dir() else Tree(())
    )
    wanted = tree.by_path()
    diff = diff_trees(current_tree.by_path(), wanted)
    _refuse_losses(store, relpath, current_tree, diff, force)
    needed = list(tree.entries) if relink else [wanted[p] for p in (*diff.added, *diff.modified)]
    not_cached = store.missing({e.oid for e in needed})
    write = [e for e in needed if e.oid not in not_cached]  # the others are reported as missing
    _refuse_dirs_in_the_way(relpath, current_tree, write, force)
    deleted: tuple[str, ...] = ()
    if force and diff.deleted:
        for p in diff.deleted:
            remove_path(base / p)  # a link is removed as a link, never its target
        deleted = diff.deleted
    make_dirs(base, relpath, {os.path.dirname(e.relpath) for e in write}, force=force)
    placed = _write_entries(placer, base, write, progress, relpath)
    _remember(placer, [(f"{relpath}/{e.relpath}", st, e.oid) for e, st in placed if st is not None])
    if force:
        deleted += tuple(_remove_empty_dirs(base))
    return CheckoutResult(
        relpath,
        written=tuple(f"{relpath}/{e.relpath}" for e, st in placed if st is not None),
        deleted=tuple(f"{relpath}/{p}" for p in deleted),  # files, then emptied directories
        kept_extra=() if force else tuple(f"{relpath}/{p}" for p in diff.deleted),
        corrupt=tuple((f"{relpath}/{e.relpath}", e.oid) for e, st in placed if st is None),
        missing=tuple((f"{relpath}/{e.relpath}", e.oid) for e in needed if e.oid in not_cached),
    )


def _remove_empty_dirs(base: Path) -> list[str]:
    """Remove the empty sub-directories of `base` (a manifest lists files only, so none is tracked).

    Bottom-up, so a directory emptied by removing its empty children goes too; symlinks are
    never entered nor removed here. Returns the removed paths relative to `base`.
    """
    removed: list[str] = []
    for dirpath, _, filenames in os.walk(base, topdown=False):
        if filenames or dirpath == str(base):
            continue
        try:
            os.rmdir(dirpath)  # fails unless empty (its empty children went first)
        except OSError:
            continue
        removed.append(os.path.relpath(dirpath, base).replace(os.sep, "/"))
    return removed


def _clear_non_directory(placer: Placer, root: Path, relpath: str, force: bool) -> None:
    """Remove a file or symlink where directory `relpath` belongs, if that loses nothing (or `force`)."""
    base = root / relpath
    if os.path.islink(base):
        if not force:
            raise CheckoutError(
                f"'{relpath}' is a symlink; checkout would replace it with the tracked directory",
                hint="rerun with '--force' to replace the link (its target is left alone)",
            )
        remove_path(base)
    elif base.exists() and not base.is_dir():
        current, _ = _current_file(placer, root, relpath)
        if not force and not (current and placer.store.exists(current)):
            raise CheckoutError(
                f"'{relpath}' is a file with changes that are not in the cache; checkout would lose it",
                hint="rerun with '--force' to discard it",
            )
        remove_path(base)


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


def _refuse_dirs_in_the_way(relpath: str, current: Tree, write: Sequence[TreeEntry], force: bool) -> None:
    """A file to write where the workspace has a directory of files: only `force` may delete them."""
    if force:
        return
    dirs = {p.rsplit("/", i)[0] for p in current.by_path() for i in range(1, p.count("/") + 1)}
    blocked = [e.relpath for e in write if e.relpath in dirs]
    if blocked:
        raise CheckoutError(
            f"'{relpath}/{blocked[0]}' is a directory in the workspace but a file in the tracked version",
            hint="rerun with '--force' to replace it (its files are deleted)",
        )


def _write_entries(
    placer: Placer, base: Path, entries: Sequence[TreeEntry], progress: Progress, relpath: str
) -> list[tuple[TreeEntry, FileStamp | None]]:
    task = progress.task(f"checking out {relpath}", len(entries))

    def work(e: TreeEntry) -> tuple[TreeEntry, FileStamp | None]:
        dest = base / e.relpath
        if os.path.isdir(dest) and not os.path.islink(dest):
            remove_path(dest)  # its files were deleted with --force (see _refuse_dirs_in_the_way)
        stamp = placer.place(e.oid, dest, isexec=e.isexec)
        task.advance()
        return e, stamp

    placed = map_chunked(work, list(entries))
    task.close()
    return placed


def _remember(placer: Placer, written: Sequence[tuple[str, FileStamp, Oid]]) -> None:
    """Record what was just written and checked, so the next status does not re-hash it."""
    if placer.memo is not None:
        placer.memo.put_many(written)
