"""`pipe exp push GIT_REMOTE [NAMES]` / `pipe exp pull GIT_REMOTE [NAMES]`: share experiments.

Refs travel through git (`refs/exps/...` as they are, so a plain `git push origin 'refs/exps/*'`
works too); the objects their commits reference travel through the default pipe remote, as
`pipe push --rev` / `pipe fetch --rev` move them (`ops/transfer.py`). Without names, the
experiments of HEAD's baseline are shared. As DVC, an experiment that exists on the other side
with another commit is not replaced without `force` (a local one would be lost: refs/exps/ have no reflog).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.core.redact import mask_url
from pipeline_engine.errors import PipeError, RemoteNotConfiguredError, ScmError
from pipeline_engine.index.revisions import Scope
from pipeline_engine.ops import transfer
from pipeline_engine.ops.exp.show import resolve
from pipeline_engine.ops.exp.worktree import git_root
from pipeline_engine.project import Project
from pipeline_engine.scm.exps import ExpRef, list_exp_refs, rev_parse, run_git

__all__ = ["ShareResult", "pull", "push"]


@dataclass(frozen=True, slots=True)
class ShareResult:
    """The experiments sent or received, and how many objects moved through the pipe remote."""

    names: tuple[str, ...]
    objects: int


def push(project: Project, git_remote: str, names: Sequence[str] = (), *, cache: bool = True,
         remote: str | None = None, force: bool = False) -> ShareResult:
    """Push the named experiments' refs to `git_remote` and their objects to the pipe remote.

    Raises:
        PipeError: a name is not an experiment, or there is none to push.
        ScmError: git refused the push (the message holds git's): an experiment of that name
            has another commit there (without `force`), or GIT_REMOTE looks like an option.
        RemoteError / RemoteNotConfiguredError: the objects could not be sent.
    """
    root = git_root(project)
    _check_remote(git_remote)
    if names:
        chosen = [resolve(project, n) for n in names]
    else:
        head = rev_parse(root, "HEAD")
        chosen = [(r, sha) for r, sha, _ in list_exp_refs(root, head)]
    if not chosen:
        raise PipeError("no experiments to push", hint="run 'pipe exp list' to see the experiments")
    moved = 0
    if cache:
        with _objects_hint("exp push"):
            results = transfer.push(project, remote=remote,
                                    scope=Scope(workspace=False, revs=tuple(s for _, s in chosen)))
        moved = sum(r.transferred for r in results)
    plus = "+" if force else ""
    run_git(root, "push", "-q", git_remote, *(f"{plus}{r.ref}:{r.ref}" for r, _ in chosen))
    return ShareResult(tuple(r.name for r, _ in chosen), moved)


def pull(project: Project, git_remote: str, names: Sequence[str] = (), *, cache: bool = True,
         remote: str | None = None, force: bool = False) -> ShareResult:
    """Fetch the named experiments' refs from `git_remote` (all of HEAD's baseline when none) and their objects.

    Raises:
        PipeError: a name is not on the git remote, there is none to pull, or (without `force`)
            a local experiment of the same name has another commit.
        ScmError: git failed, or GIT_REMOTE looks like an option.
        RemoteError / RemoteNotConfiguredError: the objects could not be fetched.
    """
    root = git_root(project)
    _check_remote(git_remote)
    listed = run_git(root, "ls-remote", git_remote, "refs/exps/*")
    found = []
    for line in listed.splitlines():
        sha, _, ref_name = line.partition("\t")
        ref = ExpRef.parse(ref_name.strip())
        if ref is not None:
            found.append((ref, sha))
    if names:
        missing = [n for n in names if not any(r.name == n or r.ref == n for r, _ in found)]
        if missing:
            shown = mask_url(git_remote)  # a URL may carry a token
            raise PipeError(f"experiment '{missing[0]}' is not on '{shown}'",
                            hint=f"list them with: git ls-remote {shown} 'refs/exps/*'")
        found = [(r, s) for r, s in found if r.name in names or r.ref in names]
    else:
        head = rev_parse(root, "HEAD")
        found = [(r, s) for r, s in found if r.baseline == head]
    if not found:
        raise PipeError(f"no experiments of this baseline on '{mask_url(git_remote)}'", hint="name them, or pull another branch first")
    if not force:
        for r, sha in found:
            local = rev_parse(root, r.ref)
            if local is not None and local != sha:
                raise PipeError(f"experiment '{r.name}' of {r.baseline[:7]} exists here as {local[:7]}, "
                                f"and as {sha[:7]} on '{mask_url(git_remote)}'",
                                hint="replace the local one with 'pipe exp pull -f', or rename it with 'pipe exp branch'")
    run_git(root, "fetch", "-q", git_remote, *(f"+{r.ref}:{r.ref}" for r, _ in found))
    _drop_non_commits(root, found, git_remote)
    moved = 0
    if cache:
        with _objects_hint("exp pull"):
            results = transfer.fetch(project, remote=remote,
                                     scope=Scope(workspace=False, revs=tuple(s for _, s in found)))
        moved = sum(r.transferred for r in results)
    return ShareResult(tuple(r.name for r, _ in found), moved)


def _check_remote(git_remote: str) -> None:
    """A GIT_REMOTE that starts with `-` would reach git as an option (`--upload-pack=CMD` runs CMD)."""
    if git_remote.startswith("-") or not git_remote.strip():
        raise ScmError(f"'{mask_url(git_remote)}' is not a git remote", hint="name a remote ('origin') or a URL")


def _drop_non_commits(root: Path, fetched: Sequence[tuple[ExpRef, str]], git_remote: str) -> None:
    """Delete the fetched refs that name no commit (a blob, tree or tag: someone else's refs are input).

    Raises:
        PipeError: naming them, after deleting them.
    """
    bad = [r for r, sha in fetched if run_git(root, "cat-file", "-t", sha, check=False).strip() != "commit"]
    for r in bad:
        run_git(root, "update-ref", "-d", r.ref, check=False)
    if bad:
        raise PipeError(f"'{mask_url(git_remote)}' has experiment refs that name no commit: "
                        + ", ".join(r.name for r in bad), hint="they were not kept; pull the others by name")


@contextlib.contextmanager
def _objects_hint(command: str) -> Iterator[None]:
    """No pipe remote: say that the refs alone can still travel (`--no-cache`), as DVC's hint does."""
    try:
        yield
    except RemoteNotConfiguredError as exc:
        raise RemoteNotConfiguredError(
            f"{exc.message}: 'pipe {command}' moves the experiments' objects through it",
            hint="add one with 'pipe remote add -d NAME URL', pass '-r NAME', or move only the git refs with --no-cache",
        ) from None
