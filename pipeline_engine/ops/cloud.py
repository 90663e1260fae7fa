"""`pipe status --cloud` and `pipe gc --cloud`: compare the cache with a remote, and clean a remote."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.core.hashing import Oid, is_dir_oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.index.objects import DirObject, ObjectPlan, present_on_remote
from pipeline_engine.project import Project
from pipeline_engine.remote.prune import PackPrune, prune_packs
from pipeline_engine.remote.remote import Remote

if TYPE_CHECKING:
    from pipeline_engine.index.revisions import Scope

__all__ = ["CloudStatus", "OutCloudStatus", "RemoteGcResult", "cloud_status", "gc_remote"]


@dataclass(frozen=True, slots=True)
class OutCloudStatus:
    """Where the objects of one out are: counts of objects only local, only remote, in neither."""

    path: str
    oid: str
    objects: int
    not_pushed: int = 0
    not_fetched: int = 0
    missing: int = 0
    remote: str = ""  # the remote it was compared with (its own `remote:`, or the command's)
    revision: str = ""  # with a revision scope: the first revision that needs this version of the path

    @property
    def is_synced(self) -> bool:
        """True when every object is both in the cache and on the remote."""
        return not (self.not_pushed or self.not_fetched or self.missing)


@dataclass(frozen=True, slots=True)
class CloudStatus:
    """The cloud status of every out, against its remote; `remote` is the command's (or default) one."""

    remote: str
    url: str
    outs: tuple[OutCloudStatus, ...]
    # Pack indexes read and found unreadable (their objects count as absent), each naming the index.
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoteGcResult:
    """Objects removed from a remote (or that would be, with `dry`), objects kept, and what happened to its packs."""

    remote: str
    url: str
    removed: tuple[Oid, ...]
    kept: int
    dry: bool
    packs: PackPrune = field(default_factory=PackPrune)


def cloud_status(
    project: Project,
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    verify: bool = False,
    scope: Scope | None = None,
) -> CloudStatus:
    """For each out of `targets` (all when empty): which objects its remote or the cache lacks.

    `scope` (DVC's `status -c -a/-T/-A`) adds the outs of the git revisions it covers; each
    version of a path is one entry, labelled with the first revision that needs it.

    An unreadable pack index read on the way is in `problems` (its objects count as absent).
    A stage out with its own `remote:` is compared with that remote, the others with `remote` (or
    the default), as push and pull would use them. A directory whose manifest is not in the cache
    counts as one object; its files are unknown until 'pipe fetch' brings the manifest. A manifest
    on the remote vouches for its files unless `verify`: then every object is looked up.

    Raises:
        RemoteNotConfiguredError, RemoteError: the remote is not configured or cannot be reached.
        ScmError: `scope` names an unknown revision.
    """
    from pipeline_engine.index.sync import open_remotes_for
    from pipeline_engine.index.used import used_outs

    labels: dict[tuple[str, str], str] = {}
    if scope is None or scope.is_workspace_only:
        outs = used_outs(project, targets=targets)
        groups = open_remotes_for(project, outs, remote, jobs=jobs)
    else:
        from pipeline_engine.index.revisions import select_revisions
        from pipeline_engine.index.used import used_outs_in
        from pipeline_engine.ops.transfer import open_remotes_of

        used = used_outs_in(project, select_revisions(project, scope), targets)
        labels = {(u.record.path, u.record.oid): u.revision for u in used}
        groups = open_remotes_of(project, used, remote, jobs=jobs)
    result = [replace(s, revision=labels.get((s.path, s.oid), "")) if labels else s
              for rem, group in groups for s in _against(project, rem, group, verify=verify)]
    main = next((rem for rem, _ in groups if rem.name == (remote or project.config.default_remote)), groups[0][0])
    problems = tuple(str(p) for rem, _ in groups for p in rem.packs.problems.values())
    return CloudStatus(main.name, main.url, tuple(result), problems)


def _against(project: Project, rem: Remote, outs: Sequence[PathRecord], *, verify: bool) -> list[OutCloudStatus]:
    store = project.store
    members: dict[tuple[str, str], set[str]] = {}  # (path, oid): one entry per version of a path
    for out in outs:
        found: set[str] = {out.oid}
        if is_dir_oid(out.oid) and store.exists(out.oid):
            found.update(e.oid for e in tree_of(store, out.oid).entries)
        members[(out.path, out.oid)] = found
    # A manifest on the remote vouches for its files (push uploads it last): see present_on_remote.
    files: dict[str, str | DirObject] = {}
    dirs: dict[str, DirObject] = {}
    for out in outs:
        if not is_dir_oid(out.oid):
            files.setdefault(out.oid, out.path)
        elif out.oid not in dirs:
            d = dirs[out.oid] = DirObject(out.path, out.oid, frozenset(members[(out.path, out.oid)] - {out.oid}))
            for oid in d.files:
                files.setdefault(oid, d)
    plan = ObjectPlan(files, tuple(dirs.values()))
    on_remote = present_on_remote(rem, plan, verify=verify)
    result = []
    for out in outs:
        oids = members[(out.path, out.oid)]
        local = {o for o in oids if store.exists(o)}
        remote_only = sum(1 for o in oids if o not in local and o in on_remote)
        result.append(
            OutCloudStatus(
                out.path,
                out.oid,
                len(oids),
                not_pushed=sum(1 for o in local if o not in on_remote),
                not_fetched=remote_only,
                missing=len(oids) - len(local) - remote_only,
                remote=rem.name,
            )
        )
    return result


def gc_remote(rem: Remote, keep_oids: Collection[str], *, dry: bool) -> RemoteGcResult:
    """Delete every object on `rem` that `keep_oids` does not name (with `dry`, only list them).

    `keep_oids` must already hold the files of every kept directory (`ops.gc.collect_used`
    expands them, fetching manifests from this remote when the cache lacks them): a directory
    oid here keeps only its manifest. The caller holds the project mutex.

    Loose objects are deleted one by one. Packed objects go with their pack (`remote.prune`): a
    pack with no live object is deleted, a pack whose live objects fill less than half its bytes
    is repacked, a mostly live pack keeps its dead objects for now (`packs.dead_left`); a pack
    without an index older than an hour is removed (a push uploads a pack, then its index), a
    younger one is reported. `removed` lists the objects that are gone (or would be).

    Raises:
        RemoteError: the remote cannot be listed or changed.
    """
    keep = set(keep_oids)
    loose = [o for o in rem.iter_loose() if o not in keep]
    packs = prune_packs(rem.packs, keep, dry=dry)
    if not dry:
        rem.remove_loose(loose)
    gone = set(packs.removed)
    where = rem.packs.where
    # A loose object also held by a pack that stays is not gone (no set of every packed oid).
    doomed = tuple(sorted(o for o in {*loose, *gone} if o in gone or o not in where))
    return RemoteGcResult(rem.name, rem.url, doomed, len(keep), dry, packs)
