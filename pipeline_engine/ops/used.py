"""Which outs the workspace references (pointers, and stage outs from pipeline.lock)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline_engine.core.record import PathRecord
from pipeline_engine.ops.pointers import resolve_pointers
from pipeline_engine.ops.stages import lock_outs
from pipeline_engine.project import Project

__all__ = ["used_outs"]


def used_outs(project: Project, *, targets: Sequence[str] = ()) -> list[PathRecord]:
    """Every out that pointer files (and the lock file) of the workspace reference.

    `PathRecord.path` is project-relative.
    """
    stage_outs, rest = lock_outs(project, targets)
    outs = [] if targets and not rest else [
        PathRecord(p.data_relpath, p.out.oid, p.out.size, p.out.nfiles, p.out.isexec)
        for p in resolve_pointers(project, rest)
    ]
    outs += [r for r in stage_outs]
    return outs
