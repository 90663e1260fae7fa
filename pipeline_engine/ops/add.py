"""`pipe add`: store files or directories in the cache, write their pointers, git-ignore them."""

from __future__ import annotations

import enum
import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.cache.link import parse_link_types
from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, read_pointer, write_pointer
from pipeline_engine.cache.workspace import save, scan
from pipeline_engine.core.fsutil import atomic_write, ignore_rule, relpath_in, remove_path
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PathError
from pipeline_engine.index.pointers import find_pointers
from pipeline_engine.project import CONTROL_DIR, Project

__all__ = ["AddOutcome", "Added", "add", "git_add_command", "stage_outs"]


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
    """Track `paths`, all or nothing: every path is checked, hashed and stored before the first
    pointer is written, and a failure while writing them puts back the pointers and .gitignore
    files already changed. (A failure leaves only objects in the cache, which gc collects.)

    Raises:
        PathError: a path is missing, outside the project, inside `.pipe/`, one of pipe's own files
            (pipeline.yaml, pipeline.lock, a params file, a pointer), reached through a symlinked
            directory, overlaps a tracked path, is tracked by git, is a symlink pointing outside
            the project, or its new pointer would be ignored by git (the rule is named).
    """
    progress = progress or NullProgress()
    with project.mutex(f"pipe add {' '.join(paths)}"):
        relpaths = _validate(project, paths)
        link_types = parse_link_types(project.config.cache_types)
        outs = []
        for rel in relpaths:
            # ingest: new files are copied into the cache as they are hashed (read once)
            scanned = scan(project.root, rel, project.memo, store=project.store, progress=progress, ingest=True)
            outs.append(save(project.store, project.root, scanned, link_types=link_types, memo=project.memo,
                             progress=progress))
        touched = [p for rel in relpaths
                   for p in (rel + POINTER_SUFFIX, f"{rel.rpartition('/')[0]}/.gitignore".lstrip("/"))]
        before = {p: _read_or_none(project.root / p) for p in touched}
        try:
            results = [_record(project, rel, out) for rel, out in zip(relpaths, outs, strict=True)]
        except BaseException:
            for p, data in before.items():
                if data is None:
                    remove_path(project.root / p)
                elif _read_or_none(project.root / p) != data:
                    atomic_write(project.root / p, data)
            raise
        # pipe now holds this content: a checkout after a branch switch may remove it (docs/format.md).
        project.memo.put_placed((r.relpath, r.out.oid) for r in results)
        return results


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _record(project: Project, rel: str, out: PathRecord) -> Added:
    pointer_rel = rel + POINTER_SUFFIX
    name = rel.rpartition("/")[2]
    pointer = Pointer(pointer_rel, PathRecord(name, out.oid, out.size, out.nfiles, out.isexec))
    outcome = AddOutcome.ADDED
    if (project.root / pointer_rel).exists():
        old = read_pointer(project.root, pointer_rel)
        pointer = pointer.annotated(old)  # its desc, labels, meta ... stay (as DVC's re-add keeps them)
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
    outs = stage_outs(project)
    chosen: list[str] = []
    for path in paths:
        rel = _check_one(project, path)
        for out, stage in outs.items():
            if rel == out or rel.startswith(out + "/") or out.startswith(rel + "/"):
                raise PathError(
                    f"'{rel}' overlaps '{out}', an out of stage '{stage}'; pipe caches it when the stage runs",
                    hint=f"run 'pipe commit {stage}' to record the current outputs of '{stage}'",
                )
        for other in (*tracked, *chosen):
            if rel != other and rel.startswith(other + "/"):
                raise PathError(
                    f"'{rel}' is inside '{other}', which is already tracked",
                    hint=f"run 'pipe add {shlex.quote(other)}' to record the changes inside it",
                )
            if rel != other and other.startswith(rel + "/"):
                raise PathError(
                    f"'{rel}' overlaps '{other}', which is already tracked",
                    hint=f"to track '{other}' as part of '{rel}', run 'pipe remove {shlex.quote(other + POINTER_SUFFIX)}' "
                    f"and then 'pipe add {shlex.quote(rel)}'",
                )
        if rel not in chosen:
            chosen.append(rel)
    _refuse_git_tracked(project, chosen)
    _refuse_ignored_pointers(project, chosen)
    return chosen


def _own_files(project: Project) -> dict[str, str]:
    """pipe's own files, which are never data: path -> what it is."""
    from pipeline_engine.pipeline.lock import LOCK_FILE
    from pipeline_engine.pipeline.params import PARAMS_FILE
    from pipeline_engine.pipeline.spec import PIPELINE_FILE, load_spec

    own = {PIPELINE_FILE: "the pipeline file", LOCK_FILE: "the lock file", PARAMS_FILE: "a params file"}
    if (project.root / PIPELINE_FILE).is_file():
        spec = load_spec(project.root)
        own.update((p.path, "a params file") for stage in spec.stages.values() for p in stage.params)
    return own


def _refuse_ignored_pointers(project: Project, relpaths: Sequence[str]) -> None:
    """A pointer git would ignore is never committed: its data would be lost to every clone."""
    if project.git is None or not relpaths:
        return
    pointers = [project.relpath_from_git(r + POINTER_SUFFIX) for r in relpaths]
    proc = subprocess.run(
        ["git", "check-ignore", "-v", "-z", "--stdin"], input="\0".join(pointers) + "\0",
        cwd=project.git.root, capture_output=True, text=True, check=False,
    )
    fields = proc.stdout.split("\0")
    # -z -v: source, line number, pattern, path; a pattern starting with '!' (a negation) matched last.
    for i in range(0, len(fields) - 3, 4):
        source, line, pattern, path = fields[i:i + 4]
        if pattern.startswith("!"):
            continue
        raise PathError(
            f"'{path}' would be ignored by git ({source}:{line}: '{pattern}'), so the pointer of the data "
            "could not be committed",
            hint=f"change that rule (e.g. add '!{path.rpartition('/')[2]}' after it in {source}), "
            "then run 'pipe add' again",
        )


def stage_outs(project: Project) -> dict[str, str]:
    """Out path -> stage name for every stage of pipeline.yaml (empty without one)."""
    from pipeline_engine.pipeline.spec import PIPELINE_FILE, load_spec

    if not (project.root / PIPELINE_FILE).is_file():
        return {}
    spec = load_spec(project.root)
    return {o.path: name for name, stage in spec.stages.items() for o in stage.outs}


def _check_one(project: Project, path: str) -> str:
    if "://" in path and not os.path.lexists(path):  # DVC refuses external outputs too
        raise PathError(f"'{path}' is a URL; pipe add tracks files and directories inside the project",
                        hint="download it into the project first, then 'pipe add' it")
    rel = relpath_in(project.root, path)
    if rel == "":
        raise PathError("cannot add the project root itself; add its data files or directories")
    first = rel.split("/")[0]
    if first in (CONTROL_DIR, ".git"):
        raise PathError(f"'{rel}' is inside '{first}/', which pipe and git manage")
    if rel.endswith(POINTER_SUFFIX):
        raise PathError(f"'{rel}' is a pointer file; add the data path it names instead")
    what = _own_files(project).get(rel)
    if what is not None:
        raise PathError(
            f"'{rel}' is {what} of pipe; git tracks it, pipe does not cache it",
            hint=f"commit it with 'git add {rel}'",
        )
    link = _symlinked_parent(project.root, path)
    if link is not None:
        raise PathError(
            f"'{path}' is reached through the symlinked directory '{link}'; pipe tracks paths as they are "
            "in the project",
            hint=f"add '{rel}' by its real path",
        )
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
    rule = ignore_rule(project.root, rel, isdir=absolute.is_dir())
    if rule is not None:  # as DVC: .pipeignore names what pipe must not track
        raise PathError(f"'{rel}' is ignored by {rule}", hint="remove or negate that rule, then run 'pipe add' again")
    return rel


def _symlinked_parent(root: Path, path: str) -> str | None:
    """The first symlinked directory on the way from the project to `path` (as typed), or None."""
    real_root = os.path.realpath(root)
    p = Path(os.path.normpath(Path.cwd() / path)).parent
    while p != p.parent and os.path.realpath(p) != real_root:
        if p.is_symlink():
            return os.path.relpath(p)
        p = p.parent
    return None


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
    if any("\ud800" <= c <= "\udfff" for c in rel):  # a byte that is not UTF-8 (os.fsdecode's surrogate)
        shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
        raise PathError(
            f"'{shown}' is not a UTF-8 name: pointer and lock files (UTF-8 YAML) cannot name it",
            hint="rename it to UTF-8, then 'pipe add' it",
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
