"""Which revisions a command covers: DVC's scope flags (`-a`, `-T`, `-A`, `--rev REV -n N`, the workspace).

Used by every command that reads or keeps more than the workspace: metrics/params/plots show and
diff, gc, push, fetch, pull. Each revision is read through `ProjectIndex.at(project, rev.sha)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline_engine.core.revision import WORKSPACE
from pipeline_engine.errors import ScmError
from pipeline_engine.project import Project
from pipeline_engine.scm.exps import EXPS_NAMESPACE, QUEUE_NAMESPACE

__all__ = ["WORKSPACE", "Revision", "Scope", "select_revisions"]



@dataclass(frozen=True, slots=True)
class Revision:
    """One revision: `sha` None is the workspace; `label` is what the user sees (branch, tag, rev as given, short sha)."""

    label: str
    sha: str | None = None

    @property
    def is_workspace(self) -> bool:
        """True for the working tree."""
        return self.sha is None


@dataclass(frozen=True, slots=True)
class Scope:
    """The scope flags of a command: DVC's `-w/--workspace`, `-a`, `-T`, `-A`, `--rev` (repeatable), `-n`,
    `--all-experiments` (every experiment commit under `refs/exps/`, and queued experiments' snapshots)."""

    workspace: bool = True
    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False
    revs: tuple[str, ...] = ()
    num: int = 1
    all_experiments: bool = False

    @property
    def is_workspace_only(self) -> bool:
        """True when no revision beyond the workspace is asked for."""
        return not (self.all_branches or self.all_tags or self.all_commits or self.revs or self.all_experiments)


def select_revisions(project: Project, scope: Scope) -> list[Revision]:
    """The revisions `scope` covers, the workspace first when included, each commit once (first label wins).

    `--rev REV -n N` covers REV and its N-1 first ancestors (`git rev-list -n N REV`).

    Raises:
        ScmError: a revision is asked for and the project is not in a git repository, or a `--rev`
            names no commit.
    """
    found: dict[str | None, Revision] = {}
    if scope.workspace:
        found[None] = Revision(WORKSPACE)
    if scope.is_workspace_only:
        return list(found.values())
    git = project.git
    if git is None:
        raise ScmError("revisions were asked for, but the project is not in a git repository",
                       hint="run 'git init' and commit, or leave out -a/-T/-A/--rev")
    repo = git.repo
    if repo.head.is_valid():
        head = repo.head.commit.hexsha
        if not scope.workspace and not scope.revs:
            found.setdefault(head, Revision("HEAD", head))
    for rev in scope.revs:
        for i, sha in enumerate(_rev_list(repo, rev, scope.num)):
            found.setdefault(sha, Revision(rev if i == 0 else sha[:7], sha))
    if scope.all_branches:
        for branch in sorted(repo.branches, key=lambda b: b.name):
            found.setdefault(branch.commit.hexsha, Revision(branch.name, branch.commit.hexsha))
    if scope.all_tags:
        for tag in sorted(repo.tags, key=lambda t: t.name):
            found.setdefault(tag.commit.hexsha, Revision(tag.name, tag.commit.hexsha))
    if scope.all_commits:  # `--all` covers every ref, experiments' included
        for sha in repo.git.rev_list("--all").split():
            found.setdefault(sha, Revision(sha[:7], sha))
    if scope.all_experiments:
        # a ref fetched from someone else may name a blob, tree or tag: no experiment, nothing it keeps.
        # Queued experiments' snapshots count too: their data must still be there when they run.
        listed = repo.git.for_each_ref("--format=%(objecttype) %(objectname) %(refname)",
                                       EXPS_NAMESPACE + "/", QUEUE_NAMESPACE + "/")
        for kind, sha, ref in (line.split(" ", 2) for line in listed.splitlines() if line.count(" ") >= 2):
            if kind == "commit":
                found.setdefault(sha, Revision(ref.rsplit("/", 1)[-1], sha))
    return list(found.values())


def _rev_list(repo: object, rev: str, num: int | None) -> Sequence[str]:
    import git

    # `--end-of-options`: a rev such as `--output=FILE` is a name, not an option git acts on; `^{commit}`:
    # a tree or blob (`HEAD:path`) is an unknown revision, not an empty list.
    args = ([] if num is None else ["-n", str(max(num, 1))]) + ["--end-of-options", f"{rev}^{{commit}}"]
    try:
        out: str = repo.git.rev_list(*args)  # type: ignore[attr-defined]
    except git.GitCommandError as exc:
        raise ScmError(f"unknown revision '{rev}'", hint="run 'git log --oneline' to list revisions") from exc
    return out.split()
