"""`pipe checkout`: make tracked workspace paths match their pointers, from the cache."""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from pipeline_engine.cache.checkout import CheckoutResult
from pipeline_engine.cache.checkout import checkout as checkout_path
from pipeline_engine.cache.link import parse_link_types
from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.pointer import POINTER_SUFFIX
from pipeline_engine.cache.workspace import is_cached, scan
from pipeline_engine.core.fsutil import remove_path
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.pathgate import check_relpath, resolve_in_project
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import (
    CacheError,
    CheckoutError,
    CorruptObjectError,
    ObjectNotFoundError,
    PathError,
    PipeError,
)
from pipeline_engine.index.pointers import deleted_pointers, deleted_pointers_error
from pipeline_engine.index.used import used_outs
from pipeline_engine.project import Project

__all__ = ["checkout", "checkout_outs", "ignore_checked_out"]

_SHOWN = 10


def checkout(
    project: Project,
    targets: Sequence[str] = (),
    *,
    force: bool = False,
    relink: bool = False,
    allow_missing: bool = False,
    progress: Progress | None = None,
) -> list[CheckoutResult]:
    """Check out every out referenced by `targets` (all when empty).

    Every path that can be checked out is; the failures are raised together at the end. With
    `allow_missing` (DVC's `--allow-missing`), objects missing from the cache are no error: they
    are listed in the results' `missing`.

    Raises:
        CheckoutError: a path has uncached changes and `force` is false (that path is untouched).
        CorruptObjectError: objects failed verification; they were moved to the quarantine and
            their paths left untouched ('pipe pull' fetches good copies).
        ObjectNotFoundError: objects are missing from the cache ('pipe pull' fetches them).
    """
    with project.mutex("pipe checkout"):
        # A pointer deleted from the workspace is never restored behind the user's back (git's
        # index may hold an older version than their last 'pipe add'): the rest is checked out,
        # then the deleted pointers are reported with the command that restores them.
        gone = [] if targets else deleted_pointers(project)
        try:
            outs = used_outs(project, targets=targets)
        except PathError as exc:
            raise _meant_git_checkout(project, targets, exc) from None
        stale: list[CheckoutResult] = []
        try:
            results = checkout_outs(project, outs, force=force, relink=relink, allow_missing=allow_missing,
                                    progress=progress)
        except PipeError as exc:
            if gone:
                raise _combined([exc, deleted_pointers_error(project, gone)]) from None
            raise
        finally:
            if not targets:
                stale = _remove_stale(project, [o.path for o in outs], [g[: -len(POINTER_SUFFIX)] for g in gone])
        results += stale
        if gone:
            raise deleted_pointers_error(project, gone)
        return results


def _meant_git_checkout(project: Project, targets: Sequence[str], exc: PathError) -> PathError:
    """`pipe checkout BRANCH`: the same error, with DVC's hint that git's checkout was meant."""
    revs = [t for t in targets if project.git is not None and not os.path.lexists(t) and project.git.is_revision(t)]
    if not revs:
        return exc
    return PathError(str(exc), hint=f"did you mean 'git checkout {shlex.quote(revs[0])}'? "
                     "then 'pipe checkout' brings the data of that revision")


def checkout_outs(
    project: Project,
    outs: Sequence[PathRecord],
    *,
    force: bool = False,
    relink: bool = False,
    allow_missing: bool = False,
    progress: Progress | None = None,
) -> list[CheckoutResult]:
    """Check out `outs` (project-relative records); the caller holds the project mutex.

    Raises: as `checkout`, after every other out was checked out.
    """
    link_types = parse_link_types(project.config.cache_types)
    results: list[CheckoutResult] = []
    failed: list[PipeError] = []
    for out in outs:
        try:
            result = checkout_path(
                project.store, project.root, out.path, out.oid, project.memo, link_types=link_types,
                isexec=out.isexec, force=force, relink=relink, progress=progress or NullProgress(),
            )
        except ObjectNotFoundError as exc:
            if not allow_missing:
                failed.append(exc)
            else:
                results.append(CheckoutResult(out.path, missing=((out.path, out.oid),)))
            continue
        except (CheckoutError, CacheError, PathError) as exc:
            failed.append(exc)
            continue
        results.append(result)
        ignore_checked_out(project, out.path)
    # An object in the quarantine was found corrupt (by a checkout, or when a file changed
    # through a link was hashed): reported as corrupt, not merely missing.
    quarantine = project.store.quarantine_dir
    absent = [pair for r in results for pair in r.missing]
    quarantined = {p for p in absent if (quarantine / p[1]).exists()} if absent and quarantine.is_dir() else set()
    missing = [pair for pair in absent if pair not in quarantined]
    if missing and not allow_missing:
        failed.insert(0, ObjectNotFoundError(
            f"{len(missing)} file(s) not checked out: their objects are not in the cache: {_listed(missing)}",
            hint="run 'pipe pull' to fetch them",
        ))
    corrupt = [pair for r in results for pair in r.corrupt] + [p for p in absent if p in quarantined]
    if corrupt:
        failed.insert(0, _corrupt_error(project, corrupt))
    if failed:
        raise _combined(failed)
    return results


def ignore_checked_out(project: Project, relpath: str) -> None:
    """Git-ignore an out just checked out (a path inside a pointer-tracked directory: its directory is)."""
    if project.git is not None and not _inside_tracked_dir(project, relpath):
        project.git.ignore(project.relpath_from_git(relpath))


def _remove_stale(project: Project, used: Sequence[str], keep: Sequence[str]) -> list[CheckoutResult]:
    """Remove data pipe placed that no pointer or lock tracks now (after a branch switch).

    Only a path that still holds the oid pipe placed, with every object of it in the cache, is
    removed; one changed since (or whose objects gc collected) is kept and reported, and one git
    tracks, overlapping a tracked path, beside a pointer file that was not read, or whose pointer
    was deleted from the workspace (`keep`) is left alone. Never follows links.
    """
    placed = project.memo.placed()
    tracked = [*used, *keep]
    results: list[CheckoutResult] = []
    forget: list[str] = []
    for rel, oid in sorted(placed.items()):
        if any(rel == t or rel.startswith(t + "/") or t.startswith(rel + "/") for t in tracked):
            continue
        try:
            path = resolve_in_project(project.root, check_relpath(rel, source="hash memo"), source=rel)
        except PathError:
            forget.append(rel)
            continue
        if not (path.exists() or path.is_symlink()):
            forget.append(rel)
            continue
        if os.path.lexists(f"{path}{POINTER_SUFFIX}"):
            continue  # a pointer is there that was not read (a FIFO, git-ignored): its data stays
        if project.git is not None and project.git.tracked_under(project.relpath_from_git(rel)):
            forget.append(rel)  # git's own file now: never pipe's to delete
            continue
        try:
            current = scan(project.root, rel, project.memo, store=project.store).oid
            if is_dir_oid(oid):
                tree_of(project.store, oid)  # its file list says what to delete
        except (PipeError, OSError):
            current = None
        if current != oid or not is_cached(project.store, oid):
            # changed since, or its objects left the cache (gc): deleting it could lose the only copy
            results.append(CheckoutResult(rel, kept_changed=(rel,)))
            continue
        _remove_placed(project, path, oid)
        forget.append(rel)
        results.append(CheckoutResult(rel, deleted=(rel,)))
    project.memo.drop_placed(forget)
    return results


def _remove_placed(project: Project, path: Path, oid: str) -> None:
    """Delete a placed file, or the files a placed directory's manifest lists and the directories
    they leave empty (files a .pipeignore hides from the manifest stay)."""
    if not is_dir_oid(oid):
        remove_path(path)
        return
    for entry in tree_of(project.store, oid).entries:
        remove_path(path / entry.relpath)
    for dirpath, _, _ in os.walk(path, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)  # only when empty


def _inside_tracked_dir(project: Project, rel: str) -> bool:
    """True for a path inside a directory a pointer tracks (a granular target): its directory is ignored."""
    parts = rel.split("/")
    return any((project.root / ("/".join(parts[:i]) + POINTER_SUFFIX)).is_file() for i in range(1, len(parts)))


def _listed(pairs: Sequence[tuple[str, str]]) -> str:
    listed = "; ".join(f"'{path}' (object '{oid}')" for path, oid in pairs[:_SHOWN])
    return listed + (f"; ... and {len(pairs) - _SHOWN} more" if len(pairs) > _SHOWN else "")


def _corrupt_error(project: Project, corrupt: Sequence[tuple[str, str]]) -> CorruptObjectError:
    quarantine = project.store.quarantine_dir
    shown = quarantine.relative_to(project.root) if quarantine.is_relative_to(project.root) else quarantine
    return CorruptObjectError(
        f"{len(corrupt)} file(s) not checked out: their cache objects are corrupt and were moved to "
        f"'{shown.as_posix()}': {_listed(corrupt)}",
        hint="run 'pipe pull' to fetch good copies and check them out",
    )


def _combined(failed: Sequence[PipeError]) -> PipeError:
    """One error for several outs: the first one's class and hint, every message."""
    if len(failed) == 1:
        return failed[0]
    first = failed[0]
    return type(first)("; ".join(str(e) for e in failed), hint=first.hint)
