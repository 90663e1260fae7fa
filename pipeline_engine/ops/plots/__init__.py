"""`pipe plots show / diff / templates`: the plots of one or more revisions as Vega-Lite specs, a page, SVG and PNG.

`show` plots the workspace; `diff` overlays revisions (default HEAD and the workspace) in one chart
per plot, each revision its own colour with its name in the legend (a confusion matrix gets one
panel per revision). Every revision is read through `ProjectIndex` (git revisions without a
checkout; cached plot files from the local cache by their recorded oid).

A data file that is absent, unreadable or lacks a column at one revision is a `Problem`, reported
beside the plots (DVC's `errors`), so one broken revision does not hide the others; a cached file
whose object is not in the local cache is an error naming `pipe fetch --rev`.

Written to the output directory (default `pipe_plots/`, as DVC's `dvc_plots/`): `index.html`
(self-contained: Vega, Vega-Lite and vega-embed inlined), `static/<plot>.svg` and `.png` per chart,
and `static/<rev>_<path>` per image plot. With `render=False` (`--json`) only the images are written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.revision import WORKSPACE, decode_utf8
from pipeline_engine.core.yamlio import check_document_size
from pipeline_engine.errors import PathError, PipeError, ScmError, SpecError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.tracked import read_at
from pipeline_engine.ops.metrics import dangling_link_error, is_dangling_link
from pipeline_engine.ops.plots import render
from pipeline_engine.ops.plots.data import Series, SeriesPoints, default_y, parse_records, series_points
from pipeline_engine.ops.plots.source import PlotDef, collect_plots
from pipeline_engine.pipeline.outputs import PlotOptions
from pipeline_engine.project import Project

__all__ = ["DEFAULT_OUT", "Plot", "PlotOptions", "PlotsResult", "Problem", "diff", "export_templates",
           "plots", "show", "template_text", "templates"]

DEFAULT_OUT = "pipe_plots"
STATIC = "static"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a plot has no data from one file at one revision (DVC's `errors` entries)."""

    plot: str
    rev: str
    source: str
    message: str


@dataclass(frozen=True, slots=True)
class Plot:
    """One plot: its Vega-Lite spec with the data inlined, or its images (rev, file written); the revisions with data."""

    id: str
    revisions: tuple[str, ...]
    spec: Mapping[str, Any] | None = None
    images: tuple[tuple[str, Path], ...] = ()
    files: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class PlotsResult:
    """What `pipe plots show/diff` made: the plots, the problems, and the page (None with `render=False`)."""

    plots: tuple[Plot, ...]
    out_dir: Path
    page: Path | None = None
    problems: tuple[Problem, ...] = field(default=())


def show(project: Project, targets: Sequence[str] = (), *, out_dir: Path | None = None,
         props: PlotOptions | None = None, render_files: bool = True) -> PlotsResult:
    """The workspace's plots (those `targets` choose: plot ids, paths, or data files to plot as they are).

    Raises:
        PathError: a target is no plot and no file; PipeError: there are no plots, or vl-convert-python
            is missing (for the page, SVG and PNG); SpecError: pipeline.yaml or a template is invalid.
    """
    return plots(project, [None], targets=targets, out_dir=out_dir, props=props, render_files=render_files)


def diff(project: Project, revs: Sequence[str] = (), *, targets: Sequence[str] = (), out_dir: Path | None = None,
         props: PlotOptions | None = None, render_files: bool = True) -> PlotsResult:
    """The plots of several revisions overlaid: no revision means HEAD and the workspace, one means it and the workspace.

    Raises:
        ScmError: a revision names no commit; ObjectNotFoundError: a cached plot file of a revision is not
            in the local cache (hint: `pipe fetch --rev REV`); and what `show` raises.
    """
    chosen: list[str | None] = list(revs)
    if len(chosen) <= 1:
        if not chosen and _has_head(project):
            chosen.append("HEAD")
        chosen.append(None)
    return plots(project, chosen, targets=targets, out_dir=out_dir, props=props, render_files=render_files)


def _has_head(project: Project) -> bool:
    """False outside git and before the first commit: `plots diff` then shows the workspace alone."""
    try:
        ProjectIndex.at(project, "HEAD")
    except ScmError:
        return False
    return True


def plots(project: Project, revs: Sequence[str | None], *, targets: Sequence[str] = (), out_dir: Path | None = None,
          props: PlotOptions | None = None, render_files: bool = True) -> PlotsResult:
    """The plots of `revs` (None or `workspace`: the working tree) in one chart each; see `show` and `diff`."""
    props = props or PlotOptions()
    # `workspace` names the working tree, as in DVC (`pipe plots diff workspace HEAD`).
    indexes = [ProjectIndex(project) if rev in (None, WORKSPACE) else ProjectIndex.at(project, rev) for rev in revs]
    per_plot: dict[str, list[tuple[ProjectIndex, PlotDef]]] = {}
    matched: set[str] = set()
    for index in indexes:
        chosen, hits = collect_plots(index, targets, props)
        matched |= hits
        for plot_id, plot in chosen.items():
            per_plot.setdefault(plot_id, []).append((index, plot))
    unmatched = [t for t in targets if t not in matched]
    if unmatched:
        labels = [i.files.label for i in indexes]
        where = f"'{labels[0]}'" if len(labels) == 1 else f"any of {', '.join(repr(label) for label in labels)}"
        raise PathError(f"'{unmatched[0]}' is neither a plot in pipeline.yaml nor a file in {where}",
                        hint="run 'pipe plots show' to draw every plot")
    if not per_plot:
        raise PipeError("there are no plots: pipeline.yaml declares none",
                        hint="declare them under 'plots:' (top level or in a stage), or name a data file: "
                             "'pipe plots show FILE'")
    out = (out_dir or Path(DEFAULT_OUT)).absolute()
    builder = _Builder(project, out, render_files)
    for plot_id, defs in per_plot.items():
        builder.add(plot_id, defs)
    if not builder.plots:
        first = builder.problems[0]
        raise PipeError(f"no plot has data: {first.source} at '{first.rev}': {first.message}",
                        hint="run 'pipe repro' to produce the plot files, or 'pipe pull' to fetch them")
    page = builder.write_page() if render_files else None
    return PlotsResult(tuple(builder.plots), out, page, tuple(builder.problems))


class _Builder:
    """Builds each plot's chart from its definitions per revision, and writes its files."""

    def __init__(self, project: Project, out: Path, render_files: bool) -> None:
        self.project, self.out, self.render_files = project, out, render_files
        self.plots: list[Plot] = []
        self.problems: list[Problem] = []
        self.charts: list[render.Chart] = []
        self.names: set[str] = set()

    def add(self, plot_id: str, defs: Sequence[tuple[ProjectIndex, PlotDef]]) -> None:
        if defs[0][1].is_image:
            self._add_images(plot_id, defs)
            return
        first = defs[0][1]
        parts = [p for index, plot in defs if (p := self._points(plot_id, index, plot)) and p.points]
        if not parts:
            if not any(problem.plot == plot_id for problem in self.problems):  # files read, but empty
                for index, plot in defs:
                    self._problem(plot_id, index, ", ".join(s.path for s in plot.sources), "no data rows")
            return
        revs = list(dict.fromkeys(str(p.points[0]["rev"]) for p in parts))
        names = tuple(sorted({n for p in parts for n in p.series_names}))
        data = SeriesPoints(tuple(pt for p in parts for pt in p.points), parts[0].x, parts[0].y, parts[0].x_label,
                            parts[0].y_label, next((p.series_field for p in parts if p.series_field), None), names)
        template = render.load_template(first.template, self.project.control_dir)
        spec = render.fill_chart(template, data, title=first.title or plot_id, revs=revs)
        files: list[Path] = []
        if self.render_files:
            slug = self._slug(plot_id)
            svg, png = self.out / STATIC / f"{slug}.svg", self.out / STATIC / f"{slug}.png"
            svg_text, png_data = render.render_images(spec, plot_id=plot_id)
            _write(svg, svg_text.encode("utf-8"))
            _write(png, png_data)
            files = [svg, png]
            self.charts.append(render.Chart(plot_id, spec=spec))
        self.plots.append(Plot(plot_id, tuple(revs), spec=spec, files=tuple(files)))

    def _points(self, plot_id: str, index: ProjectIndex, plot: PlotDef) -> SeriesPoints | None:
        label = index.files.label
        records: dict[str, list[dict[str, Any]]] = {}
        for source in plot.sources:
            try:
                where = index.files.describe(source.path)
                size = index.files.size(source.path)
                if size is not None:
                    check_document_size(size, source=where)  # before reading it
                data = read_at(index, source.path)
                if data is None and is_dangling_link(index, source.path):
                    raise dangling_link_error(index, source.path, "plots file")
                if data is None:
                    self._problem(plot_id, index, source.path, "no such file")
                    continue
                check_document_size(data, source=where)  # before decoding it
                records[source.path] = parse_records(decode_utf8(data, source=where), source=where,
                                                     suffix=os.path.splitext(source.path)[1], header=plot.header)
            except PipeError as exc:  # unreadable (invalid, a link out of the project, not in the cache): this file only
                self._problem(plot_id, index, source.path, _with_hint(exc))
        series = [Series(s.path, s.x, column) for s in plot.sources if records.get(s.path)
                  for column in (s.y or [c for c in [default_y(records[s.path])] if c])]
        try:
            return series_points(series, records, rev=label, x_label=plot.x_label, y_label=plot.y_label)
        except SpecError as exc:
            self._problem(plot_id, index, ", ".join(s.path for s in plot.sources), str(exc))
            return None

    def _add_images(self, plot_id: str, defs: Sequence[tuple[ProjectIndex, PlotDef]]) -> None:
        images: list[tuple[str, Path]] = []
        for index, plot in defs:
            path, label = plot.sources[0].path, index.files.label
            try:
                data = read_at(index, path)
            except PipeError as exc:
                self._problem(plot_id, index, path, _with_hint(exc))
                continue
            if data is None:
                self._problem(plot_id, index, path, "no such file")
                continue
            dest = self.out / STATIC / self._slug(f"{label}_{path}", keep_suffix=True)
            _write(dest, data)
            images.append((label, dest))
            if self.render_files:
                self.charts.append(render.Chart(plot_id, image=data, suffix=os.path.splitext(path)[1], rev=label))
        if images:
            self.plots.append(Plot(plot_id, tuple(r for r, _ in images), images=tuple(images)))

    def _problem(self, plot_id: str, index: ProjectIndex, source: str, message: str) -> None:
        self.problems.append(Problem(plot_id, index.files.label, source, message))

    def _slug(self, text: str, *, keep_suffix: bool = False) -> str:
        """A file name for `text` (a plot id or path from git): no separators, no dots in front, unique here."""
        stem, suffix = os.path.splitext(text) if keep_suffix else (text, "")
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._")[:120] or "plot"
        name, number = base, 1
        while name.lower() in self.names:
            number += 1
            name = f"{base}-{number}"
        self.names.add(name.lower())
        return name + re.sub(r"[^A-Za-z0-9.]", "", suffix)[:10]

    def write_page(self) -> Path:
        page = self.out / "index.html"
        _write(page, render.page_html(self.charts, bundle=render.javascript_bundle()).encode("utf-8"))
        return page


def _with_hint(exc: PipeError) -> str:
    """A file's error as one problem line, its hint (e.g. 'pipe fetch --rev REV') kept."""
    return f"{exc} (hint: {exc.hint})" if exc.hint else str(exc)


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, fsync=False)
    except OSError as exc:
        raise PathError(f"cannot write '{path}': {exc.strerror or exc}", hint="choose another directory with '-o DIR'") from exc


def templates(project: Project) -> list[tuple[str, str]]:
    """(name, source) of every plot template: the project's `.pipe/plots/*.json` first, then the built-in ones."""
    return render.template_names(project.control_dir)


def template_text(project: Project, name: str) -> str:
    """The JSON of template `name`, as `pipe plots templates NAME` prints it.

    Raises:
        SpecError: no such template, or the project's custom one is invalid.
    """
    import json

    return json.dumps(render.load_template(name, project.control_dir).content, indent=2) + "\n"


def export_templates(project: Project, out_dir: Path, names: Sequence[str] = ()) -> list[Path]:
    """Write templates (all built-in ones when `names` is empty) to `out_dir/NAME.json` for customising.

    A file already there with the same content is left alone; one with other content is refused.

    Raises:
        SpecError: an unknown template; PathError: a file with other content is in the way, or `out_dir` is not writable.
    """
    written: list[Path] = []
    for name in names or render.TEMPLATE_NAMES:
        text = template_text(project, name)
        dest = out_dir / f"{name.removesuffix('.json')}.json"
        if dest.is_file() and dest.read_text(encoding="utf-8", errors="replace") == text:
            continue
        if dest.exists():
            raise PathError(f"'{dest}' exists and differs from template '{name}'",
                            hint="remove it first to write the template again")
        _write(dest, text.encode("utf-8"))
        written.append(dest)
    return written

