"""Which objects a set of outs needs: file objects (each naming the out it belongs to) and directory manifests.

A plan for a million-file directory must stay small: it keeps the compact manifest (`Tree`, 16
bytes per oid) and one dict of oids whose values are shared (the out's path or its `DirObject`),
not a workspace path string per file. The path of a file inside a directory is looked up only
for the objects that failed (`ObjectPlan.paths_of`), by one scan of the manifests they belong to.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError
from pipeline_engine.remote.remote import Remote

__all__ = ["DirObject", "Failure", "ObjectPlan", "Presence", "plan_objects", "present_on_remote"]


@dataclass(frozen=True, slots=True)
class Failure:
    """One object that could not be transferred: the workspace path it belongs to, its oid, why.

    `missing`: the source does not have it (as opposed to a failed or corrupt transfer).
    """

    path: str
    oid: str
    reason: str
    missing: bool = False


class TreeOids(Collection[str]):
    """The file oids a manifest lists, read from the compact `Tree` on each pass (nothing is kept per file)."""

    __slots__ = ("tree",)

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    def __iter__(self) -> Iterator[str]:
        return iter(self.tree.oids())

    def __len__(self) -> int:
        return len(self.tree)

    def __contains__(self, oid: object) -> bool:
        return any(o == oid for o in self.tree.oids())  # a scan: callers iterate instead


@dataclass(frozen=True, slots=True, eq=False)
class DirObject:
    """A directory out: its manifest's oid and the oids of the files the manifest lists (with repeats)."""

    path: str
    oid: str
    files: Collection[str]


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    """File objects, manifests, and outs that could not be read.

    `files` maps each file oid to the first out naming it: a file out's workspace path, or the
    `DirObject` listing it (its path inside the directory comes from `paths_of`). `sizes`, when
    asked for (`plan_objects(sizes=True)`), holds the size in bytes each file's record or manifest
    claims, in the order of `files` (8 bytes a file, not a dict entry): a claim only, as the
    file that made it is untrusted; whoever reads the object checks its bytes against its oid.
    """

    files: dict[str, str | DirObject] = field(default_factory=dict)
    dirs: tuple[DirObject, ...] = ()
    failures: tuple[Failure, ...] = ()
    sizes: array[int] = field(default_factory=lambda: array("q"))

    def paths_of(self, oids: Iterable[str]) -> dict[str, str]:
        """The workspace path of each of `oids` (the first file naming it), for error messages.

        A directory's manifest is scanned once for all of its `oids`; an oid not in the plan maps to "".
        """
        result: dict[str, str] = {}
        inside: dict[int, set[str]] = {}
        for oid in oids:
            owner = self.files.get(oid, "")
            if isinstance(owner, str):
                result[oid] = owner
            else:
                inside.setdefault(id(owner), set()).add(oid)
        for d in self.dirs:
            wanted = inside.pop(id(d), None)
            if not wanted:
                continue
            if isinstance(d.files, TreeOids):
                for relpath, oid in zip(d.files.tree.paths(), d.files.tree.oids()):
                    if oid in wanted and oid not in result:
                        result[oid] = f"{d.path}/{relpath}"
            for oid in wanted:
                result.setdefault(oid, d.path)
        return result


def plan_objects(store: ObjectStore, outs: Sequence[PathRecord], *, sizes: bool = False) -> ObjectPlan:
    """Expand `outs` through the manifests in `store`; a manifest missing, corrupt or unreadable there is a failure.

    With `sizes`, the plan also holds each file's claimed size (`ObjectPlan.sizes`).
    """
    files: dict[str, str | DirObject] = {}
    dirs: dict[str, DirObject] = {}
    failures: list[Failure] = []
    claimed = array("q")
    for out in outs:
        if not is_dir_oid(out.oid):
            if sizes and out.oid not in files:
                claimed.append(out.size if 0 <= out.size < 1 << 62 else -1)  # -1: no claim
            files.setdefault(out.oid, out.path)
            continue
        if out.oid in dirs:
            continue
        try:
            tree = tree_of(store, out.oid)
        except (CacheError, OSError) as exc:
            failures.append(Failure(out.path, out.oid, str(exc)))
            continue
        d = DirObject(out.path, out.oid, TreeOids(tree))
        if sizes:
            for entry in tree.entries:
                if entry.oid not in files:
                    files[entry.oid] = d
                    claimed.append(entry.size)
        else:
            for oid in tree.oids():
                files.setdefault(oid, d)
        dirs[out.oid] = d
    return ObjectPlan(files, tuple(dirs.values()), tuple(failures), claimed)


class Presence(Container[str]):
    """Which of a plan's objects a remote holds, without a set of every vouched oid.

    A file is present when it was found on the remote, or when the first out naming it in the
    plan is a directory whose manifest is on the remote (push uploads a manifest only after its
    files). A set of every vouched oid cost ~110 bytes a file (~110 MB for a million).
    """

    __slots__ = ("found", "manifests", "plan")

    def __init__(self, plan: ObjectPlan, manifests: Collection[str], found: Collection[str]) -> None:
        self.plan = plan
        self.manifests = manifests  # manifest oids on the remote
        self.found = found  # other oids looked up and found

    def __contains__(self, oid: object) -> bool:
        if oid in self.found or oid in self.manifests:
            return True
        owner = self.plan.files.get(oid) if isinstance(oid, str) else None
        return isinstance(owner, DirObject) and owner.oid in self.manifests


def present_on_remote(
    rem: Remote, plan: ObjectPlan, *, verify: bool = False, manifests: Collection[str] | None = None
) -> Presence:
    """Which of the plan's objects `rem` holds.

    Push uploads a manifest only after every file it lists, so a manifest on the remote vouches
    for its files: they are not asked about. A no-op push of a 10,000-file directory is then one
    request, not a listing of the remote. With `verify`, nothing vouches: every object is looked
    up (by listing the remote's prefixes, or one batched request per object when they are few),
    which finds the files someone deleted from the remote behind pipe's back. `manifests` (when
    the caller asked already) are the plan's manifests on the remote: they are not asked again.

    Raises:
        RemoteError: the remote cannot be reached or listed.
    """
    if verify:
        return Presence(plan, set(), _present(rem, [*plan.files, *(d.oid for d in plan.dirs)]))
    if manifests is None:
        manifests = _present(rem, [d.oid for d in plan.dirs])
    # Only the files of directories whose manifest is absent are asked about, in one pass.
    rest = [oid for oid, owner in plan.files.items() if not (isinstance(owner, DirObject) and owner.oid in manifests)]
    return Presence(plan, manifests, _present(rem, rest))


def _present(rem: Remote, oids: Collection[str]) -> set[str]:
    """The oids of `oids` that `rem` holds (shared strings, no copies)."""
    if not oids:
        return set()
    absent = rem.missing(oids)
    return {o for o in oids if o not in absent}
