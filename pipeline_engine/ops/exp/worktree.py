"""An experiment's private workspace: a detached git worktree of its snapshot, with its overrides applied
and its cache pointed at the main project's store, so outs and the run cache are shared.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline_engine.config import LOCAL_CONFIG_FILE, config_file, edit_config, read_config_file
from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.errors import ScmError, SpecError
from pipeline_engine.ops.exp.records import exps_dir
from pipeline_engine.pipeline.overrides import Override, apply_overrides
from pipeline_engine.project import CACHE_USERS_DIR, CONTROL_DIR, Project
from pipeline_engine.scm.exps import add_worktree, remove_worktree

__all__ = ["apply_to_files", "git_root", "open_worktree", "private_paths"]


def git_root(project: Project) -> Path:
    """The git working tree of the project.

    Raises:
        ScmError: the project does not use git (experiments are git commits).
    """
    if project.git is None:
        raise ScmError("experiments need git: this project was initialised with --no-scm",
                       hint="run 'git init' and 'pipe init -f' to use experiments")
    return project.git.root


def private_paths(project: Project) -> tuple[str, ...]:
    """Glob patterns (from the git root) of what an experiment commit never holds, whatever .gitignore says:
    the machine's config with its credentials (`exp push` publishes commits), the cache and `.pipe/tmp`."""
    control = project.relpath_from_git(CONTROL_DIR)
    return (f"{control}/{LOCAL_CONFIG_FILE}", f"{control}/tmp/**", f"{control}/cache/**")


@contextlib.contextmanager
def open_worktree(project: Project, snapshot: str, name: str, overrides: Sequence[Override]) -> Iterator[Project]:
    """Yield the project opened in a fresh worktree of `snapshot`, overrides applied; removed on exit.

    Raises:
        ScmError: git could not make the worktree.
        SpecError: an override names a key its params file lacks (the message names the file).
    """
    root = git_root(project)
    path = exps_dir(project) / "run" / f"{name}-{secrets.token_hex(3)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    add_worktree(root, path, snapshot)
    try:
        prefix = project.root.relative_to(root)
        wt_root = path / prefix
        if not (wt_root / CONTROL_DIR).is_dir():
            raise ScmError(f"the project's {CONTROL_DIR}/ is not committed at {snapshot[:7]}",
                           hint="commit .pipe/config.yaml and .pipe/.gitignore, then run the experiment again")
        _share_cache(project, wt_root)
        apply_to_files(wt_root, overrides)
        wt = Project(wt_root)
        try:
            yield wt
        finally:
            wt.close()
            # opening the shared cache registered the worktree as one of its users (for gc): it goes now
            (project.cache_dir / CACHE_USERS_DIR / hash_bytes(os.fsencode(wt_root))).unlink(missing_ok=True)
    finally:
        remove_worktree(root, path)


def _share_cache(project: Project, wt_root: Path) -> None:
    """The worktree's local config: the main project's, with `cache.dir` set to the main project's cache."""
    main_local: dict[str, Any] = read_config_file(config_file("local", project.control_dir))
    cache_dir = str(project.cache_dir.resolve())

    def change(data: dict[str, Any]) -> None:
        data.update({k: v for k, v in main_local.items() if k != "schema"})
        data["cache"] = {**(data.get("cache") or {}), "dir": cache_dir}

    edit_config(config_file("local", wt_root / CONTROL_DIR), change)


def apply_to_files(root: Path, overrides: Sequence[Override], *, write: bool = True) -> None:
    """Rewrite each params file under `root` with its overrides (only check that they apply unless `write`).

    Raises:
        SpecError: a params file is missing, or lacks a key (the message names the file).
        UnsafePathError: the path gate refuses a file.
    """
    by_file: dict[str, list[Override]] = {}
    for o in overrides:
        by_file.setdefault(o.file, []).append(o)
    for relpath, items in by_file.items():
        path = resolve_in_project(root, relpath, source=f"-S {relpath}", follow=True)
        if not path.is_file():
            raise SpecError(f"-S: params file '{relpath}' does not exist",
                            hint=f"create '{relpath}', or name another file: -S FILE:KEY=VALUE")
        text = apply_overrides(path.read_text(encoding="utf-8"), items, relpath=relpath)
        if write:
            # a params file that is a symlink (the gate checked its target is inside) is changed
            # where it points: replacing the link would leave the stage reading the old values
            atomic_write(Path(os.path.realpath(path)), text)
