"""`pipe exp apply NAME` and `pipe exp branch NAME BRANCH`: bring an experiment into the workspace, or give it a branch.

`apply` writes the files the experiment's commit changed (params, lock, pointers, metrics) into the
workspace, leaving git's index and HEAD alone, then checks the outs out from the store: nothing
reruns. As DVC does, the workspace's own changes to those files are replaced, but never lost: when
any of them differs from HEAD, the workspace is first recorded as a commit at `APPLY_STASH`
(DVC's `refs/exps/apply/stash`, with a reflog), so `git restore --source=<sha> -- FILE` brings it back.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.core.fsutil import atomic_write, make_parents
from pipeline_engine.core.pathgate import check_relpath, resolve_in_project
from pipeline_engine.errors import PipeError, UnsafePathError
from pipeline_engine.ops.checkout import checkout
from pipeline_engine.ops.exp.records import exps_dir
from pipeline_engine.ops.exp.show import resolve
from pipeline_engine.ops.exp.worktree import git_root, private_paths
from pipeline_engine.project import Project
from pipeline_engine.scm.exps import rev_parse, run_git, snapshot_workspace

__all__ = ["APPLY_STASH", "ApplyResult", "apply", "branch"]

APPLY_STASH = "refs/exps/apply/stash"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """The experiment applied and the files (git-root relative) written or removed."""

    name: str
    rev: str
    written: tuple[str, ...]
    removed: tuple[str, ...]
    saved: str | None = None  # the commit holding the workspace's replaced changes, if there were any


def apply(project: Project, name: str, *, started_from: str | None = None) -> ApplyResult:
    """Write the experiment's files into the workspace and check its outs out from the store.

    `started_from` is the snapshot commit the experiment ran from (`pipe exp run` applying its own
    result): workspace files still as they were in it hold nothing the experiment lacks, so they
    are replaced without being saved first; any other change is saved as usual.

    Raises:
        PipeError: no such experiment; CheckoutError/ObjectNotFoundError from the checkout
            (an out missing from the store: `pipe exp pull` or `pipe fetch` it).
    """
    root = git_root(project)
    ref, sha = resolve(project, name)
    written, removed = [], []
    status = run_git(root, "diff", "--no-renames", "--name-status", "-z", "HEAD", sha)
    fields = [f for f in status.split("\0") if f]
    with project.mutex("pipe exp apply"):
        paths = fields[1::2]
        if started_from is not None:
            paths = [p for p in paths if not _as_in(root, started_from, p)]
        saved = _save_workspace(project, root, paths)
        for state, path in zip(fields[::2], fields[1::2], strict=True):
            try:  # the commit came from git: its paths pass the gate; `.pipe/` files are not applied
                rel = check_relpath(path, source=f"experiment '{name}'")
                target = resolve_in_project(root, rel, source=f"experiment '{name}'")
            except UnsafePathError:
                continue
            if state == "D":
                target.unlink(missing_ok=True)
                removed.append(rel)
                continue
            data = _blob(root, sha, rel)
            make_parents(target)
            atomic_write(target, data)
            written.append(rel)
    # `exp apply` replaces outs as DVC does; after `exp run`, an out the user changed while it ran
    # (its content in no cache object: git-ignored, so in no stash either) is refused, not lost.
    checkout(Project(project.root), force=started_from is None)
    return ApplyResult(ref.name, sha, tuple(written), tuple(removed), saved)


def _save_workspace(project: Project, root: Path, paths: list[str]) -> str | None:
    """Record the workspace at APPLY_STASH when any of `paths` has changes git would lose; their commit."""
    if not paths or not run_git(root, "--literal-pathspecs", "status", "--porcelain", "-z", "--", *paths).strip("\0"):
        return None
    head = rev_parse(root, "HEAD")
    if head is None:
        return None
    index_file = exps_dir(project) / f"index-{secrets.token_hex(4)}"
    index_file.parent.mkdir(parents=True, exist_ok=True)
    sha = snapshot_workspace(root, parent=head, index_file=index_file, message="pipe exp apply: workspace before apply",
                             exclude=private_paths(project))
    run_git(root, "update-ref", "--create-reflog", "-m", "pipe exp apply", APPLY_STASH, sha)
    return sha


def _as_in(root: Path, sha: str, path: str) -> bool:
    """True when workspace file `path` (git-root relative) is exactly as commit `sha` holds it, or
    absent from both."""
    try:
        rel = check_relpath(path, source=f"commit {sha[:7]}")
        current: bytes | None = resolve_in_project(root, rel, source=f"commit {sha[:7]}").read_bytes()
    except FileNotFoundError:
        current = None
    except (OSError, PipeError):
        return False
    try:
        held: bytes | None = _blob(root, sha, path)
    except PipeError:
        held = None
    return current == held


def _blob(root: Path, sha: str, path: str) -> bytes:
    proc = subprocess.run(["git", "cat-file", "blob", f"{sha}:{path}"], cwd=root, capture_output=True, check=False)
    if proc.returncode != 0:
        raise PipeError(f"cannot read '{path}' of {sha[:7]}: {proc.stderr.decode(errors='replace').strip()}")
    data: bytes = proc.stdout
    return data


def branch(project: Project, name: str, branch_name: str) -> str:
    """Create branch `branch_name` at the experiment's commit; returns the sha.

    Raises:
        PipeError: no such experiment, or the branch exists or is not a valid name.
    """
    root = git_root(project)
    _, sha = resolve(project, name)
    if rev_parse(root, f"refs/heads/{branch_name}") is not None:
        raise PipeError(f"branch '{branch_name}' already exists", hint="choose another branch name")
    if run_git(root, "check-ref-format", "--branch", branch_name, check=False).strip() != branch_name:
        raise PipeError(f"'{branch_name}' is not a valid branch name")
    run_git(root, "update-ref", f"refs/heads/{branch_name}", sha, "0" * 40)
    return sha
