"""A stage's deps, params and outs in the workspace: measure them, save outs to the cache, restore them from it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pipeline_engine.cache.checkout import checkout
from pipeline_engine.cache.link import LinkType, parse_link_types
from pipeline_engine.cache.pointer import Pointer, write_pointer
from pipeline_engine.cache.workspace import is_cached as is_complete
from pipeline_engine.cache.workspace import save, scan
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError, MissingOutputError, SpecError
from pipeline_engine.index.pointers import find_pointers
from pipeline_engine.pipeline.lock import StageLock
from pipeline_engine.pipeline.params import pick, read_params_file
from pipeline_engine.pipeline.plan import StageState
from pipeline_engine.pipeline.spec import StageSpec
from pipeline_engine.project import Project

__all__ = ["is_cached", "link_types", "measure", "record_of", "restore_outs", "save_outs", "save_pointer_deps"]


def link_types(project: Project) -> tuple[LinkType, ...]:
    """The configured link types, in order of preference."""
    return parse_link_types(project.config.cache_types)


def record_of(project: Project, relpath: str) -> PathRecord | None:
    """The current hash record of a workspace path, None when it does not exist."""
    try:
        s = scan(project.root, relpath, project.memo, store=project.store)
    except FileNotFoundError:
        return None
    return PathRecord(s.relpath, s.oid, s.size, s.nfiles, s.isexec and s.nfiles is None)


def is_cached(project: Project, oid: str) -> bool:
    """True when the object (and, for a directory, every file it lists) is in the store."""
    return is_complete(project.store, oid, memo=project.memo)


def read_params(project: Project, stage: StageSpec) -> dict[str, dict[str, Any]]:
    """The current values of the stage's tracked params, by params file.

    Raises:
        SpecError: a params file or a tracked key is missing.
    """
    values: dict[str, dict[str, Any]] = {}
    for dep in stage.params:
        try:
            data = read_params_file(
                resolve_in_project(project.root, dep.path, source=f"stage '{stage.name}'", follow=True),
                source=dep.path,
            )
        except SpecError as exc:
            raise SpecError(f"stage '{stage.name}': {exc.message}", hint=exc.hint) from None
        values[dep.path] = pick(data, dep.keys, source=dep.path, stage=stage.name)
    return values


def measure(project: Project, stage: StageSpec, lock: StageLock | None) -> StageState:
    """What the stage's deps, params, env and outs are now."""
    outs = {o.path: record_of(project, o.path) for o in stage.outs}
    recorded = {r.path: r for r in lock.outs} if lock else {}
    uncached = frozenset(
        o.path for o in stage.outs
        if o.cache and o.path in recorded and outs[o.path] is not None
        and outs[o.path].oid == recorded[o.path].oid  # type: ignore[union-attr]
        and not is_cached(project, recorded[o.path].oid)
    )
    return StageState(
        deps={d: record_of(project, d) for d in stage.deps},
        params=read_params(project, stage),
        env={name: os.environ.get(name) for name in stage.env},
        outs=outs,
        uncached=uncached,
    )


def restore_outs(
    project: Project, records: tuple[PathRecord, ...], copies: frozenset[str] = frozenset()
) -> bool:
    """Check recorded outs out of the cache (overwriting the workspace).

    The outs in `copies` (`cache: false` outs, kept in the store for the run cache) are written
    as plain copies, never links: like a git-tracked file, the user may edit them in place.
    False when an object is missing, or corrupt (it is then quarantined and the path left as
    it was), so the caller runs the stage instead.
    """
    if not all(is_cached(project, r.oid) for r in records):
        return False
    types = link_types(project)
    for r in records:
        try:
            result = checkout(project.store, project.root, r.path, r.oid, project.memo,
                              link_types=(LinkType.COPY,) if r.path in copies else types,
                              isexec=r.isexec, force=True)
        except CacheError:  # a manifest found corrupt (quarantined) or gone meanwhile
            return False
        if result.corrupt:
            return False
    return True


def save_outs(project: Project, stage: StageSpec, *, keep_uncached: bool = False) -> tuple[PathRecord, ...]:
    """Hash every out of `stage`, store the cached ones and git-ignore them; return their records.

    With `keep_uncached` (a run-cacheable stage), the content of `cache: false` outs goes into the
    store too, as DVC does, so the run cache can restore them; their workspace files stay plain
    files (copied, not linked), not git-ignored, and `push`/`checkout` still leave them to git.

    Raises:
        MissingOutputError: an out does not exist.
    """
    records = []
    types = link_types(project)
    for out in stage.outs:
        try:
            # ingest: an out to be saved is copied into the cache as it is hashed (read once)
            scanned = scan(project.root, out.path, project.memo, store=project.store,
                           ingest=out.cache or keep_uncached)
        except FileNotFoundError:
            raise MissingOutputError(
                f"stage '{stage.name}' did not create its out '{out.path}'",
                hint="make the command write it, or remove it from the stage's outs",
            ) from None
        if out.cache:
            save(project.store, project.root, scanned, link_types=types, memo=project.memo)
            if project.git is not None:
                project.git.ignore(project.relpath_from_git(out.path))
        elif keep_uncached:
            save(project.store, project.root, scanned, link_types=(LinkType.COPY,), memo=project.memo)
        records.append(PathRecord(out.path, scanned.oid, scanned.size, scanned.nfiles, scanned.isexec))
    return tuple(records)


def save_pointer_deps(
    project: Project, stages: Sequence[StageSpec], *, pointers: Sequence[Pointer] | None = None
) -> list[str]:
    """Cache the pointer-tracked deps of `stages` whose content changed, and rewrite their pointers.

    As DVC's repro commits a changed data source before running its dependents: the pointer and
    the lock then agree, and `pipe push` sends the new content. A dep is pointer-tracked when a
    `.pipe` file tracks it or a directory holding it. Returns the rewritten pointer files.
    `pointers`: the command's pointers (`ProjectIndex.pointers`); listed here when None.

    Raises:
        SpecError: a pointer file is invalid.
    """
    deps = {d for s in stages for d in s.deps}
    if not deps:
        return []
    used = [p for p in (find_pointers(project) if pointers is None else pointers)
            if any(d == p.data_relpath or d.startswith(p.data_relpath + "/") for d in deps)]
    types = link_types(project)
    written = []
    for pointer in used:
        path = pointer.data_relpath
        resolve_in_project(project.root, path, source=pointer.relpath)
        try:
            scanned = scan(project.root, path, project.memo, store=project.store)
        except FileNotFoundError:
            continue  # a missing dep is the stage's error (with 'pipe pull' as the hint)
        isexec = scanned.isexec and scanned.nfiles is None
        if scanned.oid == pointer.out.oid and isexec == pointer.out.isexec:
            continue
        out = save(project.store, project.root, scanned, link_types=types, memo=project.memo)
        name = pointer.out.path
        write_pointer(project.root,
                      Pointer(pointer.relpath, PathRecord(name, out.oid, out.size, out.nfiles, isexec)).annotated(pointer))
        written.append(pointer.relpath)
    return written
