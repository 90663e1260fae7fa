"""Checking out: make a workspace path match an oid, touching only the files that differ.

A file whose current content exists nowhere else is never overwritten without `force`.
Corrupt objects never reach the workspace (cache.place verifies every object it puts there):
a corrupt object is moved to the store's quarantine and its workspace paths are reported in
`CheckoutResult.corrupt`; every other path is still checked out.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from pipeline_engine.cache.link import LinkType, file_mode
from pipeline_engine.cache.linkedit import separate_if_shared
from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.memo import FileStamp, HashMemo
from pipeline_engine.cache.place import Placer, Stat
from pipeline_engine.cache.scan import foreign_link, hash_memoised, scan_tree
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Row, Tree, TreeDiff, diff_trees
from pipeline_engine.cache.workdirs import make_dirs
from pipeline_engine.core.fsutil import is_exec, make_parents, remove_path, special_kind
from pipeline_engine.core.hashing import Oid, is_dir_oid
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.errors import CacheError, CheckoutError, CorruptObjectError, ObjectNotFoundError

__all__ = ["CheckoutResult", "PathList", "checkout"]

# Files placed and remembered at a time in a directory (see _write_entries).
_CHUNK = 20_000


class PathList(Sequence[str]):
    """Workspace paths `<relpath>/<name>` for a list of names, made on access (a million paths
    held as strings cost ~100 MB; the names are the manifest's own strings)."""

    __slots__ = ("_names", "_relpath")

    def __init__(self, relpath: str, names: Sequence[str]) -> None:
        self._relpath = relpath
        self._names = names

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...

    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return tuple(f"{self._relpath}/{n}" for n in self._names[i])
        return f"{self._relpath}/{self._names[i]}"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"PathList({self._relpath!r}, {len(self)} paths)"


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
    written: Sequence[str] = ()
    deleted: tuple[str, ...] = ()
    kept_extra: tuple[str, ...] = ()
    corrupt: tuple[tuple[str, str], ...] = ()
    missing: tuple[tuple[str, str], ...] = ()
    kept_changed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when any file was written or deleted."""
        return bool(self.written or self.deleted)


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
    placer = Placer(store, memo, link_types, missing_ok=True)
    if is_dir_oid(oid):
        tree = _load_tree(store, relpath, oid, memo)
        result = _checkout_dir(placer, root, relpath, tree, force=force, relink=relink, progress=progress)
    else:
        result = _checkout_file(placer, root, relpath, Oid(oid), isexec=isexec, force=force, relink=relink)
    memo.put_placed([(relpath, oid)])
    return result


# --- checkout -------------------------------------------------------------------------------


def _load_tree(store: ObjectStore, relpath: str, oid: str, memo: HashMemo) -> Tree:
    """The manifest of directory out `relpath`; a corrupt one is quarantined and reported."""
    try:
        return tree_of(store, oid, memo)
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
    if not stat.S_ISREG(st.st_mode) or foreign_link(root, placer.store, path) is not None:
        # A directory (or a FIFO, a socket), or a link leading out of the project (never read):
        # unknown content that only --force replaces; "" never equals a file oid.
        return Oid(""), False
    assert placer.memo is not None
    return hash_memoised(placer.memo, placer.store, relpath, path, st), is_exec(st.st_mode)


def _checkout_file(
    placer: Placer, root: Path, relpath: str, oid: Oid, *, isexec: bool, force: bool, relink: bool
) -> CheckoutResult:
    store = placer.store
    path = root / relpath
    current, current_exec = _current_file(placer, root, relpath)
    if current and current != oid:
        current = separate_if_shared(store, path, current, oid)
    if current == oid and current_exec == isexec and not relink:
        return CheckoutResult(relpath)
    if current == oid and not relink and _is_own_copy(path):
        _set_exec(path, isexec)  # only the exec bit differs: no need to rewrite the bytes
        return CheckoutResult(relpath, written=(relpath,))
    if not store.exists(oid):
        raise _not_in_cache(store, relpath, oid)
    if current is not None and current != oid and not force and not (current and store.exists(current)):
        special = special_kind(os.lstat(path).st_mode) if os.path.lexists(path) else ""
        if special:
            raise CheckoutError(f"'{relpath}' is {special}; checkout would replace it by the tracked file",
                                hint=f"rerun with '--force' to replace it: 'pipe checkout --force {relpath}'")
        raise CheckoutError(
            f"'{relpath}' has changes that are not in the cache; checkout would lose them",
            hint=f"run 'pipe add {relpath}' to keep them, or 'pipe checkout --force' to discard them",
        )
    if os.path.isdir(path) and not os.path.islink(path):
        remove_path(path)
    make_parents(path)  # a loop: a path from git may be 1,500 levels deep
    stamp = placer.place(oid, path, isexec=isexec)
    if stamp is None and oid in placer.absent:  # removed since it was found (gc, another process)
        raise _not_in_cache(store, relpath, oid)
    if stamp is None:
        return CheckoutResult(relpath, corrupt=((relpath, oid),))
    _remember(placer, [(relpath, stamp, oid)])
    return CheckoutResult(relpath, written=(relpath,))


def _not_in_cache(store: ObjectStore, relpath: str, oid: str) -> CacheError:
    if (store.quarantine_dir / oid).exists():
        return CorruptObjectError(
            f"'{relpath}' not checked out: its object '{oid}' is corrupt (changed through a link to "
            "the workspace) and was moved to the quarantine",
            hint="run 'pipe pull' to fetch a good copy, then 'pipe checkout'",
        )
    return ObjectNotFoundError(
        f"'{relpath}' is not in the cache (object '{oid}')", hint="run 'pipe pull' to fetch it"
    )


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
    existed = base.is_dir()
    current_tree = scan_tree(root, relpath, placer.memo, store=store, progress=progress) if existed else Tree(())
    wanted = tree.by_path()
    current = current_tree.by_path()
    diff = diff_trees(current, wanted)
    for p in diff.modified:  # hardlinks edited in place: the edit must not stay in the object
        separate_if_shared(store, base / p, current[p].oid, wanted[p].oid)
    _refuse_losses(store, relpath, current_tree, diff, force)
    fresh = not len(current_tree)  # everything is added: no lookups by path
    # Rows (relpath, oid, isexec) of the files to write, made a chunk at a time when everything is
    # written: a million TreeEntry objects held at once cost ~200 MB.
    everything = tree.rows()
    rows: Sequence[Row] = (
        everything if relink or fresh else [(p, wanted[p].oid, wanted[p].isexec) for p in (*diff.added, *diff.modified)]
    )
    if existed:
        not_cached = store.missing(set(tree.oids()) if relink or fresh else {r[1] for r in rows})
        write: Sequence[Row] = [r for r in rows if r[1] not in not_cached] if not_cached else rows
    else:  # a new directory: the placer's own stat of each object finds those not cached
        not_cached, write = set(), rows
    _refuse_dirs_in_the_way(relpath, current_tree, write, force)
    if existed and not force:
        _refuse_special_files(base, relpath, diff.added)
    # Directories where files go (empty ones, or emptied by --force above); none in a new directory.
    in_the_way = [r[0] for r in write if _is_real_dir(base / r[0])] if existed else []
    deleted: tuple[str, ...] = ()
    if force and diff.deleted:
        for p in diff.deleted:
            remove_path(base / p)  # a link is removed as a link, never its target
        deleted = diff.deleted
    paths = tree.paths() if write is everything else [r[0] for r in write]  # the tree's list: no row made
    make_dirs(base, relpath, {p.rpartition("/")[0] for p in paths}, force=force)
    written, failed = _write_entries(placer, base, write, progress, relpath, in_the_way)
    not_cached |= placer.absent
    if failed and not existed:
        _remove_empty_dirs(base)  # made for files whose objects were not there, or corrupt
    if force:
        deleted += tuple(_remove_empty_dirs(base))
    return CheckoutResult(
        relpath,
        written=PathList(relpath, written),
        deleted=tuple(f"{relpath}/{p}" for p in deleted),  # files, then emptied directories
        kept_extra=() if force else tuple(f"{relpath}/{p}" for p in diff.deleted),
        corrupt=tuple((f"{relpath}/{r[0]}", r[1]) for r in failed if r[1] not in placer.absent),
        missing=tuple((f"{relpath}/{r[0]}", r[1]) for r in rows if r[1] in not_cached) if not_cached else (),
    )


def _is_real_dir(path: Path) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


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


def _refuse_dirs_in_the_way(relpath: str, current: Tree, write: Sequence[Row], force: bool) -> None:
    """A file to write where the workspace has a directory of files: only `force` may delete them."""
    if force or not len(current):
        return
    dirs = {p.rsplit("/", i)[0] for p in current.paths() for i in range(1, p.count("/") + 1)}
    blocked = [r[0] for r in write if r[0] in dirs]
    if blocked:
        raise CheckoutError(
            f"'{relpath}/{blocked[0]}' is a directory in the workspace but a file in the tracked version",
            hint="rerun with '--force' to replace it (its files are deleted)",
        )


def _refuse_special_files(base: Path, relpath: str, added: Sequence[str]) -> None:
    """A FIFO, socket or device where a file is to be written: the walk skips such entries (as git
    does), so they look absent; only `--force` replaces one."""
    for p in added:
        try:
            kind = special_kind(os.lstat(base / p).st_mode)
        except OSError:
            continue
        if kind:
            raise CheckoutError(f"'{relpath}/{p}' is {kind}; checkout would replace it with the tracked file",
                                hint=f"rerun with '--force' to replace it: 'pipe checkout --force {relpath}'")


def _write_entries(
    placer: Placer, base: Path, rows: Sequence[Row], progress: Progress, relpath: str,
    in_the_way: Collection[str] = (),
) -> tuple[list[str], list[Row]]:
    """Place every row's file under `base`; `in_the_way` are files where the workspace has a directory.

    Returns the relpaths written (the tree's own strings: nothing new per file) and the rows not
    written: their object was corrupt, or absent (`placer.absent`). Rows are placed and
    remembered `_CHUNK` at a time, so the per-file destinations, stamps and memo rows of a
    million-file directory are never all held.
    """
    task = progress.task(f"checking out {relpath}", len(rows))
    for rel in in_the_way:
        remove_path(base / rel)  # its files were deleted with --force (see _refuse_dirs_in_the_way)
    prefix = os.fspath(base) + os.sep
    written: list[str] = []
    failed: list[Row] = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        recorded = _recorded(placer, relpath, chunk)
        stamps = placer.place_many([(prefix + r[0], r[1], r[2]) for r in chunk], advance=task.advance, recorded=recorded)
        _remember(placer, [
            (f"{relpath}/{r[0]}", st, r[1]) for r, st, seen in zip(chunk, stamps, recorded)
            if st is not None and (seen is None or seen != (st.ino, st.mtime_ns, st.size))
        ])
        for r, st in zip(chunk, stamps):
            if st is None:
                failed.append(r)
            else:
                written.append(r[0])
        placer.forget_verified()
    task.close()
    return written, failed


def _recorded(placer: Placer, relpath: str, chunk: Sequence[Row]) -> list[Stat | None]:
    """For each row, the stat data the memo holds for its path with the row's oid, else None.

    A linked file's record is its object's stat data: it verifies the object (`Placer.place_many`),
    and a file placed again exactly as recorded (a deleted directory checked out again) needs no
    new memo row.
    """
    if placer.memo is None or not placer.shares or not chunk:  # a copy's stat data is its own
        return [None] * len(chunk)
    names = [r[0] for r in chunk]
    held = placer.memo.files_between(f"{relpath}/{min(names)}", f"{relpath}/{max(names)}")
    if not held:
        return [None] * len(chunk)
    cut = len(relpath) + 1
    by_name = {p[cut:]: row for p, row in held.items()}
    out: list[Stat | None] = []
    for name, oid, _ in chunk:
        row = by_name.get(name)
        out.append(row[:3] if row is not None and row[3] == oid else None)
    return out


def _remember(placer: Placer, written: Sequence[tuple[str, FileStamp, Oid]]) -> None:
    """Record what was just written and checked, so the next status does not re-hash it."""
    if placer.memo is not None:
        placer.memo.put_linked(written)
