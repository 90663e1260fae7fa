"""pipe plots show | diff | templates: draw plot files as charts, alone or overlaid across revisions.

Flags and output follow `dvc plots`: the page's `file://` URL on stdout (`--open` also opens it),
`--json` DVC's shape (`{"data": {plot: [{"type", "revisions", "content" | "url"}]}, "errors": [...]}`),
and `-t/-x/-y/--title/--x-label/--y-label/--no-header` over the options in pipeline.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline_engine.cli import SuggestingGroup, TargetsCommand, render
from pipeline_engine.project import Project

if TYPE_CHECKING:
    from pipeline_engine.ops.plots import PlotOptions, PlotsResult

__all__ = ["plots"]


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags `show` and `diff` share (DVC's)."""
    for decorator in reversed([
        click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), metavar="DIR",
                     help="Directory to write index.html and the images to (default: pipe_plots)."),
        click.option("--open", "open_page", is_flag=True, help="Open the page in a web browser."),
        click.option("--json", "as_json", is_flag=True, help="Print the Vega-Lite specs with their data (DVC's shape)."),
        click.option("--show-vega", is_flag=True, help="Print the one target's Vega-Lite spec with its data."),
        click.option("-t", "--template", help="Template to draw with (a built-in name or .pipe/plots/NAME.json)."),
        click.option("-x", help="Column for the X axis."),
        click.option("-y", help="Column for the Y axis."),
        click.option("--no-header", "no_header", is_flag=True, default=None,
                     help="CSV/TSV files have no header row (columns are 0, 1, ...)."),
        click.option("--title", help="Plot title."),
        click.option("--x-label", help="X axis label."),
        click.option("--y-label", help="Y axis label."),
    ]):
        command = decorator(command)
    return command


def _props(options: dict[str, Any]) -> PlotOptions:
    from pipeline_engine.ops.plots import PlotOptions

    return PlotOptions(template=options["template"], x=options["x"], y=options["y"], title=options["title"],
                     x_label=options["x_label"], y_label=options["y_label"],
                     header=False if options["no_header"] else None)


@click.group(cls=SuggestingGroup)
def plots() -> None:
    """Draw plots (pipeline.yaml's `plots:`) as charts: show the workspace, diff revisions, list templates."""


@plots.command()
@click.argument("targets", nargs=-1)
@_options
def show(targets: tuple[str, ...], out_dir: Path | None, open_page: bool, as_json: bool, show_vega: bool,
         **options: Any) -> None:
    """Draw the plots (or TARGETS: plot ids, paths, or any data file) of the workspace."""
    from pipeline_engine.ops.plots import show as plots_show

    _check_show_vega(targets, show_vega=show_vega, as_json=as_json)
    result = plots_show(Project.find(), targets, out_dir=out_dir, props=_props(options),
                        render_files=not (as_json or show_vega))
    _report(result, open_page=open_page, as_json=as_json, show_vega=show_vega)


@plots.command(cls=TargetsCommand)
@click.argument("revisions", nargs=-1)
@click.option("--targets", multiple=True, metavar="PATH...",
              help="Draw only these plots (every argument up to the next option).")
@_options
def diff(revisions: tuple[str, ...], targets: tuple[str, ...], out_dir: Path | None, open_page: bool,
         as_json: bool, show_vega: bool, **options: Any) -> None:
    """Overlay the plots of REVISIONS (default: HEAD and the workspace; one revision: it and the workspace)."""
    from pipeline_engine.ops.plots import diff as plots_diff

    _check_show_vega(targets, show_vega=show_vega, as_json=as_json)
    result = plots_diff(Project.find(), revisions, targets=targets, out_dir=out_dir, props=_props(options),
                        render_files=not (as_json or show_vega))
    _report(result, open_page=open_page, as_json=as_json, show_vega=show_vega)


@plots.command()
@click.argument("template", required=False)
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Write the template (all of them without TEMPLATE) to DIR/NAME.json, e.g. .pipe/plots.")
def templates(template: str | None, out_dir: Path | None) -> None:
    """List the plot templates, print TEMPLATE's JSON, or write templates to customise (-o)."""
    from pipeline_engine.ops import plots as ops

    project = Project.find()
    if out_dir is not None:
        for path in ops.export_templates(project, out_dir, [template] if template else []):
            render.out.print(render.escape(str(path)))
    elif template:
        render.out.file.write(ops.template_text(project, template))
    else:
        for name, source in ops.templates(project):
            render.out.print(render.escape(name if source == "built-in" else f"{name}  ({source})"))


def _check_show_vega(targets: tuple[str, ...], *, show_vega: bool, as_json: bool) -> None:
    """DVC's rules for `--show-vega`: exactly one target, and not with `--json`."""
    if show_vega and len(targets) != 1:
        raise click.UsageError("'--show-vega' needs exactly one target")
    if show_vega and as_json:
        raise click.UsageError("'--show-vega' and '--json' are mutually exclusive")


def _report(result: PlotsResult, *, open_page: bool, as_json: bool, show_vega: bool = False) -> None:
    for problem in result.problems:
        render.warn(render.escape(f"plot '{problem.plot}' at '{problem.rev}': {problem.message}"))
    if as_json:
        render.print_json(_as_json(result))
        return
    if show_vega:
        spec = next((p.spec for p in result.plots if p.spec is not None), None)
        if spec is not None:
            render.print_json(spec)
        return
    assert result.page is not None
    render.out.print(render.escape(result.page.as_uri()))
    if open_page:
        import webbrowser

        webbrowser.open(result.page.as_uri())


def _as_json(result: PlotsResult) -> dict[str, Any]:
    data: dict[str, list[dict[str, Any]]] = {}
    for plot in result.plots:
        if plot.spec is not None:
            data[plot.id] = [{"type": "vega", "revisions": list(plot.revisions), "content": plot.spec}]
        else:
            data[plot.id] = [{"type": "image", "revisions": [rev], "url": str(path)} for rev, path in plot.images]
    errors = [{"name": p.plot, "rev": p.rev, "source": p.source, "msg": p.message} for p in result.problems]
    return {"data": data, **({"errors": errors} if errors else {})}
