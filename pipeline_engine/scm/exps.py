"""Experiment refs and worktrees through git plumbing: `refs/exps/<sha[:2]>/<sha[2:]>/<name>` (DVC's layout).

Nothing here switches a branch or touches the user's index: an experiment runs in a detached
worktree of its own, its commit is made there with `write-tree` / `commit-tree`, and its ref is
set with `update-ref NEW OLD`, so two writers never overwrite each other's ref silently.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.errors import ScmError

__all__ = [
    "EXPS_NAMESPACE", "QUEUE_NAMESPACE", "ExpRef", "add_worktree", "commit_all", "delete_ref", "is_valid_name", "list_exp_refs",
    "remove_worktree", "rev_parse", "run_git", "set_plain_ref", "set_ref", "snapshot_workspace",
]

EXPS_NAMESPACE = "refs/exps"
#: Snapshots of queued experiments (the workspace as it was queued), kept alive until they run.
QUEUE_NAMESPACE = "refs/pipe/queue"
_ZERO = "0" * 40
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+=-]*(\.[A-Za-z0-9_+=-]+)*$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


def is_valid_name(name: str) -> bool:
    """True for a name usable as the last part of an experiment ref (letters, digits, `._+=-`)."""
    return bool(_NAME.match(name)) and not name.endswith(".lock") and len(name) <= 100


@dataclass(frozen=True, slots=True)
class ExpRef:
    """An experiment's ref: the baseline commit it branches from and its name."""

    baseline: str
    name: str

    @property
    def ref(self) -> str:
        """`refs/exps/<baseline[:2]>/<baseline[2:]>/<name>`."""
        return f"{EXPS_NAMESPACE}/{self.baseline[:2]}/{self.baseline[2:]}/{self.name}"

    @classmethod
    def parse(cls, ref: str) -> ExpRef | None:
        """The ExpRef of a full ref name, None for any other ref."""
        parts = ref.split("/")
        if len(parts) != 5 or "/".join(parts[:2]) != EXPS_NAMESPACE:
            return None
        baseline = parts[2] + parts[3]
        if not _SHA.match(baseline) or not is_valid_name(parts[4]):
            return None
        return cls(baseline, parts[4])


def run_git(cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> str:
    """Run `git ARGS` in `cwd` (with `env` added to the environment) and return stdout.

    Raises:
        ScmError: the command failed (with `check`); the message holds git's own.
    """
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False)
    except OSError as exc:
        raise ScmError(f"cannot run git: {exc.strerror or exc}") from exc
    if check and proc.returncode != 0:
        raise ScmError(f"git {args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def rev_parse(cwd: Path, rev: str) -> str | None:
    """The commit sha `rev` names, or None."""
    out = run_git(cwd, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False).strip()
    return out or None


def list_exp_refs(cwd: Path, baseline: str | None = None, *, commits_only: bool = True) -> list[tuple[ExpRef, str, int]]:
    """(ref, commit sha, commit time) of every experiment, or of those of `baseline`; newest first.

    Refs arrive from others (`git fetch origin 'refs/exps/*'`): one naming a blob, tree or tag is
    no experiment and is left out, unless `commits_only` is False (to remove it, or to keep its name taken).
    """
    pattern = EXPS_NAMESPACE if baseline is None else f"{EXPS_NAMESPACE}/{baseline[:2]}/{baseline[2:]}"
    out = run_git(cwd, "for-each-ref", "--sort=-committerdate",
                  "--format=%(refname) %(objectname) %(committerdate:unix) %(objecttype)", pattern)
    found = []
    for line in out.splitlines():
        ref_name, sha, when, kind = line.split(" ")
        parsed = ExpRef.parse(ref_name)
        if parsed is not None and (kind == "commit" or not commits_only):
            found.append((parsed, sha, int(when or 0)))
    return found


def set_ref(cwd: Path, ref: ExpRef, sha: str, *, old: str | None) -> None:
    """Point `ref` at `sha` only if it still points at `old` (None: only if it does not exist).

    Raises:
        ScmError: the ref changed meanwhile (another writer), or git failed.
    """
    run_git(cwd, "update-ref", "-m", f"pipe exp: {ref.name}", ref.ref, sha, old or _ZERO)


def delete_ref(cwd: Path, ref: ExpRef, *, old: str) -> None:
    """Delete `ref` if it still points at `old`.

    Raises:
        ScmError: it moved meanwhile, or git failed.
    """
    run_git(cwd, "update-ref", "-d", ref.ref, old)


def add_worktree(cwd: Path, path: Path, rev: str) -> None:
    """A detached worktree of `rev` at `path` (no branch is created or switched).

    Raises:
        ScmError: git refused (the path exists, `rev` is unknown, ...).
    """
    run_git(cwd, "worktree", "add", "--detach", "-q", str(path), rev)


def remove_worktree(cwd: Path, path: Path) -> None:
    """Remove the worktree at `path` and its administrative files; a missing one is not an error."""
    run_git(cwd, "worktree", "remove", "--force", "--force", str(path), check=False)
    run_git(cwd, "worktree", "prune", check=False)


def commit_all(worktree: Path, *, parent: str, message: str, paths: Sequence[str] = (),
               exclude: Sequence[str] = ()) -> str:
    """Commit every file git does not ignore in `worktree` (or only `paths`) as a child of `parent`.

    Plumbing only (`add`, `write-tree`, `commit-tree`): HEAD and branches are left as they are.
    `exclude`: glob patterns (from the git root) never committed, whatever .gitignore says.

    Raises:
        ScmError: git failed.
    """
    run_git(worktree, "add", "-A", "--", *(paths or ["."]))
    _unstage(worktree, exclude)
    tree = run_git(worktree, "write-tree").strip()
    return run_git(worktree, "commit-tree", tree, "-p", parent, "-m", message).strip()


def snapshot_workspace(cwd: Path, *, parent: str, index_file: Path, message: str = "pipe exp: workspace",
                       exclude: Sequence[str] = ()) -> str:
    """A commit (child of `parent`) of the working tree as it is: tracked changes and untracked files
    git does not ignore, less `exclude` (glob patterns from the git root). Built in a scratch index
    (`index_file`), so the user's index is untouched.

    Raises:
        ScmError: git failed.
    """
    env = {"GIT_INDEX_FILE": str(index_file)}
    try:
        run_git(cwd, "read-tree", parent, env=env)
        run_git(cwd, "add", "-A", "--", ".", env=env)
        _unstage(cwd, exclude, env=env)
        tree = run_git(cwd, "write-tree", env=env).strip()
    finally:
        index_file.unlink(missing_ok=True)
    return run_git(cwd, "commit-tree", tree, "-p", parent, "-m", message).strip()


def _unstage(cwd: Path, patterns: Sequence[str], *, env: Mapping[str, str] | None = None) -> None:
    """Take what `patterns` match out of the index being committed (after `add -A`: an exclude pathspec
    naming an ignored path makes `git add` fail)."""
    if patterns:
        run_git(cwd, "rm", "--cached", "-r", "-q", "-f", "--ignore-unmatch", "--",
                *(f":(glob){pattern}" for pattern in patterns), env=env)


def set_plain_ref(cwd: Path, ref: str, sha: str | None) -> None:
    """Point any ref at `sha` (None: delete it); used for the queue's snapshots."""
    if sha is None:
        run_git(cwd, "update-ref", "-d", ref, check=False)
    else:
        run_git(cwd, "update-ref", ref, sha)
