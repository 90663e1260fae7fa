"""`pipe exp show` / `pipe exp list`: the baseline and its experiments with every param and metric.

Each recorded experiment is read from its commit through `ProjectIndex.at` with the readers of
`pipe metrics` / `pipe params` (`metrics_at`, `params_at`); queued and failed experiments come from
their entries, their params being the baseline's with the overrides applied. Values stay plain
(no pandas): the table is a list of rows, which `--json` prints as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline_engine.errors import PipeError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.ops.exp.records import ExpState, entries
from pipeline_engine.ops.exp.worktree import git_root
from pipeline_engine.ops.metrics import metrics_at
from pipeline_engine.ops.params import flatten, params_at
from pipeline_engine.pipeline.overrides import Op
from pipeline_engine.pipeline.params import PARAMS_FILE
from pipeline_engine.project import Project
from pipeline_engine.scm.exps import ExpRef, list_exp_refs, rev_parse, run_git

__all__ = ["ExpRow", "ShowOptions", "columns_of", "list_exps", "resolve", "show", "table"]


@dataclass(frozen=True, slots=True)
class ExpRow:
    """One row of `exp show`: the workspace, a baseline commit or an experiment."""

    name: str
    rev: str | None
    baseline: str
    created: float | None
    state: str
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    kind: str = "exp"  # "workspace" | "baseline" | "exp"


@dataclass(frozen=True, slots=True)
class ShowOptions:
    """Which columns and in which order (`exp show`'s table flags)."""

    sort_by: str | None = None
    descending: bool = False
    only_changed: bool = False
    drop: str | None = None
    keep: str | None = None


def _baselines(project: Project, *, all_branches: bool, all_commits: bool) -> list[tuple[str, str]]:
    root = git_root(project)
    head = rev_parse(root, "HEAD")
    found: list[tuple[str, str]] = [(head, "HEAD")] if head else []
    if all_commits or all_branches:
        args = ["rev-list", "--all"] if all_commits else ["for-each-ref", "--format=%(objectname)", "refs/heads"]
        for sha in run_git(root, *args).split():
            if sha not in {s for s, _ in found}:
                found.append((sha, sha[:7]))
    return found


def show(project: Project, *, all_branches: bool = False, all_commits: bool = False) -> list[ExpRow]:
    """The workspace, then each baseline (HEAD; `-a` every branch head, `-A` every commit) and its experiments.

    Raises:
        ScmError: no git, or git failed.
    """
    root = git_root(project)
    refs = list_exp_refs(root)
    pending = entries(project)
    rows = [_row(project, ProjectIndex(project), "workspace", None, "", None, "", kind="workspace")]
    for sha, label in _baselines(project, all_branches=all_branches, all_commits=all_commits):
        base = _row(project, ProjectIndex.at(project, sha), label, sha, sha, _time(root, sha), "", kind="baseline")
        rows.append(base)
        for ref, exp_sha, when in refs:
            if ref.baseline == sha:
                rows.append(_row(project, ProjectIndex.at(project, exp_sha), ref.name, exp_sha, sha, float(when),
                                 "success"))
        for e in pending:
            if e.baseline == sha:
                params = dict(base.params)
                for o in e.overrides:
                    if o.op is Op.DELETE:
                        params.pop(_param_key(o.file, o.key), None)
                    else:
                        params[_param_key(o.file, o.key)] = o.value
                rows.append(ExpRow(e.name, None, sha, e.created, e.state.value, params, {}, e.error))
    return rows


def _row(project: Project, index: ProjectIndex, name: str, rev: str | None, baseline: str, created: float | None,
         state: str, *, kind: str = "exp") -> ExpRow:
    error = ""
    metrics: dict[str, Any] = {}
    params: dict[str, Any] = {}
    found = metrics_at(index)
    files = [f for f in found.files if f.error is None]
    for f in files:
        prefix = "" if len(files) == 1 else f"{f.path}:"
        metrics.update({f"{prefix}{k}": v for k, v in f.flat.items()})
    try:
        for file, values in params_at(index).items():
            params.update({_param_key(file, k): v for k, v in flatten(values).items()})
    except PipeError as exc:
        error = str(exc)
    return ExpRow(name, rev, baseline, created, state, params, metrics, error or str(found.error or ""), kind)


def _param_key(file: str, key: str) -> str:
    return key if file == PARAMS_FILE else f"{file}:{key}"


def _time(root: Any, sha: str) -> float | None:
    out = run_git(root, "show", "-s", "--format=%ct", sha, check=False).strip()
    return float(out) if out else None


def columns_of(rows: Sequence[ExpRow], options: ShowOptions = ShowOptions()) -> tuple[list[str], list[str]]:
    """(metric columns, param columns), filtered by `--drop`/`--keep`/`--only-changed`.

    Raises:
        PipeError: `--drop` or `--keep` is not a regular expression.
    """
    metrics = sorted({k for r in rows for k in r.metrics})
    params = sorted({k for r in rows for k in r.params})
    keep, drop = _pattern("--keep", options.keep), _pattern("--drop", options.drop)

    def wanted(col: str, kind: str) -> bool:
        if keep is not None and keep.search(col):
            return True
        if drop is not None and drop.search(col):
            return False
        if options.only_changed:
            values = {repr(getattr(r, kind).get(col)) for r in rows if r.kind != "workspace"}
            return len(values) > 1
        return True

    return [c for c in metrics if wanted(c, "metrics")], [c for c in params if wanted(c, "params")]


def _pattern(flag: str, text: str | None) -> re.Pattern[str] | None:
    try:
        return re.compile(text) if text else None
    except re.error as exc:
        raise PipeError(f"{flag} '{text}' is not a regular expression: {exc}",
                        hint=rf"escape special characters, e.g. {flag} 'train\.lr'") from None


def table(rows: Sequence[ExpRow], options: ShowOptions = ShowOptions()) -> tuple[list[str], list[list[Any]]]:
    """(header, rows of plain values): Experiment, rev, Created, State, then metrics and params.

    Raises:
        PipeError: `--sort-by` names no column; `--drop`/`--keep` is not a regular expression.
    """
    metrics, params = columns_of(rows, options)
    ordered = list(rows)
    if options.sort_by:
        key = options.sort_by
        if key not in metrics and key not in params:
            raise PipeError(f"--sort-by '{key}': no such metric or param",
                            hint=f"use one of: {', '.join([*metrics, *params]) or '(none)'}")
        head = [r for r in ordered if r.kind != "exp"]
        exps = [r for r in ordered if r.kind == "exp"]
        present = [r for r in exps if _number(_value(r, key)) is not None]
        absent = [r for r in exps if _number(_value(r, key)) is None]
        present.sort(key=lambda r: _number(_value(r, key)) or 0.0, reverse=options.descending)
        ordered = head + present + absent
    out = []
    for r in ordered:
        label = r.name if r.kind != "exp" else f"├── {r.name}"
        out.append([label, r.rev[:7] if r.rev else "-", r.created, r.state or "-",
                    *(r.metrics.get(c) for c in metrics), *(r.params.get(c) for c in params)])
    return ["Experiment", "rev", "Created", "State", *metrics, *params], out


def _value(row: ExpRow, key: str) -> Any:
    return row.metrics[key] if key in row.metrics else row.params.get(key)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def list_exps(project: Project, *, all_commits: bool = False) -> dict[str, list[str]]:
    """Baseline sha -> names of its experiments (recorded, then queued/failed), as `exp list --json` gives them."""
    root = git_root(project)
    head = rev_parse(root, "HEAD")
    found: dict[str, list[str]] = {}
    for ref, _, _ in list_exp_refs(root, None if all_commits else head):
        found.setdefault(ref.baseline, []).append(ref.name)
    for e in entries(project, states=(ExpState.QUEUED, ExpState.RUNNING, ExpState.FAILED)):
        if all_commits or e.baseline == head:
            found.setdefault(e.baseline, []).append(e.name)
    return found


def resolve(project: Project, name: str, *, commits_only: bool = True) -> tuple[ExpRef, str]:
    """The experiment called `name` (of HEAD's baseline first, else of any) and its commit sha
    (`commits_only` False: a ref naming something else too, for `exp remove`).

    Raises:
        PipeError: no such experiment, or the name is ambiguous across baselines.
    """
    root = git_root(project)
    head = rev_parse(root, "HEAD")
    refs = [(r, sha) for r, sha, _ in list_exp_refs(root, commits_only=commits_only)
            if r.name == name or r.ref == name]
    mine = [(r, sha) for r, sha in refs if r.baseline == head]
    chosen = mine or refs
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        raise PipeError(f"experiment '{name}' not found", hint="run 'pipe exp list' to see the experiments")
    raise PipeError(f"experiment name '{name}' is ambiguous: {len(chosen)} baselines have one",
                    hint="give its full ref, e.g. " + chosen[0][0].ref)
