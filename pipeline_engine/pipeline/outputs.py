"""Typed models of pipeline.yaml's reporting keys: stage plot options, top-level `metrics:`, `params:`, `plots:`, `artifacts:`.

The shapes are DVC's (dvc.yaml), so a DVC user's file reads unchanged:

```yaml
metrics: [eval/metrics.json, eval/more]          # files or directories
params: [config/train.json]                      # params files shown by `params diff` and `exp show`
plots:
  - eval/prc.json                                # a data file (or an image: .png .jpg .svg ...)
  - eval/roc.json: {x: fpr, y: tpr}              # a data file with options; y may be a list of columns
  - train_vs_test:                               # a plot id: `y` maps files to columns
      y: {eval/train.json: acc, eval/test.json: [acc, loss]}
      x: step                                    # one column, or {file: column} per file
      template: linear
artifacts:
  text-classification: {path: models/model.pkl, type: model, desc: ..., labels: [nlp], meta: {...}}
```

An entry is a plot id (not a path) exactly when its `y` is a mapping (DVC's rule). Every path goes
through `norm_path` (the path gate); every error names pipeline.yaml's key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pipeline_engine.errors import SpecError

__all__ = [
    "ARTIFACT_NAME", "IMAGE_SUFFIXES", "ArtifactSpec", "PlotOptions", "PlotSource", "PlotSpec",
    "parse_artifacts", "parse_metrics_paths", "parse_params_paths", "parse_plot_options", "parse_plots",
]

#: DVC's artifact names (dvc/repo/artifacts.py, GTO's convention without '/' at either end).
ARTIFACT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-/]*[a-z0-9])?$")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
_TEXT_OPTIONS = ("template", "title", "x_label", "y_label")

#: `norm(path, what)`: a path relative to pipeline.yaml's directory -> project-relative, or UnsafePathError.
PathNorm = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class PlotOptions:
    """A stage plot's options (`plots: [file: {x, y, template, title, x_label, y_label, header}]`)."""

    x: str | None = None
    y: str | None = None
    template: str | None = None
    title: str | None = None
    x_label: str | None = None
    y_label: str | None = None
    header: bool | None = None


@dataclass(frozen=True, slots=True)
class PlotSource:
    """One data file of a plot and the columns it contributes (empty `y`: the renderer's default)."""

    path: str
    x: str | None = None
    y: tuple[str, ...] = ()

    @property
    def is_image(self) -> bool:
        """True for an image file, shown as it is rather than plotted."""
        return self.path.lower().endswith(IMAGE_SUFFIXES)


@dataclass(frozen=True, slots=True)
class PlotSpec:
    """One top-level plot: its id (the path, for a single-file entry) and its sources in file order."""

    id: str
    sources: tuple[PlotSource, ...]
    template: str | None = None
    title: str | None = None
    x_label: str | None = None
    y_label: str | None = None


@dataclass(frozen=True, slots=True)
class ArtifactSpec:
    """A registered model or dataset (`artifacts: NAME: {path, type, desc, labels, meta}`)."""

    name: str
    path: str
    type: str | None = None
    desc: str | None = None
    labels: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def parse_plot_options(flags: Mapping[str, Any], *, where: str) -> PlotOptions:
    """A stage plot's options from its flags mapping (other flags, such as `cache`, are ignored).

    Raises:
        SpecError: an option has the wrong type; the message names `where` and the option.
    """
    for key in ("x", "y", *_TEXT_OPTIONS):
        _text(flags.get(key), f"{where}: '{key}'")
    header = flags.get("header")
    if header is not None and not isinstance(header, bool):
        raise SpecError(f"{where}: 'header' must be true or false, not {header!r:.60}")
    return PlotOptions(**{k: flags.get(k) for k in ("x", "y", *_TEXT_OPTIONS)}, header=header)


def parse_metrics_paths(raw: Any, norm: PathNorm) -> tuple[str, ...]:
    """Top-level `metrics:` -> project-relative paths, in order, without repeats.

    Raises:
        SpecError: not a list of paths; UnsafePathError for a path the gate refuses.
    """
    return _paths(raw, norm, "metrics")


def parse_params_paths(raw: Any, norm: PathNorm) -> tuple[str, ...]:
    """Top-level `params:` (params files no stage need track) -> project-relative paths, in order, without repeats.

    Raises:
        SpecError: not a list of paths; UnsafePathError for a path the gate refuses.
    """
    return _paths(raw, norm, "params")


def _paths(raw: Any, norm: PathNorm, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
        raise SpecError(f"'{key}' must be a list of paths, not {raw!r:.60}")
    return tuple(dict.fromkeys(norm(m, key) for m in raw))


def parse_plots(raw: Any, norm: PathNorm) -> tuple[PlotSpec, ...]:
    """Top-level `plots:` in any of DVC's forms (module docstring) -> PlotSpecs in file order.

    Raises:
        SpecError: an entry has the wrong shape, names a plot twice, or a column is not a string;
            the message names `plots` and the entry.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError(f"'plots' must be a list, not {type(raw).__name__}")
    plots: dict[str, PlotSpec] = {}
    for index, item in enumerate(raw):
        if isinstance(item, str) and item:
            plot = _plot(item, {}, norm, f"plots[{index}]")
        elif isinstance(item, Mapping) and len(item) == 1 and isinstance(next(iter(item)), str):
            plot_id, props = next(iter(item.items()))
            if props is not None and not isinstance(props, Mapping):
                raise SpecError(f"plots: '{plot_id}': the options must be a mapping, not {props!r:.60}")
            plot = _plot(plot_id, props or {}, norm, f"plots: '{plot_id}'")
        else:
            raise SpecError(f"plots[{index}]: must be a path or a mapping {{id: {{options}}}}, not {item!r:.60}")
        if plot.id in plots:
            raise SpecError(f"plots: '{plot.id}' is defined twice")
        plots[plot.id] = plot
    return tuple(plots.values())


def _plot(plot_id: str, props: Mapping[str, Any], norm: PathNorm, where: str) -> PlotSpec:
    unknown = sorted(set(props) - {"x", "y", *_TEXT_OPTIONS})
    if unknown:
        raise SpecError(f"{where}: unknown key '{unknown[0]}' (known: x, y, {', '.join(_TEXT_OPTIONS)})")
    text = {k: _text(props.get(k), f"{where}: '{k}'") for k in _TEXT_OPTIONS}
    x, y = props.get("x"), props.get("y")
    if not isinstance(y, Mapping):
        # The id is the data file; x and y are its columns.
        path = norm(plot_id, "plots")
        source = PlotSource(path, _text(x, f"{where}: 'x'"), _columns(y, f"{where}: 'y'"))
        return PlotSpec(path, (source,), **text)
    if isinstance(x, Mapping):
        extra = sorted(str(f) for f in x if f not in y)
        if extra:
            raise SpecError(f"{where}: 'x' names '{extra[0]}', which 'y' does not")
    sources = []
    for file, columns in y.items():
        if not isinstance(file, str) or not file:
            raise SpecError(f"{where}: 'y' must map data files to columns, not {file!r:.60}")
        x_col = x.get(file) if isinstance(x, Mapping) else x
        sources.append(PlotSource(norm(file, "plots"), _text(x_col, f"{where}: 'x'"),
                                  _columns(columns, f"{where}: 'y' of '{file}'")))
    if not sources:
        raise SpecError(f"{where}: 'y' must name at least one data file")
    return PlotSpec(plot_id, tuple(sources), **text)


def _text(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{where} must be a string, not {value!r:.60}")
    return value


def _columns(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(c, str) for c in value):
        return tuple(value)
    raise SpecError(f"{where} must be a column name or a list of them, not {value!r:.60}")


def parse_artifacts(raw: Any, norm: PathNorm) -> Mapping[str, ArtifactSpec]:
    """Top-level `artifacts:` -> ArtifactSpecs by name, in file order.

    Raises:
        SpecError: a name DVC would refuse, a missing `path`, or a field of the wrong type;
            the message names `artifacts` and the artifact.
    """
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise SpecError(f"'artifacts' must be a mapping of names to {{path, type, desc, labels, meta}}, not {raw!r:.60}")
    out: dict[str, ArtifactSpec] = {}
    for name, body in raw.items():
        if not isinstance(name, str) or not ARTIFACT_NAME.match(name):
            raise SpecError(
                f"artifacts: invalid name {name!r}",
                hint="use lowercase letters, digits, '-' and '/', starting and ending with a letter or digit",
            )
        where = f"artifacts: '{name}'"
        if not isinstance(body, Mapping) or not isinstance(body.get("path"), str) or not body["path"]:
            raise SpecError(f"{where}: needs 'path' (a string)")
        unknown = sorted(set(body) - {"path", "type", "desc", "labels", "meta"})
        if unknown:
            raise SpecError(f"{where}: unknown key '{unknown[0]}' (known: path, type, desc, labels, meta)")
        labels = body.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
            raise SpecError(f"{where}: 'labels' must be a list of strings")
        meta = body.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise SpecError(f"{where}: 'meta' must be a mapping")
        out[name] = ArtifactSpec(
            name=name, path=norm(body["path"], where), type=_text(body.get("type"), f"{where}: 'type'"),
            desc=_text(body.get("desc"), f"{where}: 'desc'"), labels=tuple(labels), meta=MappingProxyType(dict(meta)),
        )
    return MappingProxyType(out)
