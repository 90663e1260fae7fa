"""pipe metrics show|diff, pipe params diff: DVC's flags and output shapes.

`--json` is DVC's JSON (`metrics show`: `{rev: {"data": {path: {"data": {...}}}}}`; the diffs:
`{path: {key: {"old", "new"[, "diff"]}}}`), built from plain values so it never imports pandas;
tables, `--md` and `--csv` come from the DataFrames of `ops/report.py`. A file that failed to load
(invalid, hostile, a dangling link, a link out of the project, its object not in the cache) does
not stop the others: it is reported as a warning on stderr (and in the JSON, as DVC does) after
everything else is shown, and the command exits 0 as DVC's does. A revision that could not be
read at all (its pipeline.yaml or lock invalid) is an error after the output, and exit 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from pipeline_engine.cli import SuggestingGroup, render
from pipeline_engine.core.redact import mask_text
from pipeline_engine.errors import PipeError
from pipeline_engine.project import Project

if TYPE_CHECKING:
    from pipeline_engine.ops.metrics import RevisionMetrics, ValueChange

__all__ = ["changes_json", "metrics", "params", "warn_on"]


def _format_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--json", "as_json", is_flag=True, help="Print DVC's JSON shape on stdout."),
        click.option("--md", "as_md", is_flag=True, help="Print a Markdown (GitHub) table."),
        click.option("--csv", "as_csv", is_flag=True, help="Print CSV."),
        click.option("--precision", type=click.IntRange(0, 20), default=None, metavar="N",
                     help="Round floats to N digits after the decimal point (default 5)."),
    ]):
        fn = option(fn)
    return fn


def _one_format(as_json: bool, as_md: bool, as_csv: bool) -> None:
    if sum((as_json, as_md, as_csv)) > 1:
        raise click.UsageError("choose one of '--json', '--md' and '--csv'")


@click.group(cls=SuggestingGroup)
def metrics() -> None:
    """Show and compare metrics across git revisions."""


@metrics.command("show")
@click.argument("targets", nargs=-1)
@click.option("-a", "--all-branches", is_flag=True, help="Show metrics for all branches.")
@click.option("-T", "--all-tags", is_flag=True, help="Show metrics for all tags.")
@click.option("-A", "--all-commits", is_flag=True, help="Show metrics for all commits.")
@click.option("--rev", "revs", multiple=True, metavar="REV", help="Show metrics for this revision (repeatable).")
@_format_options
def metrics_show(targets: tuple[str, ...], all_branches: bool, all_tags: bool, all_commits: bool,
                 revs: tuple[str, ...], as_json: bool, as_md: bool, as_csv: bool, precision: int | None) -> None:
    """Print the metrics of the workspace (and of the revisions asked for), one row per revision and file."""
    from pipeline_engine.index.revisions import Scope
    from pipeline_engine.ops.metrics import show

    _one_format(as_json, as_md, as_csv)
    scope = Scope(all_branches=all_branches, all_tags=all_tags, all_commits=all_commits, revs=revs)
    result = show(Project.find(), targets, scope=scope)
    if as_json:
        render.print_json({r.rev: _rev_json(r) for r in result})
    elif not any(f.error is None for r in result for f in r.files):
        missing = [m for r in result for m in r.missing]
        if missing:
            render.info(render.escape(f"no metrics found: '{missing[0]}', declared in pipeline.yaml, does not exist"
                               + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")))
            render.info("hint: run 'pipe repro' to produce it, or 'pipe pull' to fetch it")
        elif not any(r.errors for r in result):
            render.info("no metrics found")
            render.info("hint: declare them in pipeline.yaml ('metrics:' of a stage, or the top-level 'metrics:' key)")
    else:
        from pipeline_engine.ops.report import DEFAULT_PRECISION, metrics_frame

        frame = metrics_frame(result, precision=_precision(precision, DEFAULT_PRECISION),
                              with_revision=not scope.is_workspace_only)
        render.frame(frame, markdown=as_md, csv=as_csv)
    warn_on([e for r in result if r.error is None for e in r.errors])
    _fail_on([r.error for r in result if r.error is not None])


@metrics.command("diff")
@click.argument("a_rev", required=False, default="HEAD")
@click.argument("b_rev", required=False)
@click.option("--targets", multiple=True, metavar="PATH", help="Compare only these metrics files (repeatable).")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged metrics as well.")
@click.option("--no-path", is_flag=True, help="Do not show the Path column.")
@_format_options
def metrics_diff(a_rev: str, b_rev: str | None, targets: tuple[str, ...], show_all: bool, no_path: bool,
                 as_json: bool, as_md: bool, as_csv: bool, precision: int | None) -> None:
    """Compare metrics between A_REV (default HEAD) and B_REV (default: the workspace)."""
    from pipeline_engine.ops.metrics import diff

    _one_format(as_json, as_md, as_csv)
    result = diff(Project.find(), a_rev, _rev_or_workspace(b_rev), targets=targets, all=show_all)
    _print_diff(result.changes, result.a_rev, result.b_rev, title="Metric", as_json=as_json, as_md=as_md,
                as_csv=as_csv, precision=precision, no_path=no_path, with_change=True, failed=bool(result.errors))
    warn_on([e for e in result.errors if e not in result.revision_errors])
    _fail_on(list(result.revision_errors))


@click.group(cls=SuggestingGroup)
def params() -> None:
    """Compare the params the stages track across git revisions."""


@params.command("diff")
@click.argument("a_rev", required=False, default="HEAD")
@click.argument("b_rev", required=False)
@click.option("--targets", multiple=True, metavar="PATH", help="Compare only these params files (repeatable).")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged params as well.")
@click.option("--deps", is_flag=True, help="Only the params stages track (by default all of params.yaml too).")
@click.option("--no-path", is_flag=True, help="Do not show the Path column.")
@click.option("--json", "as_json", is_flag=True, help="Print DVC's JSON shape on stdout.")
@click.option("--md", "as_md", is_flag=True, help="Print a Markdown (GitHub) table.")
def params_diff(a_rev: str, b_rev: str | None, targets: tuple[str, ...], show_all: bool, deps: bool,
                no_path: bool, as_json: bool, as_md: bool) -> None:
    """Compare params between A_REV (default HEAD) and B_REV (default: the workspace)."""
    from pipeline_engine.ops.params import diff

    _one_format(as_json, as_md, False)
    result = diff(Project.find(), a_rev, _rev_or_workspace(b_rev), targets=targets, all=show_all,
                  deps_only=deps)
    _print_diff(result.changes, result.a_rev, result.b_rev, title="Param", as_json=as_json, as_md=as_md,
                as_csv=False, precision=None, no_path=no_path, with_change=False, failed=bool(result.errors))
    warn_on(list(result.errors))


def _rev_or_workspace(rev: str | None) -> str | None:
    """DVC names the working tree `workspace` as a revision too."""
    return None if rev in (None, "workspace") else rev


def _precision(value: int | None, default: int) -> int:
    return default if value is None else value


def _print_diff(changes: Sequence[ValueChange], a_rev: str, b_rev: str, *, title: str, as_json: bool,
                as_md: bool, as_csv: bool, precision: int | None, no_path: bool, with_change: bool,
                failed: bool = False) -> None:
    if as_json:
        render.print_json(changes_json(changes))
        return
    if not changes and not (as_md or as_csv):
        if not failed:  # files that could not be read were not compared: not "no changes"
            render.info(render.escape(f"no changes between '{a_rev}' and '{b_rev}'"))
        return
    from pipeline_engine.ops.report import DEFAULT_PRECISION, diff_frame

    frame = diff_frame(changes, a_rev, b_rev, title=title, precision=_precision(precision, DEFAULT_PRECISION),
                       with_change=with_change)
    if no_path:
        frame = frame.drop(columns=["Path"])
    render.frame(frame, markdown=as_md, csv=as_csv)


def changes_json(changes: Sequence[ValueChange]) -> dict[str, Any]:
    """DVC's `metrics diff --json`: {path: {key: {old, new[, diff]}}}; `diff` only when both values are numbers.

    Also the shape of `pipe exp diff --json`'s metrics and params.
    """
    shaped: dict[str, dict[str, Any]] = {}
    for c in changes:
        entry: dict[str, Any] = {"old": c.old, "new": c.new}
        if c.diff is not None:
            entry["diff"] = c.diff
        shaped.setdefault(c.path, {})[c.key] = entry
    return shaped


def _error_json(exc: PipeError) -> dict[str, Any]:
    return {"type": type(exc).__name__, "msg": str(exc)}


def _rev_json(rev: RevisionMetrics) -> dict[str, Any]:
    """DVC's shape of one revision: {"data": {path: {"data": {...}} or {"error": {...}}}} or {"error": {...}}."""
    if rev.error is not None:
        return {"error": _error_json(rev.error)}
    return {"data": {f.path: ({"error": _error_json(f.error)} if f.error else {"data": dict(f.data)})
                     for f in rev.files}}


def _fail_on(errors: Sequence[PipeError]) -> None:
    """Report every error after the output (each with its hint); exit 1 when there was any."""
    if not errors:
        return
    for error in errors[:-1]:
        render.error(error, verbose=False)
    raise errors[-1]


def warn_on(errors: Sequence[PipeError]) -> None:
    """Report every file's error after the output, each as a warning with its hint (the exit code stays 0)."""
    for error in errors:
        render.warn(render.escape(mask_text(str(error))))
        if error.hint:
            render.info("[dim]hint:[/] " + render.escape(mask_text(error.hint)))
