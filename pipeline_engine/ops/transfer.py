"""`pipe push` / `fetch` / `pull`: move the objects the workspace references between the cache and a remote.

The transfer itself (what to send, in which order, verified how) is `index/upload.py` and `index/download.py`; this module
picks the outs, takes the project lock and chains fetch and checkout for pull.

A `Scope` (DVC's `-a/-T/-A/--rev REV -n N`) widens the outs to every revision it covers, read
from git without a checkout (`index.used.used_outs_in`); as in DVC, the workspace is always one
of them, and pull checks out the workspace only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pipeline_engine.cache.checkout import CheckoutResult
from pipeline_engine.cache.link import parse_link_types
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError, RemoteNotConfiguredError, StageNotFoundError
from pipeline_engine.index.download import fetch_outs
from pipeline_engine.index.objects import Failure, plan_objects
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.pullplace import PullPlacement
from pipeline_engine.index.revisions import Scope, select_revisions
from pipeline_engine.index.sync import TransferResult, open_remotes_for, raise_for_failures
from pipeline_engine.index.upload import push_outs
from pipeline_engine.index.used import UsedOut, used_outs_in
from pipeline_engine.project import Project
from pipeline_engine.remote.remote import Remote

__all__ = ["PullResult", "Scope", "TransferResult", "fetch", "open_remotes_of", "pull", "push"]

# One remote and the outs to move with it.
_Groups = list[tuple[Remote, list[PathRecord]]]


@dataclass(frozen=True, slots=True)
class PullResult:
    """What a pull fetched and what checkout then wrote."""

    fetched: tuple[TransferResult, ...]  # one per remote
    checkouts: tuple[CheckoutResult, ...] = field(default_factory=tuple)
    skipped: tuple[Failure, ...] = ()  # with `allow_missing`: objects no remote has; their outs were left alone


def push(
    project: Project,
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    verify: bool = False,
    progress: Progress | None = None,
    scope: Scope | None = None,
) -> tuple[TransferResult, ...]:
    """Upload every object `targets` reference (all tracked data when empty) that the remote lacks.

    `scope` adds the outs of the git revisions it covers (see the module docstring); an object
    a revision needs that is not in the cache is a failure, as in the workspace.

    A stage out with its own `remote:` goes to that remote, every other out to `remote` (or the
    default); one result per remote. With `verify`, every object is looked up on the remote, not
    only the manifests that vouch for their files, so objects deleted from the remote are uploaded
    again. Partial uploads that killed pushes left on the remote are removed first.

    Raises:
        RemoteNotConfiguredError: no remote given and no default set, or an out names an unknown remote.
        RemoteError: the remote is unreachable, or some objects failed (the rest were uploaded).
        ScmError: `scope` names an unknown revision (nothing was sent).
    """
    results = []
    with project.mutex("pipe push"):
        if scope is None or scope.is_workspace_only:
            index = ProjectIndex(project)
            outs = [o for o in index.used_outs(targets) if o.path not in index.unpushed]
            groups = open_remotes_for(project, outs, remote, jobs=jobs, own=index.out_remotes)
        else:
            groups = _scoped_groups(project, targets, scope, remote=remote, jobs=jobs, push=True)
        for rem, group in groups:
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
    scope: Scope | None = None,
) -> tuple[TransferResult, ...]:
    """Download every object `targets` reference that the cache lacks, verifying each one.

    Each out comes from its own `remote:` when its stage declares one (see `open_remotes_for`);
    one result per remote. `scope` adds the outs of the git revisions it covers (manifests
    first, then the files they list): `pipe fetch --rev REV` is how an old revision's data
    (a `cache: true` metrics file, say) gets into the cache.

    Raises:
        RemoteNotConfiguredError: no remote given and no default set, or an out names an unknown remote.
        RemoteError: the remote is unreachable, or some objects were missing or corrupt there
            (all others were fetched).
        ScmError: `scope` names an unknown revision (nothing was fetched).
    """
    with project.mutex("pipe fetch"):
        if scope is None or scope.is_workspace_only:
            index = ProjectIndex(project)
            outs = index.used_outs(targets, remote=remote, fetch_manifests=True)
            groups = open_remotes_for(project, outs, remote, jobs=jobs, own=index.out_remotes)
        else:
            groups = _scoped_groups(project, targets, scope, remote=remote, jobs=jobs)
        results = tuple(
            fetch_outs(project.store, rem, group, progress=progress or NullProgress(), memo=project.memo)
            for rem, group in groups
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
    allow_missing: bool = False,
    progress: Progress | None = None,
    scope: Scope | None = None,
) -> PullResult:
    """Fetch (each out from its remote, as `fetch`), then check out every out whose objects are all in the cache.

    A directory out whose path does not exist yet is checked out while the fetch runs, into a
    temporary directory renamed into place once all its files are there (`index/pullplace.py`):
    like any out whose objects did not all arrive, it is left untouched (absent) otherwise.

    With `scope`, the outs of the revisions it covers are fetched first; only the workspace's
    are checked out (DVC's `pull -a`). A target needs to select something at one revision only.
    With `allow_missing` (DVC's `--allow-missing`), objects the remote does not have are no error:
    they are returned in `skipped` (a failed or corrupt transfer still raises).

    Raises:
        RemoteError: as `fetch`; the outs that were complete are checked out first.
        CheckoutError: checkout would overwrite uncached changes (and `force` is false).
        ScmError: `scope` names an unknown revision (nothing was fetched).
    """
    from pipeline_engine.ops.checkout import checkout_outs, ignore_checked_out
    from pipeline_engine.ops.imports import recover_imports

    progress = progress or NullProgress()
    with project.mutex("pipe pull"):
        index = ProjectIndex(project)
        if scope is None or scope.is_workspace_only:
            outs = index.used_outs(targets, remote=remote, fetch_manifests=True)
            opened = _remotes_unless_only_imports(project, index, outs, remote, jobs=jobs)
        else:
            # The workspace's outs are checked out, so they are always fetched.
            opened = _scoped_groups(project, targets, replace(scope, workspace=True), remote=remote, jobs=jobs)
            here = [t for t in targets if _selects(index, t)]
            outs = index.used_outs(here) if here or not targets else []  # the others are at older revisions only
        link_types = parse_link_types(project.config.cache_types)
        # New directories are placed while the fetch runs (index/pullplace.py); the rest after it.
        with PullPlacement(project.root, project.store, project.memo, link_types, outs, progress) as placing:
            fetched = [fetch_outs(project.store, rem, group, progress=progress, memo=project.memo, sink=placing)
                       for rem, group in opened]
            if not opened and outs:  # no remote, only imports: each comes from its source (DVC)
                fetched = [TransferResult("", "", 0, 0, tuple(Failure(o.path, o.oid, "no remote") for o in outs))]
            fetched = recover_imports(project, index, fetched, jobs=jobs, progress=progress)  # imports: their source second
            placed = placing.finish()
        for out, _ in placed:
            ignore_checked_out(project, out.path)
        done = {out.path for out, _ in placed}
        failed = {f.oid for r in fetched for f in r.failed}
        complete = [o for o in outs if o.path not in done and not _objects_of(project, o) & failed]
        try:
            checkouts = checkout_outs(project, complete, force=force, progress=progress)
        except CacheError:
            # Checkout found cached objects corrupt and moved them to the quarantine: they are
            # missing now, and the remote may hold good copies. One more fetch, one more checkout.
            again = [fetch_outs(project.store, rem, group, progress=progress, memo=project.memo)
                     for rem, group in opened]
            if not any(r.transferred for r in again):
                raise
            fetched += again
            checkouts = checkout_outs(project, complete, force=force, progress=progress)
    skipped = tuple(f for r in fetched for f in r.failed if f.missing) if allow_missing else ()
    for result in fetched:
        raise_for_failures("pull", replace(result, failed=tuple(f for f in result.failed if f not in skipped)))
    return PullResult(tuple(fetched), tuple(result for _, result in placed) + tuple(checkouts), skipped)


def _remotes_unless_only_imports(project: Project, index: ProjectIndex, outs: Sequence[PathRecord],
                                 remote: str | None, *, jobs: int | None) -> _Groups:
    """`open_remotes_for`; none when no remote is set and every out is an import (its source is enough, as in DVC).

    Raises:
        RemoteNotConfiguredError: no remote is set and some out is not an import.
    """
    try:
        return open_remotes_for(project, outs, remote, jobs=jobs, own=index.out_remotes)
    except RemoteNotConfiguredError:
        imports = [p.data_relpath for p in index.pointers if p.repo is not None]
        if remote is not None or not outs or not all(
                any(o.path == i or o.path.startswith(i + "/") for i in imports) for o in outs):
            raise
        return []


def _selects(index: ProjectIndex, target: str) -> bool:
    """True when `target` selects something in the workspace (pull checks out only those)."""
    try:
        return not index.select([target]).unknown
    except StageNotFoundError:
        return False


def _objects_of(project: Project, out: PathRecord) -> set[str]:
    """The oids an out needs as far as the cache knows: its own, and a directory's files when its manifest is there."""
    plan = plan_objects(project.store, [out])
    return {out.oid, *plan.files, *(d.oid for d in plan.dirs)}


def _scoped_groups(project: Project, targets: Sequence[str], scope: Scope, *, remote: str | None,
                   jobs: int | None, push: bool = False) -> _Groups:
    """The remotes and outs of every revision `scope` covers; each out goes to the remote its stage names there.

    Raises:
        ScmError: a revision is unknown. PathError: a target selects nothing at any revision.
        RemoteNotConfiguredError: as `open_remotes_for`.
    """
    revisions = select_revisions(project, scope)
    used = used_outs_in(project, revisions, targets, remote=remote, fetch_manifests=not push)
    return open_remotes_of(project, [u for u in used if u.pushable or not push], remote, jobs=jobs)


def open_remotes_of(project: Project, used: Sequence[UsedOut], remote: str | None, *,
                    jobs: int | None = None) -> _Groups:
    """`open_remotes_for` for outs of several revisions: each out with the `remote:` its stage names at its revision.

    One entry per remote, however many revisions name it.

    Raises:
        RemoteNotConfiguredError: as `open_remotes_for`.
    """
    by_name: dict[str | None, list[PathRecord]] = {}
    for u in used:
        by_name.setdefault(u.remote, []).append(u.record)
    merged: dict[str, tuple[Remote, list[PathRecord]]] = {}
    for name, group in by_name.items() or [(None, [])]:
        own = {r.path: name for r in group} if name else {}
        for rem, outs in open_remotes_for(project, group, remote, jobs=jobs, own=own):
            merged.setdefault(rem.name, (rem, []))[1].extend(outs)
    return list(merged.values())
