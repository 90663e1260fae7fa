"""Where a plot's data comes from at one revision: its definitions (pipeline.yaml) and its files (git or the cache).

Plots are defined in two places, as in DVC: a stage's `plots:` outs (options `x`, `y`, `template`,
`title`, `x_label`, `y_label`, `header`) and the top-level `plots:` key (`pipeline/outputs.py`).
A plot whose path is a directory is one plot per data or image file inside it. A target that no
definition matches but that names a data file (or a directory of them) plots that file as it is.

A plot file is read where it lives at that revision (`index/tracked.py`): the workspace as it is on
disk; at a git revision, a cached out from the local cache by the oid its lock or pointer records
(inside a cached directory too, as dvclive's `eval/`), any other file from git.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from pipeline_engine.core.fsutil import relpath_in
from pipeline_engine.errors import PathError, UnsafePathError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.tracked import list_at
from pipeline_engine.ops.plots.data import DATA_SUFFIXES
from pipeline_engine.pipeline.outputs import IMAGE_SUFFIXES, PlotOptions, PlotSource
from pipeline_engine.pipeline.spec import OutKind

__all__ = ["PlotDef", "collect_plots"]


@dataclass(frozen=True, slots=True)
class PlotDef:
    """One plot at one revision: its id (a path, or a top-level plot's name), its data files and options."""

    id: str
    sources: tuple[PlotSource, ...]
    template: str | None = None
    title: str | None = None
    x_label: str | None = None
    y_label: str | None = None
    header: bool = True

    @property
    def is_image(self) -> bool:
        """True for an image file, shown as it is."""
        return len(self.sources) == 1 and self.sources[0].is_image


def collect_plots(index: ProjectIndex, targets: Sequence[str], props: PlotOptions) -> tuple[dict[str, PlotDef], set[str]]:
    """The plots of one revision chosen by `targets` (all when empty), by id in definition order, and the targets that matched.

    Raises:
        SpecError: pipeline.yaml is invalid at this revision.
        ObjectNotFoundError: a plot directory is cached and its manifest is not in the local cache.
    """
    defined: dict[str, PlotDef] = {}
    spec = index.spec
    for plot in spec.plots:
        for one in _expand(index, PlotDef(plot.id, plot.sources, plot.template, plot.title, plot.x_label, plot.y_label)):
            defined.setdefault(one.id, one)
    for stage in spec.stages.values():
        for out in stage.outs:
            if out.kind is OutKind.PLOT:
                o = out.plot or PlotOptions()
                base = PlotDef(out.path, (PlotSource(out.path, o.x, (o.y,) if o.y else ()),),
                               o.template, o.title, o.x_label, o.y_label, header=o.header is not False)
                for one in _expand(index, base):
                    defined.setdefault(one.id, one)
    chosen, matched = _select(index, defined, targets)
    return {i: _override(p, props) for i, p in chosen.items()}, matched


def _select(index: ProjectIndex, defined: Mapping[str, PlotDef],
            targets: Sequence[str]) -> tuple[dict[str, PlotDef], set[str]]:
    if not targets:
        return dict(defined), set()
    chosen: dict[str, PlotDef] = {}
    matched: set[str] = set()
    for target in targets:
        rel = _relpath(index, target)
        hits = {i: p for i, p in defined.items()
                if target == i or (rel is not None and any(_under(path, rel) for path in (i, *_paths(p))))}
        if not hits and rel and list_at(index, rel):
            hits = {p.id: p for p in _expand(index, PlotDef(rel, (PlotSource(rel),)))}
        if hits:
            matched.add(target)
        for i, p in hits.items():
            chosen.setdefault(i, p)
    return chosen, matched


def _relpath(index: ProjectIndex, target: str) -> str | None:
    try:
        return relpath_in(index.project.root, target).rstrip("/")
    except PathError:
        return None


def _under(path: str, rel: str) -> bool:
    return rel in ("", path) or path.startswith(rel + "/")


def _paths(plot: PlotDef) -> list[str]:
    return [s.path for s in plot.sources]


def _override(plot: PlotDef, props: PlotOptions) -> PlotDef:
    """Command-line options over the definition's; `-x`/`-y` apply to single-file plots only (as DVC's)."""
    plot = replace(plot, **{k: getattr(props, k) for k in ("template", "title", "x_label", "y_label")
                            if getattr(props, k) is not None})
    if props.header is not None:
        plot = replace(plot, header=props.header)
    if len(plot.sources) == 1 and (props.x or props.y):
        source = plot.sources[0]
        plot = replace(plot, sources=(PlotSource(source.path, props.x or source.x,
                                                 (props.y,) if props.y else source.y),))
    return plot


def _expand(index: ProjectIndex, plot: PlotDef) -> list[PlotDef]:
    """A single-path plot whose path is a directory (in git, on disk or in the cache): one plot per data or image file in it."""
    if len(plot.sources) != 1:
        return [plot]
    source = plot.sources[0]
    try:
        files = list_at(index, source.path, suffixes=(*DATA_SUFFIXES, *IMAGE_SUFFIXES))
    except UnsafePathError:  # a link leading out of the project: reading it reports the problem, for this plot only
        return [plot]
    if not files or files == [source.path]:
        return [plot]
    return [replace(plot, id=f, sources=(PlotSource(f, source.x, source.y),)) for f in files]

