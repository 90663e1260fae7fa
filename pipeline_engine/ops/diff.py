"""`pipe diff`: tracked data added, deleted, modified and renamed between two revisions, or a revision and the workspace.

What counts is DVC's `dvc diff`: every pointer-tracked path and every cached stage out (a
directory as `dir/`, and each file inside it), compared by oid. A revision's records come from its
pointers and lock (`ProjectIndex.at`), the files inside its directories from their manifests in the
local cache; the workspace's records are the paths its pointers and pipeline.yaml track, hashed now
through the hash memo (nothing is written to the cache). An entry deleted on one side and added on
the other with the same oid is a rename (DVC's rule: each added path, in path order, takes the first
deleted path of the same oid).

A directory whose oid is the same on both sides is not opened: its files are the same too, so an
unchanged directory costs no manifest and no listing.
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.pointer import POINTER_SUFFIX
from pipeline_engine.cache.scan import scan, scan_tree
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.fsutil import relpath_in
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.core.revision import WORKSPACE
from pipeline_engine.errors import ObjectNotFoundError, PathError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.project import Project

__all__ = ["Change", "DataDiff", "DiffEntry", "diff"]

_EMPTY_TREE = Tree(())


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One tracked path on one side: project-relative (a directory ends with `/`), its oid, its size in bytes."""

    path: str
    oid: Oid
    size: int


@dataclass(frozen=True, slots=True)
class Change:
    """A path whose oid differs (`modified`) or an oid whose path differs (`renamed`)."""

    old: DiffEntry
    new: DiffEntry


@dataclass(frozen=True, slots=True)
class DataDiff:
    """`pipe diff A B`: each list sorted by path (a rename by its old path).

    `not_in_cache` (only when `b_rev` is the workspace) lists the old side of changes whose object
    the local cache lacks: that content cannot be checked out again from here (DVC's "not in cache").
    """

    a_rev: str
    b_rev: str
    added: tuple[DiffEntry, ...] = ()
    deleted: tuple[DiffEntry, ...] = ()
    modified: tuple[Change, ...] = ()
    renamed: tuple[Change, ...] = ()
    not_in_cache: tuple[DiffEntry, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing differs and nothing is missing from the cache."""
        return not (self.added or self.deleted or self.modified or self.renamed or self.not_in_cache)


@dataclass(frozen=True, slots=True)
class _Tracked:
    """A tracked path on one side; `tree` loads a directory's manifest only when its files are compared."""

    record: PathRecord
    tree: Callable[[], Tree]


def diff(project: Project, a_rev: str = "HEAD", b_rev: str | None = None, *,
         targets: Sequence[str] = ()) -> DataDiff:
    """Compare the tracked data of `a_rev` with `b_rev` (None: the workspace).

    `targets` are paths (relative to the current directory): only entries at or under one of them
    are compared; a path inside a tracked directory compares that part of it.

    Raises:
        ScmError: a revision names no commit, or the project is not in a git repository.
        ObjectNotFoundError: a revision's directory manifest is not in the local cache (its files are unknown).
        PathError: a target is tracked on neither side.
        SpecError: a pointer file, pipeline.yaml or pipeline.lock is invalid (on either side).
    """
    wanted = [_target_path(project, t) for t in targets]
    old_label, old = _revision(project, a_rev)
    new_label, new = _revision(project, b_rev) if b_rev is not None else (WORKSPACE, _workspace(project, wanted))
    for target, rel in zip(targets, wanted, strict=True):
        if not any(_related(path, rel) for path in (*old, *new)):
            there = "in the workspace" if b_rev is None else f"at '{new_label}'"
            raise PathError(f"'{target}' is tracked neither at '{old_label}' nor {there}",
                            hint="run 'pipe status' to list the tracked data")
    old_entries, new_entries = _entries(old, new, wanted), _entries(new, old, wanted)
    added, deleted, modified, renamed = _compare(old_entries, new_entries)
    missing: list[DiffEntry] = []
    if b_rev is None:
        changed_old = [*deleted, *(c.old for c in modified), *(c.old for c in renamed)]
        missing = sorted((e for e in changed_old if not project.store.exists(e.oid)), key=lambda e: e.path)
    return DataDiff(old_label, new_label, tuple(added), tuple(deleted), tuple(modified), tuple(renamed),
                    tuple(missing))


def _target_path(project: Project, target: str) -> str:
    """A target as a project-relative path; a pointer file (`data.pipe`) stands for the data it tracks."""
    rel = relpath_in(project.root, target).rstrip("/")
    return rel.removesuffix(POINTER_SUFFIX)


def _related(path: str, rel: str) -> bool:
    """True when tracked `path` is at or under target `rel`, or holds it."""
    return rel in ("", path) or path.startswith(rel + "/") or rel.startswith(path + "/")


def _selected(path: str, wanted: Sequence[str]) -> bool:
    return not wanted or any(rel in ("", path) or path.startswith(rel + "/") for rel in wanted)


def _revision(project: Project, rev: str) -> tuple[str, dict[str, _Tracked]]:
    """The records a revision's pointers and lock hold, by path; directory files come from manifests in the cache."""
    index = ProjectIndex.at(project, rev)
    label = index.files.label
    store = project.store
    return label, {r.path: _Tracked(r, _manifest_loader(store, r, label)) for r in index.used_outs()}


def _manifest_loader(store: ObjectStore, record: PathRecord, label: str) -> Callable[[], Tree]:
    def load() -> Tree:
        if record.oid == _EMPTY_TREE.oid:  # known without any cache (a fresh clone has none)
            return _EMPTY_TREE
        try:
            return tree_of(store, record.oid)
        except ObjectNotFoundError:
            raise ObjectNotFoundError(
                f"'{record.path}' at '{label}': its directory manifest '{record.oid}' is not in the cache, "
                "so the files inside it are not known",
                hint=f"run 'pipe fetch --rev {label} {record.path}' to download that revision's data",
            ) from None

    return load


def _workspace(project: Project, wanted: Sequence[str]) -> dict[str, _Tracked]:
    """The paths the workspace's pointers and pipeline.yaml track, as they are now (hashed through the memo)."""
    index = ProjectIndex(project)
    paths = [p.data_relpath for p in index.pointers]
    paths += [o.path for s in index.spec.stages.values() for o in s.outs if o.cache]
    root, memo, store = project.root, project.memo, project.store
    found: dict[str, _Tracked] = {}
    for rel in dict.fromkeys(paths):
        if wanted and not any(_related(rel, w) for w in wanted):
            continue  # never hashed: a target filter makes the workspace side cost only what it names
        if not os.path.lexists(root / rel):
            continue
        try:
            now = scan(root, rel, memo, store=store)
        except FileNotFoundError:  # deleted while we looked
            continue
        found[rel] = _Tracked(PathRecord(rel, now.oid, now.size, now.nfiles), _scanned_loader(project, rel, now.tree))
    return found


def _scanned_loader(project: Project, rel: str, tree: Tree | None) -> Callable[[], Tree]:
    """A workspace directory's files: the tree `scan` built, or (after a memo hit) one built from the memo."""

    def load() -> Tree:
        if tree is not None:
            return tree
        return scan_tree(project.root, rel, project.memo, store=project.store)

    return load


def _entries(side: Mapping[str, _Tracked], other: Mapping[str, _Tracked],
             wanted: Sequence[str]) -> dict[str, DiffEntry]:
    """Path (without a directory's `/`) -> entry, for the tracked paths and the files inside changed directories."""
    entries: dict[str, DiffEntry] = {}
    for path, tracked in side.items():
        record = tracked.record
        if _selected(path, wanted):
            entries[path] = DiffEntry(f"{path}/" if record.isdir else path, record.oid, record.size)
        twin = other.get(path)
        if not record.isdir or (twin is not None and twin.record.oid == record.oid):
            continue
        if wanted and not any(_related(path, w) for w in wanted):
            continue  # a directory no target reaches into: its manifest is not needed
        for e in tracked.tree().entries:
            inner = f"{path}/{e.relpath}"
            if _selected(inner, wanted):
                entries[inner] = DiffEntry(inner, e.oid, e.size)
    return entries


def _compare(old: Mapping[str, DiffEntry], new: Mapping[str, DiffEntry]
             ) -> tuple[list[DiffEntry], list[DiffEntry], list[Change], list[Change]]:
    """Added, deleted, modified and renamed entries, each sorted by path (DVC's order and pairing)."""
    added = [new[k] for k in sorted(new.keys() - old.keys())]
    deleted = [old[k] for k in sorted(old.keys() - new.keys())]
    modified = [Change(old[k], new[k]) for k in sorted(old.keys() & new.keys()) if old[k].oid != new[k].oid]
    by_oid: dict[str, deque[DiffEntry]] = defaultdict(deque)
    for entry in deleted:
        by_oid[entry.oid].append(entry)
    renamed: list[Change] = []
    still_added: list[DiffEntry] = []
    for entry in added:
        gone = by_oid.get(entry.oid)
        if gone:
            renamed.append(Change(gone.popleft(), entry))
        else:
            still_added.append(entry)
    paired = {c.old.path for c in renamed}
    still_deleted = [e for e in deleted if e.path not in paired]
    return (sorted(still_added, key=_path_of), sorted(still_deleted, key=_path_of),
            sorted(modified, key=_old_path_of), sorted(renamed, key=_old_path_of))


def _path_of(entry: DiffEntry) -> str:
    return entry.path


def _old_path_of(change: Change) -> str:
    return change.old.path
