"""`pipe push` / `fetch` / `pull`: move the objects the workspace references between the cache and a remote.

The transfer itself (what to send, in which order, verified how) is `index/sync.py`; this module
picks the outs, takes the project lock and chains fetch and checkout for pull.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline_engine.cache.workspace import CheckoutResult
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.errors import CacheError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.sync import (
    TransferResult,
    fetch_outs,
    open_remotes_for,
    push_outs,
    raise_for_failures,
)
from pipeline_engine.project import Project

__all__ = ["PullResult", "TransferResult", "fetch", "pull", "push"]


@dataclass(frozen=True, slots=True)
class PullResult:
    """What a pull fetched and what checkout then wrote."""

    fetched: tuple[TransferResult, ...]  # one per remote
    checkouts: tuple[CheckoutResult, ...] = field(default_factory=tuple)


def push(
    project: Project,
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    verify: bool = False,
    progress: Progress | None = None,
) -> tuple[TransferResult, ...]:
    """Upload every object `targets` reference (all tracked data when empty) that the remote lacks.

    A stage out with its own `remote:` goes to that remote, every other out to `remote` (or the
    default); one result per remote. With `verify`, every object is looked up on the remote, not
    only the manifests that vouch for their files, so objects deleted from the remote are uploaded
    again. Partial uploads that killed pushes left on the remote are removed first.

    Raises:
        RemoteNotConfiguredError: no remote given and no default set, or an out names an unknown remote.
        RemoteError: the remote is unreachable, or some objects failed (the rest were uploaded).
    """
    results = []
    with project.mutex("pipe push"):
        index = ProjectIndex(project)
        outs = [o for o in index.used_outs(targets) if o.path not in index.unpushed]
        for rem, group in open_remotes_for(project, outs, remote, jobs=jobs, own=index.out_remotes):
            rem.sweep_temps()
            results.append(push_outs(project.store, rem, group, verify=verify, progress=progress or NullProgress()))
    for result in results:
        raise_for_failures("push", result)
    return tuple(results)


def fetch(
    project: Project,
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> tuple[TransferResult, ...]:
    """Download every object `targets` reference that the cache lacks, verifying each one.

    Each out comes from its own `remote:` when its stage declares one (see `open_remotes_for`);
    one result per remote.

    Raises:
        RemoteNotConfiguredError: no remote given and no default set, or an out names an unknown remote.
        RemoteError: the remote is unreachable, or some objects were missing or corrupt there
            (all others were fetched).
    """
    with project.mutex("pipe fetch"):
        index = ProjectIndex(project)
        outs = index.used_outs(targets, remote=remote, fetch_manifests=True)
        results = tuple(
            fetch_outs(project.store, rem, group, progress=progress or NullProgress())
            for rem, group in open_remotes_for(project, outs, remote, jobs=jobs, own=index.out_remotes)
        )
    for result in results:
        raise_for_failures("fetch", result)
    return results


def pull(
    project: Project,
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> PullResult:
    """Fetch (each out from its remote, as `fetch`), then check out every out whose objects are all in the cache.

    Raises:
        RemoteError: as `fetch`; the outs that were complete are checked out first.
        CheckoutError: checkout would overwrite uncached changes (and `force` is false).
    """
    from pipeline_engine.ops.checkout import checkout_outs

    with project.mutex("pipe pull"):
        index = ProjectIndex(project)
        outs = index.used_outs(targets, remote=remote, fetch_manifests=True)
        fetched = []
        complete = []
        opened = list(open_remotes_for(project, outs, remote, jobs=jobs, own=index.out_remotes))
        for rem, group in opened:
            result = fetch_outs(project.store, rem, group, progress=progress or NullProgress())
            broken = {f.path for f in result.failed}
            complete += [o for o in group if not any(p == o.path or p.startswith(o.path + "/") for p in broken)]
            fetched.append(result)
        try:
            checkouts = checkout_outs(project, complete, force=force, progress=progress)
        except CacheError:
            # Checkout found cached objects corrupt and moved them to the quarantine: they are
            # missing now, and the remote may hold good copies. One more fetch, one more checkout.
            again = [fetch_outs(project.store, rem, group, progress=progress or NullProgress())
                     for rem, group in opened]
            if not any(r.transferred for r in again):
                raise
            fetched += again
            checkouts = checkout_outs(project, complete, force=force, progress=progress)
    for result in fetched:
        raise_for_failures("pull", result)
    return PullResult(tuple(fetched), tuple(checkouts))
