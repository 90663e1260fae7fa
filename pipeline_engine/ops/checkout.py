"""`pipe checkout`: make tracked workspace paths match their pointers, from the cache."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline_engine.cache.link import parse_link_types
from pipeline_engine.cache.workspace import CheckoutResult
from pipeline_engine.cache.workspace import checkout as checkout_path
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CheckoutError
from pipeline_engine.ops.pointers import restore_deleted_pointers
from pipeline_engine.ops.used import used_outs
from pipeline_engine.project import Project

__all__ = ["checkout", "checkout_outs"]


def checkout(
    project: Project,
    targets: Sequence[str] = (),
    *,
    force: bool = False,
    relink: bool = False,
    progress: Progress | None = None,
) -> list[CheckoutResult]:
    """Check out every out referenced by `targets` (all when empty).

    Raises:
        CheckoutError: a path has uncached changes and `force` is false (that path is untouched;
            the others are still checked out, and the error names every refused path).
        ObjectNotFoundError: objects are missing from the cache ('pipe pull' fetches them).
    """
    with project.mutex("pipe checkout"):
        restore_deleted_pointers(project)
        return checkout_outs(project, used_outs(project, targets=targets), force=force, relink=relink,
                             progress=progress)


def checkout_outs(
    project: Project,
    outs: Sequence[PathRecord],
    *,
    force: bool = False,
    relink: bool = False,
    progress: Progress | None = None,
) -> list[CheckoutResult]:
    """Check out `outs` (project-relative records); the caller holds the project mutex."""
    link_types = parse_link_types(project.config.cache_types)
    results: list[CheckoutResult] = []
    refused: list[CheckoutError] = []
    for out in outs:
        try:
            results.append(
                checkout_path(project.store, project.root, out.path, out.oid, project.memo, link_types=link_types,
                              force=force, relink=relink, progress=progress or NullProgress())
            )
        except CheckoutError as exc:
            refused.append(exc)
            continue
        if project.git is not None:
            project.git.ignore(project.relpath_from_git(out.path))
    if refused:
        message = "; ".join(str(e) for e in refused)
        raise CheckoutError(message, hint=refused[0].hint)
    return results
