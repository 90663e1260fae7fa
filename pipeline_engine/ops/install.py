"""`pipe install [--uninstall]`: git hooks that keep data in step with git (checkout, status, push).

post-checkout runs `pipe checkout` after a branch checkout, pre-commit shows `pipe status`,
pre-push runs `pipe push` (DVC's three hooks). An existing hook is kept and still runs: pipe's
lines go into it (`scm.hooks`), and `--uninstall` takes exactly those lines out again, deleting a
hook file only when it held nothing else. Every hook's new text is worked out before any is
written, so a hook pipe cannot extend leaves all three unchanged.
"""

from __future__ import annotations

import enum
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.errors import ScmError
from pipeline_engine.project import Project
from pipeline_engine.scm.hooks import HOOKS, add_block, has_block, hook_block, hooks_dir, remove_block

__all__ = ["HookAction", "HookChange", "InstallResult", "install"]


class HookAction(enum.Enum):
    """What `pipe install` did to one hook file."""

    CREATED = "created"
    ADDED = "pipe's lines added; the existing hook still runs"
    UPDATED = "pipe's lines updated"
    UNCHANGED = "already installed"
    REMOVED = "removed (it held only pipe's lines)"
    STRIPPED = "pipe's lines removed; the rest of the hook kept"
    ABSENT = "not installed"


@dataclass(frozen=True, slots=True)
class HookChange:
    """One hook: its name, its file, and what was done to it."""

    hook: str
    path: Path
    action: HookAction


@dataclass(frozen=True, slots=True)
class InstallResult:
    """The hooks directory (git's `core.hooksPath` or `.git/hooks`), what happened to each hook, and
    the default remote the pre-push hook's `pipe push` will use (None: that push fails, and so does git's)."""

    hooks_dir: Path
    changes: tuple[HookChange, ...]
    default_remote: str | None = None


def install(project: Project, *, uninstall: bool = False) -> InstallResult:
    """Add pipe's block to the post-checkout, pre-commit and pre-push hooks (or take it out with `uninstall`).

    Installing twice changes nothing; the hooks run this Python (`sys.executable -m pipeline_engine`).

    Raises:
        ScmError: the project is not in a git repository, a hook is not a shell script, or a hook's
            pipe block was damaged by hand.
    """
    git = project.git
    if git is None:
        raise ScmError(f"'{project.root}' is not in a git repository, so it has no git hooks",
                       hint="run 'git init' first (or drop 'core.no_scm' from the config)")
    where = hooks_dir(git.root)
    project_dir = project.relpath_from_git("") or "."
    planned: list[tuple[HookChange, str | None]] = []
    for hook in HOOKS:
        path = where / hook
        source = os.path.relpath(path, git.root)
        old = None if uninstall and path.is_symlink() else _read_hook(path, source)  # pipe never writes a link
        if uninstall:
            new = None if old is None else remove_block(old, project_dir=project_dir, source=source)
            action = _uninstall_action(old, new)
        else:
            block = hook_block(hook, python=sys.executable, project_dir=project_dir)
            new = add_block(old, block, project_dir=project_dir, source=source)
            action = _install_action(old, new, project_dir)
        planned.append((HookChange(hook, path, action), new))
    for change, text in planned:
        _apply(change, text)
    return InstallResult(where, tuple(change for change, _ in planned), project.config.default_remote)


def _read_hook(path: Path, source: str) -> str | None:
    # A link (a hooks directory can be committed: core.hooksPath) is not followed: pipe would copy
    # whatever it points to (a key, a dotfile) into a plain file in its place, and the link be gone.
    if path.is_symlink():
        raise ScmError(f"{source}: is a symbolic link (to '{os.readlink(path)}'); pipe left the hooks unchanged",
                       hint="call 'pipe' from the script it points to yourself, or replace the link by the script")
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScmError(f"{source}: is not a text script; pipe left the hooks unchanged",
                       hint="call 'pipe' from that hook yourself") from None


def _install_action(old: str | None, new: str, project_dir: str) -> HookAction:
    if old is None or not old:
        return HookAction.CREATED
    if old == new:
        return HookAction.UNCHANGED
    return HookAction.UPDATED if has_block(old, project_dir) else HookAction.ADDED


def _uninstall_action(old: str | None, new: str | None) -> HookAction:
    if old is None or old == new:
        return HookAction.ABSENT
    return HookAction.REMOVED if new is None else HookAction.STRIPPED


def _apply(change: HookChange, text: str | None) -> None:
    path = change.path
    if change.action in (HookAction.UNCHANGED, HookAction.ABSENT):
        return
    if text is None:
        path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)
    # git skips a hook that is not executable: pipe's lines must run.
    mode = stat.S_IMODE(path.stat().st_mode)
    os.chmod(path, mode | ((mode & 0o444) >> 2) | stat.S_IXUSR)
