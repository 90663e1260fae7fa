"""`pipe params diff` and the API's params_show: the params of a revision, read without checkout.

The params of a revision are what its pipeline.yaml's stages track (`params:`: the named keys of
each params file, or every key of a file a stage tracks whole) and, as in DVC, every key of
params.yaml and of the files the top-level `params:` lists, unless only the tracked ones are asked
for (`--deps`). Values are read from
that revision's params files (`ProjectIndex.files`); a params file or key missing at a revision is
simply absent there (it shows as added or deleted in a diff). Keys are flattened as `a.b.c`, as
DVC shows them; list values stay lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pipeline_engine.core.revision import WORKSPACE
from pipeline_engine.core.yamlio import read_document
from pipeline_engine.errors import PipeError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.ops.metrics import ValueChange, compare, target_paths
from pipeline_engine.pipeline.params import PARAMS_FILE, lookup, parse_params
from pipeline_engine.project import Project

__all__ = ["ParamsDiff", "diff", "flatten", "params_at", "tracked_params"]


@dataclass(frozen=True, slots=True)
class ParamsDiff:
    """`pipe params diff A B`: changed (with `all`, every) tracked param per (file, key), sorted."""

    a_rev: str
    b_rev: str
    changes: tuple[ValueChange, ...] = ()
    #: The params files that could not be read on either side (left out of `changes`, as DVC does).
    errors: tuple[PipeError, ...] = ()


def tracked_params(index: ProjectIndex, stages: Sequence[str] | None = None) -> dict[str, tuple[str, ...] | None]:
    """Params file -> the keys the stages track (None: the whole file), in pipeline.yaml's order.

    `stages` limits it to those stage names (or foreach/matrix groups).

    Raises:
        SpecError: pipeline.yaml is invalid.
    """
    tracked: dict[str, tuple[str, ...] | None] = {}
    for stage in index.spec.stages.values():
        if stages is not None and stage.name not in stages and stage.group not in stages:
            continue
        for dep in stage.params:
            known = tracked.get(dep.path, ())
            if dep.keys is None or known is None:
                tracked[dep.path] = None
            else:
                tracked[dep.path] = tuple(dict.fromkeys([*known, *dep.keys]))
    return tracked


def params_at(index: ProjectIndex, *, stages: Sequence[str] | None = None, files: Sequence[str] = (),
              deps_only: bool = False) -> dict[str, dict[str, Any]]:
    """Params file -> {key: value} of the tracked params at the index's revision (nested values, as in the file).

    As in DVC, params.yaml and the top-level `params:` files are read whole unless `deps_only` (only
    what stages track) or `stages` is given; `files` (project-relative) limits the result to those params files (whole when no
    stage tracks them).

    Raises:
        SpecError: pipeline.yaml or a params file is invalid (the message names the file and revision).
        UnsafePathError: a params path is refused by the path gate.
    """
    tracked = tracked_params(index, stages)
    if files:
        tracked = dict.fromkeys(files)
    elif not deps_only and stages is None:
        tracked.update(dict.fromkeys([*index.spec.params, PARAMS_FILE]))
    return _read(index, tracked)


def flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """{key: value} with nested mappings joined `a.b.c` (lists stay values, as DVC shows params)."""
    flat: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [(k, v) for k, v in reversed(list(values.items()))]
    while stack:
        key, value = stack.pop()
        if isinstance(value, Mapping) and value:
            stack.extend((f"{key}.{k}", v) for k, v in reversed(list(value.items())))
        else:
            flat[key] = value
    return flat


def diff(project: Project, a_rev: str = "HEAD", b_rev: str | None = None, *, targets: Sequence[str] = (),
         all: bool = False, deps_only: bool = False) -> ParamsDiff:
    """Compare the params of `a_rev` with `b_rev` (None: the workspace).

    A param counts when either side's pipeline.yaml tracks it; as in DVC, every key of params.yaml
    and of either side's top-level `params:` files counts too unless `deps_only`. `targets` are params files, compared whole instead (DVC's `--targets`).
    A params file that cannot be read on either side (invalid, too large, a link out of the
    project) is left out of the comparison and its error kept in `errors`: its values are unknown,
    neither added nor deleted.

    Raises:
        ScmError: a revision names no commit, or the project is not in a git repository.
        SpecError: pipeline.yaml is invalid on either side.
    """
    files = target_paths(project, targets)
    indexes = [ProjectIndex.at(project, a_rev), ProjectIndex.at(project, b_rev) if b_rev else ProjectIndex(project)]
    # Each side reads the files and keys either side tracks, so a newly tracked param shows its old value.
    wanted: dict[str, tuple[str, ...] | None] = dict.fromkeys(files)
    for index in indexes if not files else ():
        for path, keys in tracked_params(index).items():
            known = wanted.get(path, ())
            wanted[path] = None if keys is None or known is None else tuple(dict.fromkeys([*known, *keys]))
    if not files and not deps_only:
        wanted.update(dict.fromkeys([*indexes[0].spec.params, *indexes[1].spec.params, PARAMS_FILE]))
    errors: list[tuple[str, PipeError]] = []
    read = [_read(index, wanted, errors=errors) for index in indexes]
    failed = {path for path, _ in errors}
    sides = [{p: flatten(v) for p, v in side.items() if p not in failed} for side in read]
    return ParamsDiff(a_rev, b_rev or WORKSPACE, tuple(compare(sides[0], sides[1], all=all)),
                      tuple(exc for _, exc in errors))


def _read(index: ProjectIndex, wanted: Mapping[str, tuple[str, ...] | None], *,
          errors: list[tuple[str, PipeError]] | None = None) -> dict[str, dict[str, Any]]:
    """{params file: {key: value}} of `wanted` at the index's revision; files absent there are left out.

    With `errors`, a file that cannot be read is appended there with its path instead of raising.
    """
    values: dict[str, dict[str, Any]] = {}
    for path, keys in wanted.items():
        try:
            text = read_document(index.files, path)
            if text is None:
                continue
            data = parse_params(text, suffix=PurePosixPath(path).suffix, source=index.files.describe(path))
        except PipeError as exc:
            if errors is None:
                raise
            errors.append((path, exc))
            continue
        values[path] = {}
        for key in keys if keys is not None else list(data):
            try:
                values[path][key] = lookup(data, key)
            except KeyError:
                continue  # absent on this side: shown added or deleted
    return values

