"""`pipe remove`: stop tracking paths (delete their pointers, or stages, and ignore entries; optionally the data)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, read_pointer
from pipeline_engine.core.fsutil import atomic_write, relpath_in, remove_path
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.errors import CheckoutError, PathError, SpecError
from pipeline_engine.index.outs import is_cached, record_of
from pipeline_engine.pipeline.edit import remove_stage
from pipeline_engine.pipeline.lock import write_stage
from pipeline_engine.pipeline.spec import PIPELINE_FILE
from pipeline_engine.project import Project

__all__ = ["Removed", "remove"]


@dataclass(frozen=True, slots=True)
class Removed:
    """One pointer file or stage removed, the data paths it tracked, and whether they were deleted too."""

    what: str  # the pointer file, or "stage 'NAME'"
    paths: tuple[str, ...]
    data_deleted: bool


def remove(project: Project, names: Sequence[str], *, outs: bool = False, force: bool = False) -> list[Removed]:
    """Remove pointer files, or stages from pipeline.yaml (DVC's `dvc remove STAGE`); with `outs`,
    delete the tracked data as well (it stays in the cache).

    A stage goes with its pipeline.lock entry and the .gitignore lines of its outs; comments and
    layout of pipeline.yaml are kept. Data whose current content is not in the cache (changed since
    it was recorded) would be lost: unless `force`, it is refused, as checkout refuses (DVC deletes
    it silently).

    Raises:
        PathError: a name is neither a pointer file nor a stage, or a data path fails the path gate.
        SpecError: a name is one item of a foreach/matrix stage.
        CheckoutError: with `outs`, a path's content is not in the cache and `force` is false.
            Every name is checked before anything is removed.
    """
    with project.mutex("pipe remove"):
        pointers: list[tuple[Pointer, Path | None]] = []
        stages: list[tuple[str, list[str], list[Path]]] = []
        for name in names:
            rel = relpath_in(project.root, name)
            pointer_rel = rel if rel.endswith(POINTER_SUFFIX) else rel + POINTER_SUFFIX
            if (project.root / pointer_rel).is_file():
                pointer = read_pointer(project.root, pointer_rel)
                data = resolve_in_project(project.root, pointer.data_relpath, source=pointer_rel) if outs else None
                if data is not None and not force:
                    _refuse_losses(project, pointer.data_relpath, keep=f"pipe add {pointer.data_relpath}",
                                   forced=f"pipe remove --outs --force {pointer_rel}")
                pointers.append((pointer, data))
            else:
                stages.append(_stage_removal(project, name, outs=outs, force=force))
        results = [_drop_pointer(project, p, data) for p, data in pointers]
        if stages:
            results += _drop_stages(project, stages, outs=outs)
        return results


def _drop_pointer(project: Project, pointer: Pointer, data: Path | None) -> Removed:
    if data is not None:
        remove_path(data)
    os.unlink(project.root / pointer.relpath)
    project.memo.drop_placed([pointer.data_relpath])  # the data is the user's now: checkout never deletes it
    if project.git is not None:
        project.git.unignore(project.relpath_from_git(pointer.data_relpath))
    return Removed(pointer.relpath, (pointer.data_relpath,), data is not None)


def _stage_removal(project: Project, name: str, *, outs: bool, force: bool) -> tuple[str, list[str], list[Path]]:
    """(stage group, its generated stage names, the out paths to delete) for `name`, checked.

    Raises:
        PathError: no pointer file and no stage is called `name`.
        SpecError: `name` is one item of a foreach/matrix stage.
        CheckoutError: as `remove`.
    """
    from pipeline_engine.index.pipeline import load_pipeline

    spec = load_pipeline(project).stages if (project.root / PIPELINE_FILE).is_file() else {}
    file, colon, stage_name = name.partition(":")  # DVC's `pipeline.yaml:NAME`, `./pipeline.yaml:NAME`, `:NAME`
    group = stage_name if colon and (not file or posixpath.normpath(file) == PIPELINE_FILE) else name
    members = [n for n, stage in spec.items() if stage.group == group]
    if not members:
        item = spec.get(group)
        if item is not None:
            raise SpecError(f"'{name}' is one item of '{item.group}'; a foreach/matrix stage is removed as a whole",
                            hint=f"run 'pipe remove {item.group}'")
        raise PathError(f"'{name}' is neither a pointer file nor a stage of {PIPELINE_FILE}",
                        hint="run 'pipe status' to list the tracked data and stages")
    deleted: list[Path] = []
    for member in members:
        for out in spec[member].outs:
            data = resolve_in_project(project.root, out.path, source=PIPELINE_FILE) if outs else None
            if data is None or not os.path.lexists(data):
                continue
            if out.cache and not force:
                _refuse_losses(project, out.path, keep=f"pipe commit {member}", forced=f"pipe remove --outs --force {group}")
            deleted.append(data)
    return group, members, deleted


def _drop_stages(project: Project, stages: Sequence[tuple[str, list[str], list[Path]]], *, outs: bool) -> list[Removed]:
    from pipeline_engine.index.pipeline import load_pipeline

    spec = load_pipeline(project).stages
    path = project.root / PIPELINE_FILE
    text = path.read_text(encoding="utf-8")
    for group in dict.fromkeys(g for g, _, _ in stages):
        text = remove_stage(text, group)
    atomic_write(path, text)
    results = []
    for group, members, deleted in stages:
        paths = [out.path for member in members for out in spec[member].outs]
        for data in deleted:
            remove_path(data)
        for member in members:
            write_stage(project.root, member, None)
        project.memo.drop_placed(paths)
        if project.git is not None:
            for out_path in paths:
                project.git.unignore(project.relpath_from_git(out_path))
        results.append(Removed(f"stage '{group}'", tuple(paths), outs))
    return results


def _refuse_losses(project: Project, relpath: str, *, keep: str, forced: str) -> None:
    """Refuse to delete `relpath` when its current content is not in the cache (it exists nowhere else)."""
    current = record_of(project, relpath)
    if current is not None and not is_cached(project, current.oid):
        raise CheckoutError(
            f"'{relpath}' has changes that are not in the cache; 'pipe remove --outs' would delete them",
            hint=f"run '{keep}' to keep them first, or '{forced}' to delete them",
        )
