"""`pipe exp remove` and `pipe exp clean`: delete experiment refs, queue entries and leftovers."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from pipeline_engine.errors import PipeError
from pipeline_engine.ops.exp.records import ExpState, entries, exps_dir, log_path, queue_ref, remove_entry
from pipeline_engine.ops.exp.show import resolve
from pipeline_engine.ops.exp.worktree import git_root
from pipeline_engine.project import Project
from pipeline_engine.scm.exps import delete_ref, list_exp_refs, run_git, set_plain_ref

__all__ = ["clean", "remove"]


def remove(project: Project, names: Sequence[str] = (), *, all_commits: bool = False, queued: bool = False,
           refs: bool = True) -> list[str]:
    """Remove the named experiments (refs or queue entries), every recorded one (`all_commits`), or the
    queued and failed entries (`queued`); returns the names removed. Without `refs` (`pipe queue
    remove`), a name must be a queue entry: a recorded experiment is never removed.

    Raises:
        PipeError: a name matches no experiment (nothing is removed then).
    """
    root = git_root(project)
    pending = [e for e in entries(project) if e.state is not ExpState.RUNNING]
    targets_refs = []
    targets_entries = [e for e in pending if queued or e.name in names]
    for name in names:
        if any(e.name == name for e in targets_entries):
            continue
        if not refs:
            raise PipeError(f"'{name}' is not in the queue",
                            hint="'pipe queue status' lists it; 'pipe exp remove NAME' removes a recorded experiment")
        targets_refs.append(resolve(project, name, commits_only=False))
    if all_commits:
        targets_refs = [(r, sha) for r, sha, _ in list_exp_refs(root, commits_only=False)]
    if not (names or all_commits or queued):
        raise PipeError("name the experiments to remove",
                        hint="or use --all-commits or --queue" if refs else "or use --all")
    for ref, sha in targets_refs:
        delete_ref(root, ref, old=sha)
    for e in targets_entries:
        remove_entry(project, e)
        set_plain_ref(root, queue_ref(e), None)
        log_path(project, e).unlink(missing_ok=True)
    return [r.name for r, _ in targets_refs] + [e.name for e in targets_entries]


def clean(project: Project) -> int:
    """Remove worktrees, snapshot refs and logs no experiment needs (a killed run's leftovers); returns how many."""
    root = git_root(project)
    live = {e.key for e in entries(project)}
    count = 0
    running = {e.name for e in entries(project, states=(ExpState.RUNNING,))}
    run_dir = exps_dir(project) / "run"
    for path in sorted(run_dir.iterdir()) if run_dir.is_dir() else ():
        if path.name.rsplit("-", 1)[0] not in running:
            run_git(root, "worktree", "remove", "--force", "--force", str(path), check=False)
            shutil.rmtree(path, ignore_errors=True)
            count += 1
    run_git(root, "worktree", "prune", check=False)
    live_refs = {queue_ref(e) for e in entries(project)}
    for ref in run_git(root, "for-each-ref", "--format=%(refname)", "refs/pipe/queue").split():
        if ref not in live_refs:
            set_plain_ref(root, ref, None)
            count += 1
    logs = exps_dir(project) / "logs"
    for log in sorted(logs.glob("*.log")) if logs.is_dir() else ():
        if log.stem not in live:
            log.unlink(missing_ok=True)
            count += 1
    return count
