"""Which existing outs a stage's run may delete, and where the others go: data that exists nowhere else is never lost.

Running a stage deletes its outs first, and restoring one overwrites them. An out the stage's lock
entry records is the stage's own product (rerun when modified, DESIGN.md §3 rule 6). An out it
does not record (the stage never ran, or the out is new to it) may be the user's only copy: it may
go when its content is in the cache or committed to git unchanged, or when pipe itself cleared
that path for an earlier run of the stage that did not finish (failed, interrupted, killed: what
is there now is that run's partial output). Otherwise it is moved (one rename, no copy) to
`.pipe/backup/<UTC time>/<out path>` and the run goes on, as DVC's does; the stage's output says
where it went. DVC deletes such outs silently (`Stage.remove_outs`); refusing the run instead would
break projects that work unchanged under DVC, deleting loses the only copy.

That last fact is a mark in `.pipe/tmp/cleared/`: one small JSON file per stage (named by a digest
of the stage name) listing the outs cleared, written before they are deleted and removed once the
stage's run is recorded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from pipeline_engine.core.fsutil import atomic_write, make_parents
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import tmp_dir
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CheckoutError
from pipeline_engine.index.outs import is_cached
from pipeline_engine.pipeline.lock import StageLock
from pipeline_engine.pipeline.spec import StageSpec
from pipeline_engine.project import Project

__all__ = ["BACKUP_DIR", "forget_cleared", "mark_cleared", "set_aside_losses"]

#: Where outs that exist nowhere else are moved before a run replaces them (under the control directory).
BACKUP_DIR = "backup"


def set_aside_losses(project: Project, stage: StageSpec, old: StageLock | None,
                     outs: Mapping[str, PathRecord | None]) -> list[str]:
    """Move aside each out of `stage` whose content exists nowhere else (module docstring);
    returns one line per out moved, naming it and where it went (for the stage's output).

    `old`: the stage's lock entry; `outs`: the outs' current records (None: absent).

    Raises:
        CheckoutError: an out cannot be moved (another filesystem, permissions): naming the stage,
            the path and the commands that proceed; nothing of that out was deleted.
    """
    recorded = {r.path for r in old.outs} if old is not None else set()
    cleared: frozenset[str] | None = None
    git = project.git
    moved: list[str] = []
    stamp = ""
    for out in stage.outs:
        current = outs.get(out.path)
        if current is None or out.persist or out.path in recorded or is_cached(project, current.oid):
            continue
        if cleared is None:
            cleared = _cleared(project, stage.name)
        if out.path in cleared:
            continue
        if git is not None and git.is_committed(project.relpath_from_git(out.path)):
            continue
        stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = _free_path(project.control_dir / BACKUP_DIR / stamp / out.path)
        try:
            make_parents(target)
            _ignore_in_git(project.control_dir / BACKUP_DIR)
            os.rename(project.root / out.path, target)
        except OSError as exc:
            which = "never ran, and its out" if old is None else "has never recorded its out"
            raise CheckoutError(
                f"stage '{stage.name}' {which} '{out.path}' already exists with content that is not in the "
                f"cache, and it cannot be moved aside to '{target}': {exc.strerror or exc}",
                hint=f"run 'pipe commit {stage.name}' to record it as the stage's out, or move it away",
            ) from exc
        moved.append(f"pipe: '{out.path}' was not made by stage '{stage.name}' and is not in the cache: "
                     f"moved to '{target.relative_to(project.root).as_posix()}' before the run replaces it")
    return moved


def _ignore_in_git(backup: Path) -> None:
    """Backups are never committed by accident: the directory ignores itself (projects made before
    it existed lack it in .pipe/.gitignore)."""
    ignore = backup / ".gitignore"
    if not ignore.exists():
        atomic_write(ignore, "*\n", fsync=False)


def _free_path(path: Path) -> Path:
    """`path`, or `path.1`, `path.2`, ...: the first that does not exist (two runs in one second)."""
    candidate, n = path, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def mark_cleared(project: Project, stage: StageSpec) -> None:
    """Remember that pipe is about to clear the outs of `stage` for a run (before deleting any)."""
    path = _mark_path(project, stage.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"stage": stage.name, "outs": [o.path for o in stage.outs]}), fsync=False)


def forget_cleared(project: Project, name: str) -> None:
    """The run of stage `name` is recorded (or its outs restored): its outs are in the lock now."""
    _mark_path(project, name).unlink(missing_ok=True)


def _cleared(project: Project, name: str) -> frozenset[str]:
    """The outs pipe cleared for an unfinished run of stage `name` (a mark pipe wrote; unreadable: none)."""
    try:
        data = json.loads(_mark_path(project, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    if not isinstance(data, dict) or data.get("stage") != name or not isinstance(data.get("outs"), list):
        return frozenset()
    return frozenset(p for p in data["outs"] if isinstance(p, str))


def _mark_path(project: Project, name: str) -> Path:
    return tmp_dir(project.control_dir) / "cleared" / f"{hash_bytes(name.encode('utf-8'))}.json"
