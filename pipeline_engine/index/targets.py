"""User targets -> stages and tracked data, by one set of rules for every command.

A target is, in this order:
1. a stage: its name, `pipeline.yaml:NAME` (or `:NAME`), a generated stage `NAME@ITEM`, a
   foreach/matrix group `NAME` (all its items), or `pipeline.yaml` (every stage, as DVC takes
   `dvc.yaml`); it selects the stage and the cached outs its lock entry records;
2. a path (relative to the current directory, inside the project): every stage out and every
   pointer-tracked path at or under it (`data` selects `data/raw` and `data/clean`), or the
   pointer file itself (`data/raw.pipe`);
3. a path inside a pointer-tracked directory: that file or sub-directory of it only (DVC's
   granular targets; `Target.inside`).
A target that matches none of these is `unknown`; the command decides whether that is an error
(`Selection.raise_for_unknown` gives the one message with the next command).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer
from pipeline_engine.core.fsutil import relpath_in
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PathError, StageNotFoundError
from pipeline_engine.index.pointers import deleted_pointers, deleted_pointers_error

if TYPE_CHECKING:
    from pipeline_engine.index.project_index import ProjectIndex

__all__ = ["Selection", "StageOut", "Target", "select_targets"]


@dataclass(frozen=True, slots=True)
class Target:
    """A pointer chosen by a target; `inside` is a path inside its tracked directory ("" for all of it)."""

    pointer: Pointer
    inside: str = ""

    @property
    def data_relpath(self) -> str:
        """The project-relative path the target selects."""
        return f"{self.pointer.data_relpath}/{self.inside}" if self.inside else self.pointer.data_relpath


@dataclass(frozen=True, slots=True)
class StageOut:
    """A cached out recorded in pipeline.lock, with the stage that produces it."""

    stage: str
    record: PathRecord


@dataclass(frozen=True, slots=True)
class Selection:
    """What the targets chose: stage names (file order), their cached outs, pointers, and what matched nothing."""

    stages: tuple[str, ...] = ()
    outs: tuple[StageOut, ...] = ()
    pointers: tuple[Target, ...] = ()
    unknown: tuple[str, ...] = ()

    def raise_for_unknown(self, index: ProjectIndex, *, unmatched: str | None = None) -> None:
        """Raise the error for the first target that selects nothing (or for `unmatched`, given by the caller).

        Raises:
            PathError: a target tracks nothing (the hint says how to track it or produce it), or its
                pointer file was deleted from the workspace (the hint gives the git command).
        """
        target = unmatched or (self.unknown[0] if self.unknown else None)
        if target is None:
            return
        project = index.project
        rel = relpath_in(project.root, target).rstrip("/")
        gone = [g for g in deleted_pointers(project)
                if rel in (g, g[: -len(POINTER_SUFFIX)]) or g.startswith(rel + "/")]
        if gone:
            raise deleted_pointers_error(project, gone)
        raise PathError(f"'{target}' is not tracked by any pointer file", hint=_untracked_hint(index, target, rel))


def select_targets(index: ProjectIndex, targets: Sequence[str]) -> Selection:
    """Resolve `targets` by the rules in the module docstring; no targets select everything tracked.

    Raises:
        StageNotFoundError: a target names nothing on disk and is close to a stage name (`trian`).
    """
    if not targets:
        return Selection((), index.stage_outs, tuple(Target(p) for p in index.pointers))
    from pipeline_engine.pipeline.graph import resolve_target
    from pipeline_engine.pipeline.validate import suggest

    stages = index.spec.stages if index.has_pipeline else {}
    named: dict[str, None] = {}
    outs: dict[str, StageOut] = {}
    pointers: dict[tuple[str, str], Target] = {}
    unknown: list[str] = []
    for target in targets:
        try:
            names = resolve_target(stages, target) if stages else []
        except StageNotFoundError:
            names = []
        if names:
            named.update(dict.fromkeys(names))
            outs.update((o.record.path, o) for o in index.stage_outs if o.stage in names)
            continue
        rel = relpath_in(index.project.root, target).rstrip("/")
        hits = [o for o in index.stage_outs if rel in ("", o.record.path) or o.record.path.startswith(rel + "/")]
        chosen = _pointer_targets(index.pointers, rel)
        if not hits and not chosen:
            # a foreach/matrix group's name (`train`) is a target too: `tarin` should suggest it
            choices = list(dict.fromkeys([*(n.partition("@")[0] for n in stages), *stages]))
            if stages and suggest(target, choices) and not _exists(index, rel):
                raise StageNotFoundError(
                    f"'{target}' is neither a stage nor a path{suggest(target, choices)}",
                    hint="run 'pipe dag' to list the stages, 'pipe status' for everything tracked",
                )
            unknown.append(target)
        outs.update((o.record.path, o) for o in hits)
        pointers.update(((t.pointer.relpath, t.inside), t) for t in chosen)
    order = [n for n in stages if n in named]
    return Selection(tuple(order), tuple(outs.values()), tuple(pointers[k] for k in sorted(pointers)),
                     tuple(unknown))


def _pointer_targets(pointers: Sequence[Pointer], rel: str) -> list[Target]:
    """The pointers at or under `rel` (or `rel` is the pointer file); else the one directory holding `rel`."""
    matched = [Target(p) for p in pointers
               if rel in ("", p.relpath, p.data_relpath) or p.data_relpath.startswith(rel + "/")]
    if matched:
        return matched
    return [Target(p, rel[len(p.data_relpath) + 1:]) for p in pointers
            if p.out.isdir and rel.startswith(p.data_relpath + "/")]


def _exists(index: ProjectIndex, rel: str) -> bool:
    path = index.project.root / rel
    return os.path.lexists(path) or os.path.lexists(f"{path}{POINTER_SUFFIX}")


def _untracked_hint(index: ProjectIndex, target: str, rel: str) -> str:
    """The next command for a target nothing tracks: repro for a stage's out, add for existing data."""
    from pipeline_engine.errors import PipeError

    try:
        stages = index.spec.stages
    except PipeError:
        stages = {}
    for name, stage in stages.items():
        if target == name or any(rel == o.path or rel.startswith(o.path + "/") for o in stage.outs):
            return f"it is an out of stage '{name}': run 'pipe repro {name}' to produce it"
    if os.path.lexists(index.project.root / rel):
        return f"run 'pipe add {target}' to track it"
    return "run 'pipe status' to list the tracked data and stages"
