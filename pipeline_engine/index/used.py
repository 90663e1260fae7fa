"""Which outs the workspace (or a scope of git revisions) references: pointers, and stage outs from pipeline.lock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.tree import Tree, TreeEntry
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import ObjectNotFoundError, PathError, StageNotFoundError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.revisions import WORKSPACE, Revision
from pipeline_engine.index.targets import Selection, StageOut, Target
from pipeline_engine.project import Project

if TYPE_CHECKING:  # imported where used: `pipe status` reads only the workspace
    from pipeline_engine.index.history import History

__all__ = ["UsedOut", "target_record", "used_outs", "used_outs_in"]


def used_outs(
    project: Project, *, targets: Sequence[str] = (), remote: str | None = None, fetch_manifests: bool = False,
    index: ProjectIndex | None = None,
) -> list[PathRecord]:
    """Every out that pointer files (and the lock file) of the workspace reference, chosen by `targets`.

    `PathRecord.path` is project-relative. Targets follow `index/targets.py`'s rules; a target
    inside a tracked directory selects only that file or sub-directory (see `target_record`); with
    `fetch_manifests` (fetch, pull), the directory's manifest is first downloaded from `remote` (or
    the default) when the cache lacks it. `index`: the command's index, when it has one already.

    Raises:
        PathError: a target tracks nothing, or its pointer file was deleted from the workspace.
        ObjectNotFoundError: a target inside a directory whose manifest is not in the cache.
    """
    index = index or ProjectIndex(project)
    chosen = index.select(targets)
    chosen.raise_for_unknown(index)
    if fetch_manifests:
        _fetch_manifests(index, [t for t in chosen.pointers if t.inside], remote)
    return [*(target_record(project, t) for t in chosen.pointers), *(o.record for o in chosen.outs)]


@dataclass(frozen=True, slots=True)
class UsedOut:
    """An out some revision references, with the `remote:` its stage names there and whether push may send it."""

    record: PathRecord
    remote: str | None = None
    pushable: bool = True
    revision: str = ""  # the label of the first revision met that needs it (`workspace`, a branch, a short sha)


def used_outs_in(
    project: Project, revisions: Sequence[Revision], targets: Sequence[str] = (), *, remote: str | None = None,
    fetch_manifests: bool = False, history: History | None = None,
) -> list[UsedOut]:
    """Every out `targets` select at any of `revisions` (all tracked data when empty), each once.

    Each revision is read through its `ProjectIndex` (`History.index`, nothing checked out) and
    selects by the same rules as `used_outs`; an out is one (path, oid, remote) however many
    revisions name it, in the order first met (the workspace first when included). A target only
    needs to select something at one revision; a target inside a tracked directory selects that
    part at each revision whose directory holds it. `remote` and `fetch_manifests` as `used_outs`.

    Raises:
        PathError: a target selects nothing at any of the revisions (the hint is the workspace's).
        SpecError: a revision's pointer, lock or pipeline.yaml is invalid (the message names it and the revision).
        ObjectNotFoundError: a target inside a directory whose manifest is not in the cache.
    """
    from pipeline_engine.index.history import History
    from pipeline_engine.index.sync import own_remote

    history = history or History(project)
    history.read_trees(revisions)
    found: dict[tuple[str, str, str | None], UsedOut] = {}
    matched: set[str] = set()
    inside_found: set[str] = set()
    inside_missed: dict[str, PathError] = {}
    not_stages: dict[str, StageNotFoundError] = {}
    for revision in revisions:
        index = history.index(revision)
        chosen = _select_each(index, targets, not_stages)
        if fetch_manifests:
            _fetch_manifests(index, [t for t in chosen.pointers if t.inside], remote)
        records = [o.record for o in chosen.outs]
        for target in chosen.pointers:
            try:
                records.append(target_record(project, target))
                inside_found.add(target.data_relpath)
            except PathError as exc:  # not in the directory at this revision: it may be at another
                inside_missed.setdefault(target.data_relpath, exc)
        matched.update(t for t in targets if t not in chosen.unknown)
        own, unpushed = index.out_remotes, index.unpushed
        for r in records:
            name = own_remote(r.path, own)
            found.setdefault((r.path, r.oid, name), UsedOut(r, name, r.path not in unpushed, revision.label))
    for path, error in inside_missed.items():
        if path not in inside_found:
            raise error
    missing = [t for t in targets if t not in matched]
    if missing and missing[0] in not_stages:
        raise not_stages[missing[0]]
    if missing:
        Selection().raise_for_unknown(history.index(Revision(WORKSPACE)), unmatched=missing[0])
    return list(found.values())


def _select_each(index: ProjectIndex, targets: Sequence[str], not_stages: dict[str, StageNotFoundError]) -> Selection:
    """`index.select(targets)`, one target at a time: a name close to a stage of this revision is unknown here.

    `select` refuses such a name (`trian` for `train`); across revisions it may be a stage or a
    path of another one, so the refusal is kept in `not_stages` for when no revision knows it.
    """
    if not targets:
        return index.select(targets)
    outs: dict[str, StageOut] = {}
    pointers: dict[tuple[str, str], Target] = {}
    unknown: list[str] = []
    for target in targets:
        try:
            chosen = index.select([target])
        except StageNotFoundError as exc:
            not_stages.setdefault(target, exc)
            unknown.append(target)
            continue
        outs.update((o.record.path, o) for o in chosen.outs)
        pointers.update(((t.pointer.relpath, t.inside), t) for t in chosen.pointers)
        unknown.extend(chosen.unknown)
    return Selection((), tuple(outs.values()), tuple(pointers.values()), tuple(unknown))


def _fetch_manifests(index: ProjectIndex, inner: Sequence[Target], remote: str | None) -> None:
    """Download the manifests of the directories that granular targets point into, if missing."""
    project = index.project
    from pipeline_engine.core.progress import NullProgress
    from pipeline_engine.index.download import download_objects
    from pipeline_engine.index.sync import open_remotes_for

    wanted = {t.pointer.out.oid: t.pointer.data_relpath for t in inner if not project.store.exists(t.pointer.out.oid)}
    if not wanted:
        return
    whole = [PathRecord(path, Oid(oid), 0) for oid, path in wanted.items()]
    for rem, group in open_remotes_for(project, whole, remote, own=index.out_remotes):
        download_objects(project.store, rem, {o.oid: o.path for o in group}, NullProgress(), "manifests")


def target_record(project: Project, target: Target) -> PathRecord:
    """The record of what `target` selects, project-relative.

    For a path inside a tracked directory: its file entry, or for a sub-directory a manifest of
    the entries under it (stored in the cache, so checkout, status and transfers handle it as
    any directory out).

    Raises:
        ObjectNotFoundError: the directory's manifest is not in the cache (it lists the files).
        PathError: the directory's manifest has no such file or sub-directory.
    """
    out = target.pointer.out
    if not target.inside:
        return PathRecord(target.pointer.data_relpath, out.oid, out.size, out.nfiles, out.isexec)
    try:
        tree = tree_of(project.store, out.oid)
    except ObjectNotFoundError:
        data = target.pointer.data_relpath
        raise ObjectNotFoundError(
            f"'{target.data_relpath}': the manifest of '{data}' (object '{out.oid}') is not in the cache, "
            "so the files inside it are not known",
            hint=f"run 'pipe fetch {data}' to fetch it",
        ) from None
    sub = target.inside
    entry = tree.by_path().get(sub)
    if entry is not None:
        return PathRecord(target.data_relpath, entry.oid, entry.size, None, entry.isexec)
    under = [TreeEntry(e.relpath[len(sub) + 1:], e.oid, e.size, e.isexec) for e in tree.under(sub)]
    if not under:
        raise PathError(
            f"'{target.data_relpath}' is not in the tracked version of '{target.pointer.data_relpath}'",
            hint=f"run 'pipe status {target.pointer.data_relpath}' to see what it holds",
        )
    part = Tree.from_entries(under)
    oid: Oid = project.store.put_chunks(part.iter_bytes(), suffix=".dir")
    return PathRecord(target.data_relpath, oid, part.size, len(part))
