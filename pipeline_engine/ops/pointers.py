"""Find the pointer files of a project and resolve user targets to them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, read_pointer
from pipeline_engine.core.fsutil import atomic_write, relpath_in
from pipeline_engine.core.pathgate import check_relpath, resolve_in_project
from pipeline_engine.errors import PathError
from pipeline_engine.project import CONTROL_DIR, Project

__all__ = ["find_pointers", "pointer_files", "resolve_pointers", "restore_deleted_pointers"]


def find_pointers(project: Project) -> list[Pointer]:
    """Every pointer file in the project, sorted by path.

    In a git project, git lists them (tracked or not ignored), which skips ignored data
    directories for free; without git, the walk prunes `.git`, `.pipe` and tracked directories.
    """
    return [read_pointer(project.root, n) for n in pointer_files(project)]


def pointer_files(project: Project) -> list[str]:
    """The project-relative paths of every pointer file, sorted, without reading them (see find_pointers)."""
    names = _git_pointer_files(project.root) if project.git is not None else None
    if names is None:
        names = _walk_pointer_files(project.root)
    return sorted(set(names))


def resolve_pointers(project: Project, targets: Sequence[str]) -> list[Pointer]:
    """Pointers for `targets` (data paths or pointer files); all pointers when none given.

    A directory target selects every pointer under it.

    Raises:
        PathError: a target is outside the project or tracks nothing.
    """
    pointers = find_pointers(project)
    if not targets:
        return pointers
    chosen: dict[str, Pointer] = {}
    for target in targets:
        rel = relpath_in(project.root, target)
        matched = [
            p for p in pointers
            if rel in ("", p.relpath, p.data_relpath) or p.data_relpath.startswith(rel + "/")
        ]
        if not matched:
            raise PathError(
                f"'{target}' is not tracked by any pointer file", hint=f"run 'pipe add {target}' to track it"
            )
        chosen.update((p.relpath, p) for p in matched)
    return [chosen[k] for k in sorted(chosen)]


def restore_deleted_pointers(project: Project) -> list[str]:
    """Bring back pointer files deleted from the workspace but still in git's index.

    `rm -rf data && pipe checkout` then restores the data as well as its pointers, as a user
    expects; a pointer removed with `git rm` (or `pipe remove`) is not in the index and stays gone.
    """
    if project.git is None:
        return []
    restored = []
    for rel in _git_ls(project.root, "--cached") or []:
        if _restore_from_index(project.root, rel):
            restored.append(rel)
            # Its .gitignore went with it; the committed one keeps the user's order and entries.
            parent = rel.rpartition("/")[0]
            _restore_from_index(project.root, f"{parent}/.gitignore" if parent else ".gitignore")
    return restored


def _restore_from_index(root: Path, rel: str) -> bool:
    # The index is as untrusted as any commit: a name it lists is written only through the gate.
    path = resolve_in_project(root, check_relpath(rel, source="git index"), source="git index")
    if path.exists() or path.is_symlink():
        return False
    proc = subprocess.run(["git", "show", f":./{rel}"], cwd=root, capture_output=True, check=False)
    if proc.returncode != 0:
        return False
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(root / rel, proc.stdout)
    return True


def _git_pointer_files(root: Path) -> list[str] | None:
    listed = _git_ls(root, "--cached", "--others", "--exclude-standard")
    if listed is None:
        return None
    return [p for p in listed if (root / p).is_file()]


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
            elif e.name.endswith(POINTER_SUFFIX) and e.is_file():
                found.append(prefix + e.name)
    return found
