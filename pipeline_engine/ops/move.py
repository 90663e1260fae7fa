"""`pipe move SRC DST`: rename data tracked by a pointer file, with its pointer and ignore entries
(DVC's `dvc move`)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, read_pointer, write_pointer
from pipeline_engine.core.fsutil import relpath_in
from pipeline_engine.core.pathgate import check_not_own_file, check_relpath, resolve_in_project
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PathError
from pipeline_engine.index.pointers import find_pointers
from pipeline_engine.ops.add import stage_outs
from pipeline_engine.project import Project

__all__ = ["Moved", "git_add_command", "move"]


@dataclass(frozen=True, slots=True)
class Moved:
    """Data moved from `src` to `dst` (project-relative), and its pointer from `old` to `new`."""

    src: str
    dst: str
    old: str
    new: str


def move(project: Project, src: str, dst: str) -> Moved:
    """Move the data tracked by `src`'s pointer file to `dst` and rename the pointer to match.

    `src` and `dst` are paths from the current directory; a `dst` that is an existing directory
    receives the data under its own name, as `mv` and `dvc move` do. The pointer keeps its record
    (the content is unchanged), with the new name; the ignore entry follows the data and the hash
    memo's record of what pipe placed follows it too. Data missing from the workspace is fine:
    only the pointer moves, and `pipe checkout` puts the data at the new place.

    Raises:
        PathError: `src` is not tracked by a pointer file (a stage's out is moved by editing
            pipeline.yaml), `dst` or its pointer exists already, or a path leaves the project.
        SpecError: the pointer file is not valid.
    """
    with project.mutex("pipe move"):
        root = project.root
        src_rel = check_relpath(relpath_in(root, src), source=src)
        if src_rel.endswith(POINTER_SUFFIX):
            src_rel = src_rel[: -len(POINTER_SUFFIX)]
        old_rel = src_rel + POINTER_SUFFIX
        if not (root / old_rel).is_file():
            raise PathError(f"'{src}' is not tracked by a pointer file ({old_rel})",
                            hint=f"track it first with 'pipe add {src}'; a stage's out moves by editing pipeline.yaml")
        pointer = read_pointer(root, old_rel)
        src_rel = pointer.data_relpath
        dst_rel = check_relpath(relpath_in(root, dst), source=dst)
        target = resolve_in_project(root, dst_rel, source=dst)
        if dst.endswith(("/", os.sep)) and not target.is_dir():
            raise PathError(f"'{dst}' is not a directory", hint=f"create it first ('mkdir {dst}'), or name the new path")
        if target.is_dir() and not target.is_symlink() and not (root / (dst_rel + POINTER_SUFFIX)).exists():
            dst_rel = f"{dst_rel}/{src_rel.rpartition('/')[2]}" if dst_rel else src_rel.rpartition("/")[2]
        check_not_own_file(dst_rel, source=dst)
        new_rel = dst_rel + POINTER_SUFFIX
        for taken in (dst_rel, new_rel):
            if os.path.lexists(root / taken):
                raise PathError(f"'{taken}' already exists", hint="choose another destination, or remove it first")
        _check_overlap(project, dst_rel, moving=src_rel)
        data = resolve_in_project(root, src_rel, source=old_rel)
        dest = resolve_in_project(root, dst_rel, source=dst)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(data):
            os.rename(data, dest)
        out = pointer.out
        moved = Pointer(new_rel, PathRecord(dst_rel.rpartition("/")[2], out.oid, out.size, out.nfiles, out.isexec),
                        pointer.repo, pointer.annotations, pointer.meta)
        write_pointer(root, moved)
        os.unlink(root / old_rel)
        placed = project.memo.placed().get(src_rel)
        project.memo.drop_placed([src_rel])
        if placed is not None:
            project.memo.put_placed([(dst_rel, placed)])
        if project.git is not None:
            project.git.unignore(project.relpath_from_git(src_rel))
            project.git.ignore(project.relpath_from_git(dst_rel))
        return Moved(src_rel, dst_rel, old_rel, new_rel)


def _check_overlap(project: Project, dst_rel: str, *, moving: str) -> None:
    """Refuse a destination inside the data moved, or inside (or holding) other tracked data or a stage's
    out: `pipe add` refuses the same overlap, and status would count the moved data as added there."""
    if dst_rel.startswith(moving + "/"):
        raise PathError(f"cannot move '{moving}' into itself ('{dst_rel}')", hint="choose a destination outside it")
    owners = {p.data_relpath: f"tracked by {p.relpath}" for p in find_pointers(project) if p.data_relpath != moving}
    owners.update((out, f"an out of stage '{stage}'") for out, stage in stage_outs(project).items())
    for other, owner in owners.items():
        if dst_rel == other or dst_rel.startswith(other + "/") or other.startswith(dst_rel + "/"):
            raise PathError(f"'{dst_rel}' overlaps '{other}' ({owner})",
                            hint="choose a destination outside tracked data and stage outs")


def git_add_command(project: Project, moved: Moved) -> str | None:
    """The shell-quoted `git add -A ...` staging the move: the new pointer, the old one (when git
    tracks it) and both .gitignore files; paths from the current directory. None without git."""
    if project.git is None:
        return None
    old = [moved.old] if project.git.tracked_under(project.relpath_from_git(moved.old)) else []
    ignores = sorted({f"{p.rpartition('/')[0]}/.gitignore".lstrip("/") for p in (moved.src, moved.dst)})
    paths = [os.path.relpath(project.root / p) for p in [moved.new, *old, *ignores]
             if p in old or os.path.lexists(project.root / p)]
    return "git add -A -- " + " ".join(shlex.quote(p) for p in paths)
