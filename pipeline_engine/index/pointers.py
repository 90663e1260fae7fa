"""Find the pointer files of a project (and those deleted from the workspace but still in git's index)."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, read_pointer
from pipeline_engine.core.fsutil import special_kind
from pipeline_engine.errors import PathError
from pipeline_engine.project import CONTROL_DIR, Project

__all__ = ["deleted_pointers", "deleted_pointers_error", "find_pointers", "pointer_files"]


def find_pointers(project: Project) -> list[Pointer]:
    """Every pointer file in the project, sorted by path.

    In a git project, git lists them (tracked or not ignored), which skips ignored data
    directories for free; without git, the walk prunes `.git`, `.pipe` and tracked directories.
    """
    return [read_pointer(project.root, n) for n in pointer_files(project)]


def pointer_files(project: Project, *, every: bool = False) -> list[str]:
    """The project-relative paths of every pointer file, sorted, without reading them (see find_pointers).

    `every` also walks the filesystem for pointers git does not list (git-ignored ones, those
    inside a nested repository): gc must keep their data even though other commands skip them.
    """
    names = _git_pointer_files(project.root) if project.git is not None else None
    if names is None or every:
        names = [*(names or ()), *_walk_pointer_files(project.root)]
    return sorted(set(names))


def deleted_pointers(project: Project) -> list[str]:
    """Pointer files in git's index that are gone from the workspace (sorted, project-relative).

    They are never restored silently: the index may hold an older version than the user's last
    `pipe add`, so the user decides (`git checkout -- X.pipe`, or `git rm --cached X.pipe`).
    """
    if project.git is None:
        return []
    gone = []
    for rel in _git_ls(project.root, "--cached") or []:
        path = project.root / rel
        if not (path.exists() or path.is_symlink()):
            gone.append(rel)
    return sorted(gone)


def deleted_pointers_error(project: Project, pointers: Sequence[str]) -> PathError:
    """The error naming deleted pointer files and the git command that restores them."""
    shown = [os.path.relpath(project.root / p) for p in pointers]
    listed = ", ".join(f"'{p}'" for p in shown[:10]) + (f" ... and {len(shown) - 10} more" if len(shown) > 10 else "")
    quoted = " ".join(shlex.quote(p) for p in shown)
    return PathError(
        f"{len(pointers)} pointer file(s) deleted from the workspace (still in git's index): {listed}; "
        "their data was not checked out",
        hint=f"run 'git checkout -- {quoted}' to restore the committed version, then 'pipe checkout' "
        f"(or 'git rm --cached {quoted}' to stop tracking)",
    )


def _git_pointer_files(root: Path) -> list[str] | None:
    listed = _git_ls(root, "--cached", "--others", "--exclude-standard")
    if listed is None:
        return None
    # Anything there but a directory: a pointer replaced by a FIFO is refused by name when read, never
    # taken for a deleted pointer (whose data checkout would then remove as untracked).
    return [p for p in listed if (root / p).is_file() or _is_special(root / p)]


def _is_special(path: Path) -> bool:
    try:
        return bool(special_kind(os.lstat(path).st_mode))
    except OSError:
        return False


def _git_ls(root: Path, *flags: str) -> list[str] | None:
    proc = subprocess.run(
        ["git", "ls-files", "-z", *flags, "--", f"*{POINTER_SUFFIX}"],
        cwd=root, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        return None
    return [p for p in proc.stdout.split("\0") if p]


def _walk_pointer_files(root: Path) -> list[str]:
    found: list[str] = []
    stack = [(root, "")]
    while stack:
        path, prefix = stack.pop()
        with os.scandir(path) as it:
            entries = list(it)
        names = {e.name for e in entries}
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                # .git and .pipe hold no pointers, and a tracked directory (beside its X.pipe) none either.
                if e.name in (".git", CONTROL_DIR) or e.name + POINTER_SUFFIX in names:
                    continue
                stack.append((Path(e.path), f"{prefix}{e.name}/"))
            elif e.name.endswith(POINTER_SUFFIX) and (e.is_file() or _is_special(Path(e.path))):
                found.append(prefix + e.name)
    return found
