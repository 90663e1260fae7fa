"""`pipe remove`: stop tracking paths (delete their pointers and ignore entries, optionally the data)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline_engine.cache.pointer import POINTER_SUFFIX, read_pointer
from pipeline_engine.core.fsutil import relpath_in, remove_path
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.errors import CheckoutError, PathError
from pipeline_engine.index.outs import is_cached, record_of
from pipeline_engine.project import Project

__all__ = ["Removed", "remove"]


@dataclass(frozen=True, slots=True)
class Removed:
    """One pointer removed, and whether its data went too."""

    pointer: str
    path: str
    data_deleted: bool


def remove(project: Project, pointers: Sequence[str], *, outs: bool = False, force: bool = False) -> list[Removed]:
    """Remove pointer files; with `outs`, delete the tracked data as well (it stays in the cache).

    Data whose current content is not in the cache (changed since `pipe add`) would be lost:
    unless `force`, it is refused, as checkout refuses (DVC deletes it silently).

    Raises:
        PathError: a name is not a pointer file, or its data path fails the path gate.
        CheckoutError: with `outs`, a path's content is not in the cache and `force` is false.
            Every name is checked before anything is removed.
    """
    with project.mutex("pipe remove"):
        loaded = []
        for name in pointers:
            rel = relpath_in(project.root, name)
            if not rel.endswith(POINTER_SUFFIX):
                rel += POINTER_SUFFIX
            if not (project.root / rel).is_file():
                raise PathError(f"'{name}' is not a pointer file", hint="pointer files end in '.pipe'")
            pointer = read_pointer(project.root, rel)
            data = resolve_in_project(project.root, pointer.data_relpath, source=rel) if outs else None
            if data is not None and not force:
                _refuse_losses(project, pointer.data_relpath, rel)
            loaded.append((pointer, data))
        results = []
        for p, data in loaded:
            if data is not None:
                remove_path(data)
            os.unlink(project.root / p.relpath)
            project.memo.drop_placed([p.data_relpath])  # the data is the user's now: checkout never deletes it
            if project.git is not None:
                project.git.unignore(project.relpath_from_git(p.data_relpath))
            results.append(Removed(p.relpath, p.data_relpath, outs))
        return results


def _refuse_losses(project: Project, relpath: str, pointer: str) -> None:
    """Refuse to delete `relpath` when its current content is not in the cache (it exists nowhere else)."""
    current = record_of(project, relpath)
    if current is not None and not is_cached(project, current.oid):
        raise CheckoutError(
            f"'{relpath}' has changes that are not in the cache; 'pipe remove --outs' would delete them",
            hint=f"run 'pipe add {relpath}' to keep them first, or 'pipe remove --outs --force {pointer}' "
            "to delete them",
        )
