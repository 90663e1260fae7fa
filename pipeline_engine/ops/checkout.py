"""`pipe checkout`: make tracked workspace paths match their pointers, from the cache."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline_engine.cache.link import parse_link_types
from pipeline_engine.cache.pointer import POINTER_SUFFIX
from pipeline_engine.cache.workspace import CheckoutResult
from pipeline_engine.cache.workspace import checkout as checkout_path
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
from pipeline_engine.ops.pointers import deleted_pointers, deleted_pointers_error
from pipeline_engine.ops.used import used_outs
from pipeline_engine.project import Project

__all__ = ["checkout", "checkout_outs"]

_SHOWN = 10


def checkout(
    project: Project,
    targets: Sequence[str] = (),
    *,
    force: bool = False,
    relink: bool = False,
    progress: Progress | None = None,
) -> list[CheckoutResult]:
    """Check out every out referenced by `targets` (all when empty).

    Every path that can be checked out is; the failures are raised together at the end.

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
            results = checkout_outs(project, used_outs(project, targets=targets), force=force,
                                    relink=relink, progress=progress)
        except PipeError as exc:
            if gone:
                raise _combined([exc, deleted_pointers_error(project, gone)]) from None
            raise
        if gone:
            raise deleted_pointers_error(project, gone)
        return results


def checkout_outs(
    project: Project,
    outs: Sequence[PathRecord],
    *,
    force: bool = False,
    relink: bool = False,
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
        except (CheckoutError, CacheError, PathError) as exc:
            failed.append(exc)
            continue
        results.append(result)
        if project.git is not None and not _inside_tracked_dir(project, out.path):
            project.git.ignore(project.relpath_from_git(out.path))
    missing = [pair for r in results for pair in r.missing]
    if missing:
        failed.insert(0, ObjectNotFoundError(
            f"{len(missing)} file(s) not checked out: their objects are not in the cache: {_listed(missing)}",
            hint="run 'pipe pull' to fetch them",
        ))
    corrupt = [pair for r in results for pair in r.corrupt]
    if corrupt:
        failed.insert(0, _corrupt_error(project, corrupt))
    if failed:
        raise _combined(failed)
    return results


def _inside_tracked_dir(project: Project, rel: str) -> bool:
    """True for a path inside a directory a pointer tracks (a granular target): its directory is ignored."""
    parts = rel.split("/")
    return any((project.root / ("/".join(parts[:i]) + POINTER_SUFFIX)).is_file() for i in range(1, len(parts)))


def _listed(pairs: Sequence[tuple[str, str]]) -> str:
    listed = "; ".join(f"'{path}' (object '{oid}')" for path, oid in pairs[:_SHOWN])
    return listed + (f"; ... and {len(pairs) - _SHOWN} more" if len(pairs) > _SHOWN else "")


def _corrupt_error(project: Project, corrupt: Sequence[tuple[str, str]]) -> CorruptObjectError:
    quarantine = project.store.root.parent / "quarantine"
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
