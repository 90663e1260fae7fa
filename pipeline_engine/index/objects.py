"""Which objects a set of outs needs: file objects (with a workspace path each) and directory manifests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.workspace import tree_of
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError
from pipeline_engine.remote.remote import Remote

__all__ = ["DirObject", "Failure", "ObjectPlan", "plan_objects", "present_on_remote"]


@dataclass(frozen=True, slots=True)
class Failure:
    """One object that could not be transferred: the workspace path it belongs to, its oid, why."""

    path: str
    oid: str
    reason: str


@dataclass(frozen=True, slots=True)
class DirObject:
    """A directory out: its manifest's oid and the oids of the files the manifest lists."""

    path: str
    oid: str
    files: frozenset[str]


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    """File objects (oid -> first workspace path naming it), manifests, and outs that could not be read."""

    files: dict[str, str] = field(default_factory=dict)
    dirs: tuple[DirObject, ...] = ()
    failures: tuple[Failure, ...] = ()


def plan_objects(store: ObjectStore, outs: Sequence[PathRecord]) -> ObjectPlan:
    """Expand `outs` through the manifests in `store`; a manifest missing, corrupt or unreadable there is a failure."""
    files: dict[str, str] = {}
    dirs: dict[str, DirObject] = {}
    failures: list[Failure] = []
    for out in outs:
        if not is_dir_oid(out.oid):
            files.setdefault(out.oid, out.path)
            continue
        if out.oid in dirs:
            continue
        try:
            tree = tree_of(store, out.oid)
        except (CacheError, OSError) as exc:
            failures.append(Failure(out.path, out.oid, str(exc)))
            continue
        for entry in tree.entries:
            files.setdefault(entry.oid, f"{out.path}/{entry.relpath}")
        dirs[out.oid] = DirObject(out.path, out.oid, frozenset(e.oid for e in tree.entries))
    return ObjectPlan(files, tuple(dirs.values()), tuple(failures))


def present_on_remote(rem: Remote, plan: ObjectPlan, *, verify: bool = False) -> set[str]:
    """Which of the plan's objects `rem` holds.

    Push uploads a manifest only after every file it lists, so a manifest on the remote vouches
    for its files: they are not asked about. A no-op push of a 10,000-file directory is then one
    request, not a listing of the remote. With `verify`, nothing vouches: every object is looked
    up (by listing the remote's prefixes, or one batched request per object when they are few),
    which finds the files someone deleted from the remote behind pipe's back.

    Raises:
        RemoteError: the remote cannot be reached or listed.
    """
    if verify:
        return _present(rem, {*plan.files, *(d.oid for d in plan.dirs)})
    manifests = _present(rem, {d.oid for d in plan.dirs})
    vouched = {oid for d in plan.dirs if d.oid in manifests for oid in d.files}
    rest = {oid for oid in plan.files if oid not in vouched}
    return manifests | vouched | _present(rem, rest)


def _present(rem: Remote, oids: set[str]) -> set[str]:
    return oids - rem.missing(oids)
