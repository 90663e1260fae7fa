"""`pipe add`: store files or directories in the cache, write their pointers, git-ignore them."""

from __future__ import annotations

import enum
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.cache.link import parse_link_types
from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, read_pointer, write_pointer
from pipeline_engine.cache.workspace import save, scan
from pipeline_engine.core.fsutil import relpath_in
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PathError
from pipeline_engine.ops.pointers import find_pointers
from pipeline_engine.project import CONTROL_DIR, Project

__all__ = ["AddOutcome", "Added", "add", "git_add_command"]


class AddOutcome(enum.Enum):
    """What `add` did to one path."""

    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Added:
    """One added path and its record."""

    relpath: str
    pointer: str
    out: PathRecord
    outcome: AddOutcome


def add(project: Project, paths: Sequence[str], *, progress: Progress | None = None) -> list[Added]:
    """Track `paths`: every path is checked first, so a refusal changes nothing.

    Raises:
        PathError: a path is missing, outside the project, inside `.pipe/`, overlaps a tracked
            path, is tracked by git, or is a symlink pointing outside the project.
    """
    progress = progress or NullProgress()
    with project.mutex(f"pipe add {' '.join(paths)}"):
        relpaths = _validate(project, paths)
        link_types = parse_link_types(project.config.cache_types)
        results = []
        for rel in relpaths:
            scanned = scan(project.root, rel, project.memo, store=project.store, progress=progress)
            out = save(project.store, project.root, scanned, link_types=link_types, memo=project.memo,
                       progress=progress)
            results.append(_record(project, rel, out))
        return results


def _record(project: Project, rel: str, out: PathRecord) -> Added:
    pointer_rel = rel + POINTER_SUFFIX
    name = rel.rpartition("/")[2]
    pointer = Pointer(pointer_rel, PathRecord(name, out.oid, out.size, out.nfiles, out.isexec))
    outcome = AddOutcome.ADDED
    if (project.root / pointer_rel).exists():
        old = read_pointer(project.root, pointer_rel)
        outcome = AddOutcome.UNCHANGED if old.out == pointer.out else AddOutcome.UPDATED
    if outcome is not AddOutcome.UNCHANGED:
        write_pointer(project.root, pointer)
    if project.git is not None:
        project.git.ignore(project.relpath_from_git(rel))
    return Added(rel, pointer_rel, out, outcome)


def git_add_command(project: Project, results: Sequence[Added]) -> str | None:
    """The shell-quoted `git add ...` that stages the pointers and .gitignore files of `results`.

    None when `add` changed nothing or the project does not use git. Paths are relative to the
    current directory and quoted for a POSIX shell (`'scan[1].csv.pipe'`), so the command can be
    pasted as is.
    """
    if project.git is None or all(r.outcome is AddOutcome.UNCHANGED for r in results):
        return None
    ignores = {f"{r.relpath.rpartition('/')[0]}/.gitignore".lstrip("/") for r in results}
    paths = [os.path.relpath(project.root / p) for p in [*(r.pointer for r in results), *sorted(ignores)]]
    return "git add " + " ".join(shlex.quote(p) for p in paths)


def _validate(project: Project, paths: Sequence[str]) -> list[str]:
    if not paths:
        raise PathError("nothing to add: name at least one file or directory")
    tracked = [p.data_relpath for p in find_pointers(project)]
    stage_outs = _stage_outs(project)
    chosen: list[str] = []
    for path in paths:
        rel = _check_one(project, path)
        for out, stage in stage_outs.items():
            if rel == out or rel.startswith(out + "/") or out.startswith(rel + "/"):
                raise PathError(
                    f"'{rel}' overlaps '{out}', an out of stage '{stage}'; pipe caches it when the stage runs",
                    hint=f"run 'pipe commit {stage}' to record the current outputs of '{stage}'",
                )
        for other in (*tracked, *chosen):
            if rel != other and (rel.startswith(other + "/") or other.startswith(rel + "/")):
                raise PathError(
                    f"'{rel}' overlaps '{other}', which is already tracked",
                    hint="track either the directory or the files inside it, not both",
                )
        if rel not in chosen:
            chosen.append(rel)
    _refuse_git_tracked(project, chosen)
    return chosen


def _stage_outs(project: Project) -> dict[str, str]:
    """Out path -> stage name for every stage of pipeline.yaml (empty without one)."""
    from pipeline_engine.pipeline.spec import PIPELINE_FILE, load_spec

    if not (project.root / PIPELINE_FILE).is_file():
        return {}
    spec = load_spec(project.root)
    return {o.path: name for name, stage in spec.stages.items() for o in stage.outs}


def _check_one(project: Project, path: str) -> str:
    rel = relpath_in(project.root, path)
    if rel == "":
        raise PathError("cannot add the project root itself; add its data files or directories")
    first = rel.split("/")[0]
    if first in (CONTROL_DIR, ".git"):
        raise PathError(f"'{rel}' is inside '{first}/', which pipe and git manage")
    if rel.endswith(POINTER_SUFFIX):
        raise PathError(f"'{rel}' is a pointer file; add the data path it names instead")
    _check_name(project, rel)
    absolute = project.root / rel
    if absolute.is_symlink():
        target = Path(os.path.realpath(absolute))
        # A link into the cache (cache.type: symlink, the cache possibly outside) is that object.
        in_cache = target.is_relative_to(project.store.root.resolve())
        if not target.is_relative_to(project.root.resolve()) and not in_cache:
            raise PathError(f"'{rel}' is a symlink pointing outside the project ('{target}')")
    if not absolute.exists():
        raise PathError(f"'{rel}' does not exist")
    return rel


def _check_name(project: Project, rel: str) -> None:
    """Refuse names pipe could not track whole: a control character, or a pointer name past NAME_MAX.

    A newline or carriage return cannot be matched by any .gitignore line (the data would be
    committed by `git add -A`), and pointer files refuse control characters on reading.
    """
    if any(ord(c) < 32 or c == "\x7f" for c in rel):
        shown = rel.encode("unicode_escape").decode("ascii")
        raise PathError(
            f"'{shown}' contains a newline or another control character: git cannot ignore it exactly "
            "and pointer files cannot name it",
            hint="rename it without control characters, then 'pipe add' it",
        )
    parent, _, name = rel.rpartition("/")
    try:
        limit = os.pathconf(project.root / parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    pointer_name = os.fsencode(name + POINTER_SUFFIX)
    if len(pointer_name) > limit:
        raise PathError(
            f"'{rel}': file name too long: its pointer '{name}{POINTER_SUFFIX}' would have a "
            f"{len(pointer_name)}-byte name, longer than the {limit} bytes this filesystem allows",
            hint=f"rename it to at most {limit - len(POINTER_SUFFIX)} bytes, then 'pipe add' it",
        )


def _refuse_git_tracked(project: Project, relpaths: Sequence[str]) -> None:
    if project.git is None:
        return
    for rel in relpaths:
        files = project.git.tracked_under(project.relpath_from_git(rel))
        if files:
            raise PathError(
                f"'{rel}' is tracked by git ({len(files)} file(s)); pipe cannot also track it",
                hint=f"run 'git rm -r --cached {rel}' first, then 'pipe add {rel}'",
            )
