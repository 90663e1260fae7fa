"""`pipe exp save [-n NAME]`: record the workspace as it is (params, lock, metrics) as an experiment of HEAD.

Nothing runs: the commit is the workspace's snapshot (tracked changes and files git does not
ignore, made in a scratch index, as `exp run` snapshots it). The outs its lock and pointers name
are the ones `pipe repro` / `pipe commit` already put in the cache, which `exp apply` checks out.
"""

from __future__ import annotations

from pipeline_engine.errors import ScmError
from pipeline_engine.ops.exp.records import ExpState, exps_dir
from pipeline_engine.ops.exp.run import ExpResult, choose_names
from pipeline_engine.ops.exp.worktree import git_root, private_paths
from pipeline_engine.project import Project
from pipeline_engine.scm.exps import ExpRef, rev_parse, set_ref, snapshot_workspace

__all__ = ["save"]


def save(project: Project, *, name: str | None = None, force: bool = False) -> ExpResult:
    """Record the workspace as experiment `name` (generated when None) of HEAD.

    Raises:
        ScmError: no git or no commit yet.
        PipeError: the name is taken (and not `force`) or invalid.
    """
    import secrets

    root = git_root(project)
    baseline = rev_parse(root, "HEAD")
    if baseline is None:
        raise ScmError("experiments need a baseline commit, and this repository has none",
                       hint="commit your pipeline first: git add . && git commit")
    (chosen,) = choose_names(project, baseline, name, 1, force=force)
    index_file = exps_dir(project) / f"index-{secrets.token_hex(4)}"
    index_file.parent.mkdir(parents=True, exist_ok=True)
    with project.mutex("pipe exp save"):
        sha = snapshot_workspace(root, parent=baseline, index_file=index_file, message=f"pipe exp: {chosen}",
                                 exclude=private_paths(project))
        ref = ExpRef(baseline, chosen)
        set_ref(root, ref, sha, old=rev_parse(root, ref.ref))
    return ExpResult(chosen, baseline, ExpState.SUCCESS, (), sha)
