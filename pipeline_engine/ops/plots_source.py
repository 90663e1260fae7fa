"""Where a plot's data comes from at one revision: its definitions (pipeline.yaml) and its files (git or the cache).

Plots are defined in two places, as in DVC: a stage's `plots:` outs (options `x`, `y`, `template`,
`title`, `x_label`, `y_label`, `header`) and the top-level `plots:` key (`pipeline/outputs.py`).
A plot whose path is a directory is one plot per data or image file inside it. A target that no
definition matches but that names a data file (or a directory of them) plots that file as it is.

A plot file is read from the revision's files (the workspace, or git); a cached one, which git
does not hold, from the local cache by the oid the revision's lock or pointer records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from pipeline_engine.cache.tree import Tree
from pipeline_engine.cache.workspace import tree_of
from pipeline_engine.core.fsutil import relpath_in
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import ObjectNotFoundError, PathError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.ops.plots_data import DATA_SUFFIXES
from pipeline_engine.pipeline.outputs import IMAGE_SUFFIXES, PlotOptions, PlotSource
from pipeline_engine.pipeline.spec import OutKind

__all__ = ["PlotDef", "PlotProps", "collect_plots", "read_plot_file"]


@dataclass(frozen=True, slots=True)
class PlotProps:
    """Options given on the command line (DVC's `-t`, `-x`, `-y`, `--title`, ...), over pipeline.yaml's."""

    template: str | None = None
    x: str | None = None
    y: str | None = None
    title: str | None = None
    x_label: str | None = None
    y_label: str | None = None
    header: bool | None = None


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


def collect_plots(index: ProjectIndex, targets: Sequence[str], props: PlotProps) -> tuple[dict[str, PlotDef], set[str]]:
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
        if not hits and rel is not None and (index.files.is_file(rel) or index.files.is_dir(rel)
                                             or _record_for(index, rel) is not None):
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


def _override(plot: PlotDef, props: PlotProps) -> PlotDef:
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
    """A single-path plot whose path is a directory: one plot per data or image file in it (sorted)."""
    if len(plot.sources) != 1:
        return [plot]
    path = plot.sources[0].path
    files = _dir_files(index, path)
    if files is None:
        return [plot]
    source = plot.sources[0]
    return [replace(plot, id=f, sources=(PlotSource(f, source.x, source.y),))
            for f in files if f.lower().endswith((*DATA_SUFFIXES, *IMAGE_SUFFIXES))]


def _dir_files(index: ProjectIndex, path: str) -> list[str] | None:
    """The files under directory `path` at this revision (from the files, else the cached manifest); None if not a directory."""
    if index.files.is_dir(path):
        return index.files.list_files(under=path)
    record = _record_for(index, path)
    if record is None or record[0].path != path or not record[0].isdir:
        return None
    tree = _tree(index, record[0])
    return [f"{path}/{e.relpath}" for e in tree.entries]


def read_plot_file(index: ProjectIndex, path: str) -> bytes | None:
    """The content of plot file `path` at this revision: from its files, else from the cache; None if it has none.

    Raises:
        ObjectNotFoundError: the revision records the file as cached, and the local cache lacks it
            (the hint names `pipe fetch --rev REV`, or `pipe pull` for the workspace).
        CorruptObjectError: the cached object does not match its oid.
    """
    data = index.files.read_bytes(path)
    if data is not None:
        return data
    found = _record_for(index, path)
    if found is None:
        return None
    record, inside = found
    oid = record.oid
    if inside:
        entry = _tree(index, record).by_path().get(inside)
        if entry is None:
            return None
        oid = entry.oid
    try:
        return index.project.store.read_bytes(oid)
    except ObjectNotFoundError:
        raise _missing(index, path, oid) from None


def _record_for(index: ProjectIndex, path: str) -> tuple[PathRecord, str] | None:
    """The cached record holding `path` at this revision (a stage out or a pointer), and the part of it inside a directory."""
    records = [o.record for o in index.stage_outs] + [
        PathRecord(p.data_relpath, p.out.oid, p.out.size, p.out.nfiles) for p in index.pointers]
    for record in records:
        if record.path == path:
            return record, ""
        if record.isdir and path.startswith(record.path + "/"):
            return record, path[len(record.path) + 1:]
    return None


def _tree(index: ProjectIndex, record: PathRecord) -> Tree:
    try:
        return tree_of(index.project.store, record.oid)
    except ObjectNotFoundError:
        raise _missing(index, record.path, record.oid) from None


def _missing(index: ProjectIndex, path: str, oid: str) -> ObjectNotFoundError:
    label = index.files.label
    if index.is_workspace:
        return ObjectNotFoundError(f"plot file '{path}' is not in the workspace, and its cached content "
                                   f"(object '{oid}') is not in the local cache", hint=f"run 'pipe pull {path}'")
    return ObjectNotFoundError(f"plot file '{path}' at '{label}' is cached, and its object '{oid}' is not in the local cache",
                               hint=f"run 'pipe fetch --rev {label}' to fetch what that revision needs")
