"""`pipe gc`: delete cache objects that nothing in the chosen scope references."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_engine.cache.pointer import read_pointer
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PipeError
from pipeline_engine.ops.objects import plan_objects
from pipeline_engine.ops.used import used_outs
from pipeline_engine.pipeline.lock import LOCK_FILE, parse_lock
from pipeline_engine.project import Project

if TYPE_CHECKING:
    from pipeline_engine.ops.cloud import RemoteGcResult

__all__ = ["GcOptions", "GcResult", "collect_used_oids", "expand_oids", "gc"]


@dataclass(frozen=True, slots=True)
class GcOptions:
    """What to keep (`workspace`, `all_commits`), whether to clean a remote too, and `dry`."""

    workspace: bool = False
    all_commits: bool = False
    cloud: bool = False
    remote: str | None = None
    dry: bool = False


@dataclass(frozen=True, slots=True)
class GcResult:
    """Objects removed (or that would be, with `dry`) and their total size; `cloud` for the remote."""

    removed: int
    bytes: int
    kept: int
    dry: bool
    cloud: RemoteGcResult | None = None


def gc(project: Project, options: GcOptions) -> GcResult:
    """Remove unreferenced objects from the cache and, with `cloud`, from the remote.

    The scope is the workspace, plus every commit with `all_commits`; gc never guesses it.

    Raises:
        PipeError: no scope was chosen.
        RemoteError: with `cloud`, the remote cannot be listed or changed.
    """
    if not (options.workspace or options.all_commits):
        raise PipeError(
            "choose what to keep: '--workspace' (this checkout) or '--all-commits' (every git commit)",
            hint="run 'pipe gc --workspace --dry' to see what would be removed",
        )
    with project.mutex("pipe gc"):
        keep = collect_used_oids(project, all_commits=options.all_commits)
        cloud = None
        if options.cloud:
            # The remote first: its manifests may have to come through the local cache.
            from pipeline_engine.ops.cloud import gc_remote

            cloud = gc_remote(project, options.remote, keep, dry=options.dry)
        removed = size = kept = 0
        for oid in list(project.store.iter_oids()):
            if oid in keep:
                kept += 1
                continue
            removed += 1
            size += project.store.size_of(oid)
            if not options.dry:
                project.store.remove(oid)
        return GcResult(removed, size, kept, options.dry, cloud)


def collect_used_oids(project: Project, *, all_commits: bool = False) -> set[Oid]:
    """Every oid referenced by the workspace and, with `all_commits`, by every git commit."""
    outs = list(used_outs(project))
    if all_commits and project.git is not None:
        outs.extend(_outs_in_history(project))
    return expand_oids(project.store, outs)


def expand_oids(store: ObjectStore, outs: Sequence[PathRecord]) -> set[Oid]:
    """The oids of `outs` plus, for directories, every file oid their manifests list.

    A manifest missing or corrupt in the cache expands to nothing ('pipe cache verify' reports it).
    """
    plan = plan_objects(store, outs)
    return {o.oid for o in outs} | {Oid(f) for f in plan.files}


def _outs_in_history(project: Project) -> list[PathRecord]:
    """Outs named by the pointer files and pipeline.lock of every commit."""
    git = project.git
    assert git is not None
    outs: list[PathRecord] = []
    lock_path = project.relpath_from_git(LOCK_FILE)
    with tempfile.TemporaryDirectory(dir=project.control_dir / "tmp") as tmp:
        for rev in git.revisions(all_commits=True):
            for _, data in git.iter_files_at(rev, suffix=".pipe"):
                (Path(tmp) / "p.pipe").write_bytes(data)
                try:
                    outs.append(read_pointer(Path(tmp), "p.pipe").out)
                except PipeError:
                    continue  # an old, broken pointer keeps nothing alive
            text = git.read_at(rev, lock_path)
            try:
                lock = parse_lock(text) if text is not None else None
            except PipeError:
                lock = None  # likewise an old, broken lock file
            if lock is not None:
                outs.extend(r for e in lock.stages.values() for r in e.outs)
    return outs
