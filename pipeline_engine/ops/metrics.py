"""`pipe metrics show` and `pipe metrics diff`: the metrics files of each revision, read without checkout.

The metrics files are those pipeline.yaml declares at that revision: stage `metrics:` outs and the
top-level `metrics:` key (a file, or a directory: every metrics file inside it). Each is read
through `index.tracked.read_at` (the workspace from disk; a revision from git, or from the cache by
the oid its lock entry records for a `cache: true` out) and parsed by `pipeline.metrics`.

A file that cannot be read (invalid, hostile, its object not in the cache) does not stop the
others: its error is kept with it, as DVC does, and the command reports it. Results are plain
values; `ops/report.py` turns them into DataFrames for tables.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from pipeline_engine.core.fsutil import relpath_in
from pipeline_engine.core.revision import WORKSPACE, decode_utf8
from pipeline_engine.core.yamlio import check_document_size
from pipeline_engine.errors import PathError, PipeError
from pipeline_engine.index.history import History
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.revisions import Scope, select_revisions
from pipeline_engine.index.tracked import list_at, read_at
from pipeline_engine.pipeline.metrics import METRICS_SUFFIXES, parse_metrics
from pipeline_engine.pipeline.params import parse_document
from pipeline_engine.pipeline.spec import OutKind
from pipeline_engine.project import Project

__all__ = [
    "ChangeState",
    "MetricsDiff",
    "MetricsFile",
    "RevisionMetrics",
    "ValueChange",
    "compare",
    "dangling_link_error",
    "diff",
    "is_dangling_link",
    "metrics_at",
    "show",
    "target_paths",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class MetricsFile:
    """One metrics file at one revision: `data` as the file nests it, `flat` with keys joined `a.b.c`.

    `error` is set (and the data empty) when the file could not be read or parsed.
    """

    path: str
    data: Mapping[str, Any] = field(default_factory=dict)
    flat: Mapping[str, Any] = field(default_factory=dict)
    error: PipeError | None = None


@dataclass(frozen=True, slots=True)
class RevisionMetrics:
    """The metrics files of one revision (`rev` is its label), sorted by path; `error` when the revision itself failed."""

    rev: str
    files: tuple[MetricsFile, ...] = ()
    error: PipeError | None = None
    #: Declared metrics paths with no file at this revision (not produced yet): not an error.
    missing: tuple[str, ...] = ()

    @property
    def errors(self) -> list[PipeError]:
        """The revision's error, or every file's."""
        return [self.error] if self.error else [f.error for f in self.files if f.error]


class ChangeState(enum.Enum):
    """How a value differs between the two sides of a diff."""

    ADDED = "added"
    DELETED = "deleted"
    MODIFIED = "modified"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ValueChange:
    """One value (`key`, flattened) of one metrics or params file: old, new (None on the side it is absent)."""

    path: str
    key: str
    old: Any
    new: Any
    state: ChangeState

    @property
    def diff(self) -> int | float | None:
        """new - old when both are numbers and the difference is finite (DVC's `diff`).

        1e308 - (-1e308) overflows to inf, which `--json` would write as `Infinity`: not JSON.
        """
        if _is_number(self.old) and _is_number(self.new):
            value: int | float = self.new - self.old
            return value if _is_number(value) else None
        return None

    @property
    def pct(self) -> float | None:
        """The relative change in percent, when both are numbers and old is not zero."""
        change = self.diff
        if change is None or self.old == 0:
            return None
        pct = float(change) / abs(float(self.old)) * 100.0
        return pct if math.isfinite(pct) else None  # a subnormal old value


@dataclass(frozen=True, slots=True)
class MetricsDiff:
    """`pipe metrics diff A B`: the changes sorted by (path, key), and the errors of either side.

    `errors`: every file's and side's error; `revision_errors`: those of a side that could not be
    read at all (its pipeline.yaml or lock is invalid), also in `errors`.
    """

    a_rev: str
    b_rev: str
    changes: tuple[ValueChange, ...] = ()
    errors: tuple[PipeError, ...] = field(default=())
    revision_errors: tuple[PipeError, ...] = field(default=())


def _same(a: Any, b: Any) -> bool:
    """Equal values, NaN counting as equal to NaN (a metric that stays NaN did not change)."""
    return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def target_paths(project: Project, targets: Sequence[str]) -> list[str]:
    """User targets (relative to the current directory) as project-relative paths.

    Raises:
        PathError: a target is outside the project.
    """
    return [relpath_in(project.root, t).rstrip("/") for t in targets]


def _declared(index: ProjectIndex) -> list[str]:
    spec = index.spec
    paths = [o.path for s in spec.stages.values() for o in s.outs if o.kind is OutKind.METRIC]
    return list(dict.fromkeys([*paths, *spec.metrics]))


def _under(path: str, target: str) -> bool:
    return target in ("", path) or path.startswith(target + "/")


def _metrics_paths(
    index: ProjectIndex, wanted: Sequence[str]
) -> tuple[list[str], list[str], list[MetricsFile], list[str]]:
    """(metrics files to read, targets that name no declared metrics: read as metrics files themselves,
    as DVC does, the declared paths that could not even be listed, each with its error, and the
    declared paths with no file)."""
    declared = _declared(index)
    chosen = [p for p in declared if not wanted or any(_under(p, w) or _under(w, p) for w in wanted)]
    files: list[str] = []
    failed: list[MetricsFile] = []
    missing: list[str] = []
    for path in chosen:
        inside = [w for w in wanted if _under(w, path) and w != path]
        for base in inside or [path]:
            try:
                listed = list_at(index, base, suffixes=METRICS_SUFFIXES)
                if not listed and is_dangling_link(index, base):
                    listed = [base]
                elif not listed and not index.files.is_dir(base):
                    missing.append(base)
            except PipeError as exc:  # e.g. a link leading out of the project: this path only
                failed.append(MetricsFile(base, error=exc))
                continue
            files.extend(listed)
    extra = [w for w in wanted if not any(_under(w, p) or _under(p, w) for p in declared)]
    return list(dict.fromkeys(files)), extra, failed, missing


def is_dangling_link(index: ProjectIndex, path: str) -> bool:
    """True for a workspace symlink whose target does not exist (listings skip it; it is an error to report)."""
    full = index.project.root / path
    return index.is_workspace and os.path.islink(full) and not os.path.exists(full)


def dangling_link_error(index: ProjectIndex, path: str, what: str) -> PathError:
    """The error for a declared file that is a dangling symlink (`what`: "metrics file", "plots file")."""
    target = os.readlink(index.project.root / path)
    return PathError(f"{what} '{path}' is a symlink to '{target}', which does not exist",
                     hint="fix or remove the link, or run the stage that writes its target")


def _read_file(index: ProjectIndex, path: str, *, required: bool) -> MetricsFile | None:
    files = index.files
    source = files.describe(path)
    try:
        size = files.size(path)  # a file of the revision's tree (else read_at reads a cached object)
        if size is not None:
            check_document_size(size, source=source)  # before reading it
        data = read_at(index, path)
        if data is None:
            if is_dangling_link(index, path):
                raise dangling_link_error(index, path, "metrics file")
            if not required:
                return None
            raise PathError(f"metrics file '{source}' does not exist")
        check_document_size(data, source=source)  # before decoding it
        text = decode_utf8(data, source=source)
        suffix = PurePosixPath(path).suffix
        flat = parse_metrics(text, suffix=suffix, source=source)
        nested = flat if suffix.lower() in (".csv", ".tsv") else parse_document(
            text, suffix=suffix, source=source, allow_nonfinite=True)
        return MetricsFile(path, MappingProxyType(dict(nested or {})) if isinstance(nested, Mapping)
                           else MappingProxyType({"": nested}), MappingProxyType(flat))
    except PipeError as exc:
        return MetricsFile(path, error=exc)


def metrics_at(index: ProjectIndex, wanted: Sequence[str] = (), *, label: str | None = None) -> RevisionMetrics:
    """The metrics files of one revision, filtered to project-relative `wanted` paths (all when empty).

    Never raises a PipeError: a revision whose pipeline.yaml or lock is invalid carries the error.
    """
    label = label or index.files.label
    try:
        paths, extra, failed, missing = _metrics_paths(index, wanted)
        read: list[MetricsFile | None] = [*failed]
        read += [_read_file(index, p, required=False) for p in paths]
        read += [_read_file(index, p, required=True) for p in extra if p not in paths]
    except PipeError as exc:
        return RevisionMetrics(label, error=exc)
    return RevisionMetrics(label, tuple(sorted((f for f in read if f is not None), key=lambda f: f.path)),
                           missing=tuple(missing))


def show(project: Project, targets: Sequence[str] = (), *, scope: Scope | None = None) -> list[RevisionMetrics]:
    """The metrics of every revision `scope` covers (the workspace by default), in `select_revisions` order.

    Raises:
        ScmError: a revision is asked for outside git, or a `--rev` names no commit.
        PathError: a target is outside the project.
    """
    wanted = target_paths(project, targets)
    revisions = select_revisions(project, scope or Scope())
    # One memo for every revision: pipeline.yaml and lock blobs shared by commits are parsed once.
    history = History(project)
    history.read_trees(revisions)
    result: list[RevisionMetrics] = []
    for rev in revisions:
        try:
            index = history.index(rev)
        except PipeError as exc:
            result.append(RevisionMetrics(rev.label, error=exc))
            continue
        result.append(metrics_at(index, wanted, label=rev.label))
    return result


def diff(project: Project, a_rev: str = "HEAD", b_rev: str | None = None, *,
         targets: Sequence[str] = (), all: bool = False) -> MetricsDiff:
    """Compare the metrics of `a_rev` with `b_rev` (None: the workspace), per (file, flattened key).

    A file or key on one side only is `added` or `deleted`; unchanged metrics are left out unless `all`.

    Raises:
        ScmError: a revision names no commit, or the project is not in a git repository.
        PathError: a target is outside the project.
    """
    wanted = target_paths(project, targets)
    sides = []
    for rev in (a_rev, b_rev):
        index = ProjectIndex(project) if rev is None else ProjectIndex.at(project, rev)
        sides.append(metrics_at(index, wanted, label=rev or WORKSPACE))
    old, new = sides
    # A file that failed on either side is left out: its values are unknown, not added or deleted.
    failed = {f.path for side in sides for f in side.files if f.error is not None}
    changes = compare(_flat_by_path(old, failed), _flat_by_path(new, failed), all=all)
    return MetricsDiff(old.rev, new.rev, tuple(changes), (*old.errors, *new.errors),
                       tuple(side.error for side in sides if side.error is not None))


def _flat_by_path(side: RevisionMetrics, failed: set[str]) -> dict[str, Mapping[str, Any]]:
    return {f.path: f.flat for f in side.files if f.path not in failed}


def compare(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]], *,
            all: bool) -> list[ValueChange]:
    """Per (path, key): added, deleted, modified (and, with `all`, unchanged) values, sorted by path then key."""
    changes: list[ValueChange] = []
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path, _EMPTY), new.get(path, _EMPTY)
        for key in sorted(before.keys() | after.keys()):
            if key not in before:
                changes.append(ValueChange(path, key, None, after[key], ChangeState.ADDED))
            elif key not in after:
                changes.append(ValueChange(path, key, before[key], None, ChangeState.DELETED))
            elif not _same(before[key], after[key]):
                changes.append(ValueChange(path, key, before[key], after[key], ChangeState.MODIFIED))
            elif all:
                changes.append(ValueChange(path, key, before[key], after[key], ChangeState.UNCHANGED))
    return changes
