"""Plot templates filled with datapoints, and the files `pipe plots` writes: index.html, SVG and PNG per chart.

Templates are Vega-Lite specs with anchors (`"<PIPE_X>"`, `"<PIPE_DATA>"`, ...) that the renderer
replaces, as DVC's are (a DVC user's custom template, written with `<DVC_METRIC_X>`, works as it is).
The built-in ones are package data (`pipeline_engine/templates/plots/`); a project's own are
`.pipe/plots/NAME.json`, looked up first. A custom template comes through git: it is parsed within
`core.yamlio`'s bounds and may not load data from anywhere (`url`), so rendering reads nothing but
the datapoints pipe gives it.

SVG and PNG come from vl-convert-python (the `plots` extra), which also provides the JavaScript of
Vega, Vega-Lite and vega-embed that index.html inlines: the page needs no network. Building that
bundle takes seconds, so it is kept in the user's cache directory, one file per vl-convert version.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.yamlio import parse_json
from pipeline_engine.errors import PipeError, SpecError
from pipeline_engine.ops.plots.data import REV, SeriesPoints

__all__ = [
    "CSP", "DEFAULT_TEMPLATE", "TEMPLATE_NAMES", "Chart", "Template", "fill_chart", "javascript_bundle",
    "load_template", "page_html", "render_images", "template_names",
]

TEMPLATE_NAMES = ("linear", "simple", "scatter", "scatter_jitter", "smooth", "bar_horizontal",
                  "bar_horizontal_sorted", "confusion", "confusion_normalized")
DEFAULT_TEMPLATE = "linear"
#: Under the control directory (`.pipe/plots/NAME.json`), as DVC's `.dvc/plots/`.
CUSTOM_DIR = "plots"
_PREFIXES = ("<PIPE_", "<DVC_METRIC_")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_MAX_TEMPLATE = 1 << 20
_COLORS = ("#945dd6", "#13adc7", "#f46837", "#48bb78", "#4299e1", "#ed8936", "#f56565")
_DASHES = ([1, 0], [8, 8], [8, 4], [4, 4], [4, 2], [2, 1], [1, 1])
_SHAPES = ("circle", "square", "triangle", "diamond")
_SIZE = 300
_EXTRA = "pip install 'pipeline-engine[plots]'"


@dataclass(frozen=True, slots=True)
class Template:
    """A Vega-Lite spec with anchors; `source` is `built-in` or the custom file it came from."""

    name: str
    content: Mapping[str, Any]
    source: str


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of the page: a Vega-Lite spec, or an image (`image`: its bytes, `suffix`: its type)."""

    id: str
    spec: Mapping[str, Any] | None = None
    image: bytes = b""
    suffix: str = ""
    rev: str = ""


def template_names(control_dir: Path) -> list[tuple[str, str]]:
    """(name, source) of every template: the project's custom ones first, then the built-in ones it does not shadow."""
    custom_dir = control_dir / CUSTOM_DIR
    custom = sorted(p.stem for p in custom_dir.glob("*.json") if _NAME.match(p.stem)) if custom_dir.is_dir() else []
    shown = [(name, f".pipe/{CUSTOM_DIR}/{name}.json") for name in custom]
    return shown + [(name, "built-in") for name in TEMPLATE_NAMES if name not in custom]


def load_template(name: str | None, control_dir: Path) -> Template:
    """The template `name` (default `linear`): `.pipe/plots/NAME.json` if the project has one, else a built-in.

    Raises:
        SpecError: no such template, or a custom one is not a bounded JSON object with a `<PIPE_DATA>`
            anchor, or it loads data by `url`; the message names the file.
    """
    name = (name or DEFAULT_TEMPLATE).removesuffix(".json")
    if not _NAME.match(name):
        raise SpecError(f"plot template '{name[:100]}': a template is named by letters, digits, '_', '.' and '-'",
                        hint="run 'pipe plots templates' to list them")
    path = control_dir / CUSTOM_DIR / f"{name}.json"
    source = f".pipe/{CUSTOM_DIR}/{name}.json"
    # The template comes through git: a link (or a linked .pipe/plots) must not make pipe read elsewhere.
    if path.is_file() and path.resolve().is_relative_to(control_dir.resolve()) and not path.is_symlink():
        if path.stat().st_size > _MAX_TEMPLATE:
            raise SpecError(f"{source}: larger than {_MAX_TEMPLATE} bytes")
        text = path.read_text(encoding="utf-8", errors="replace")
    elif name in TEMPLATE_NAMES:
        text = resources.files("pipeline_engine").joinpath(f"templates/plots/{name}.json").read_text(encoding="utf-8")
        source = "built-in"
    else:
        raise SpecError(f"plot template '{name}' not found (neither .pipe/{CUSTOM_DIR}/{name}.json nor a built-in one)",
                        hint="run 'pipe plots templates' to list them")
    content = parse_json(text, source=source)
    if not isinstance(content, dict):
        raise SpecError(f"{source}: a template must be a JSON object (a Vega-Lite spec)")
    anchors = {f"{prefix}DATA>" for prefix in _PREFIXES}
    if not any(isinstance(node, str) and node in anchors for node in _nodes(content)):
        raise SpecError(f"{source}: the template has no '<PIPE_DATA>' anchor for the data")
    if any(isinstance(node, Mapping) and "url" in node for node in _nodes(content)):
        raise SpecError(f"{source}: a template may not load data by 'url' (plots show only the data pipe reads)")
    if "usermeta" in content:  # vega-embed takes options from it that fetch URLs and write HTML
        raise SpecError(f"{source}: a template may not set 'usermeta' (vega-embed options: loaders, "
                        "config and source-view HTML)", hint="remove the 'usermeta' key")
    return Template(name, content, source)


def _nodes(value: Any) -> Iterator[Any]:
    """Every value nested in `value` (itself included), without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def fill_chart(template: Template, data: SeriesPoints, *, title: str, revs: Sequence[str]) -> dict[str, Any]:
    """The Vega-Lite spec of one chart: `template` with every anchor replaced (DVC's anchor semantics).

    `revs` are the revisions in legend order: each gets a colour; several series in one chart are
    told apart by dash (lines) or shape (points), and split into rows (confusion matrices).
    """
    key, names = data.series_field, list(data.series_names)
    group = [REV, key] if key else [REV]
    tooltip = [{"field": f} for f in (REV, key, data.x, data.y) if f]
    values: dict[str, Any] = {
        "DATA": [dict(p) for p in data.points],
        "TITLE": title, "X_LABEL": data.x_label, "Y_LABEL": data.y_label,
        "X": _field(data.x), "Y": _field(data.y),
        "COLOR": {"field": REV, "type": "nominal", "scale": {"domain": list(revs), "range": _cycle(_COLORS, len(revs))}},
        "STROKE_DASH": _series(key, names, _DASHES), "SHAPE": _series(key, names, _SHAPES),
        "TOOLTIP": tooltip, "GROUP_BY": group, "GROUP_BY_X": [*group, data.x], "GROUP_BY_Y": [*group, data.y],
        "PIVOT_FIELD": " + '::' + ".join(f"datum[{json.dumps(f)}]" for f in group),
        "ROW": {"field": key, "sort": []} if key else {}, "COLUMN": {"field": key, "sort": []} if key else {},
        "ZOOM_AND_PAN": {"name": "grid", "select": "interval", "bind": "scales"},
        "PLOT_WIDTH": _SIZE, "PLOT_HEIGHT": _SIZE,
    }
    filled = _replace(template.content, values)
    assert isinstance(filled, dict)
    return filled


def _field(name: str) -> str:
    """A column name as a Vega-Lite field: `.`, `[` and `]` are escaped so `acc.top1` is one column."""
    return re.sub(r"([.\[\]])", r"\\\1", name)


def _cycle(palette: Sequence[Any], n: int) -> list[Any]:
    return [palette[i % len(palette)] for i in range(n)]


def _series(key: str | None, names: list[str], palette: Sequence[Any]) -> dict[str, Any]:
    if not key:
        return {}
    legend = {"symbolFillColor": "transparent", "symbolStrokeColor": "grey"}
    return {"field": key, "scale": {"domain": names, "range": _cycle(palette, len(names))}, "legend": legend}


def _replace(value: Any, values: Mapping[str, Any]) -> Any:
    """`value` with every anchor replaced; an anchor inside a longer string is replaced by its text.

    A key whose value is an anchor filled with {} is left out: a single series needs no dash,
    shape or row, and Vega-Lite refuses an empty channel.
    """
    if isinstance(value, Mapping):
        filled = {k: _replace(v, values) for k, v in value.items()}
        return {k: v for k, v in filled.items() if v != {} or value[k] == {}}
    if isinstance(value, list):
        return [_replace(v, values) for v in value]
    if not isinstance(value, str) or "<" not in value:
        return value
    for prefix in _PREFIXES:
        if value.startswith(prefix) and value.endswith(">") and value[len(prefix):-1] in values:
            return values[value[len(prefix):-1]]
    for prefix in _PREFIXES:
        for name, replacement in values.items():
            if isinstance(replacement, (str, int)) and f"{prefix}{name}>" in value:
                value = value.replace(f"{prefix}{name}>", str(replacement))
    return value


def _vl_convert() -> Any:
    try:
        import vl_convert
    except ImportError:
        raise PipeError("rendering plots needs vl-convert-python, which is not installed",
                        hint=f"{_EXTRA} (or use '--json', which needs nothing more)") from None
    return vl_convert


def render_images(spec: Mapping[str, Any], *, plot_id: str) -> tuple[str, bytes]:
    """`spec` as an SVG document and a PNG image (2x scale, sharp in a pull-request comment), rendered offline.

    Vega runs once: the PNG is rasterised from the SVG. No data is fetched from anywhere.

    Raises:
        PipeError: vl-convert-python is missing; SpecError: the spec does not render (a custom template's fault).
    """
    vl_convert = _vl_convert()
    try:
        svg: str = vl_convert.vegalite_to_svg(dict(spec), allowed_base_urls=[])
        png: bytes = vl_convert.svg_to_png(svg, scale=2)
    except (ValueError, RuntimeError) as exc:  # vl-convert's errors: a spec Vega-Lite refuses, an SVG resvg cannot read
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:2])[:300]  # not the JS stack
        raise SpecError(f"plot '{plot_id}': the chart does not render: {detail}",
                        hint="check the plot's template ('pipe plots templates NAME' prints a built-in one)") from exc
    return svg, png


def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (from vl-convert), built once per vl-convert version.

    Raises:
        PipeError: vl-convert-python is missing.
    """
    vl_convert = _vl_convert()
    import platformdirs

    version = getattr(vl_convert, "__version__", "unknown")
    cached = Path(platformdirs.user_cache_dir("pipe")) / "plots" / f"vega-bundle-{version}.js"
    try:
        return cached.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    bundle: str = vl_convert.javascript_bundle()
    bundle = re.sub(r"</(script)", r"<\\/\1", bundle, flags=re.IGNORECASE)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, bundle, fsync=False)
    except OSError:
        pass  # a read-only home: build it again next time
    return bundle


def page_html(charts: Sequence[Chart], *, bundle: str, title: str = "pipe plots") -> str:
    """One self-contained page: the bundle inlined, each spec as inert JSON, each image as a data URI.

    Everything from a data file or a template is escaped: text through `html.escape`, specs as JSON
    with `<`, `>` and `&` written as `\\u003c`..., so no value can close a tag or start a script.
    """
    blocks, specs = [], []
    for number, chart in enumerate(charts):
        heading = html.escape(chart.id + (f" ({chart.rev})" if chart.rev else ""))
        if chart.spec is not None:
            specs.append({"id": f"plot-{number}", "spec": chart.spec})
            body = f'<div id="plot-{number}" class="vega"></div>'
        else:
            mime = _MIME.get(chart.suffix.lower(), "application/octet-stream")
            data = base64.b64encode(chart.image).decode("ascii")
            body = f'<img src="data:{mime};base64,{data}" alt="{heading}">'
        blocks.append(f'<section class="plot"><h2>{heading}</h2>{body}</section>')
    payload = json.dumps(specs, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _PAGE.format(title=html.escape(title), csp=CSP, bundle=bundle, blocks="\n".join(blocks), specs=payload)


# The page loads nothing: no request leaves it whatever a spec or template asks for (a template comes
# through git). Vega compiles its expressions with Function, hence 'unsafe-eval'; the scripts are inline.
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; form-action 'none'; base-uri 'none'")


_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".svg": "image/svg+xml", ".webp": "image/webp"}

_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
.plot {{ display: inline-block; vertical-align: top; margin: 0 2em 2em 0; }}
.plot h2 {{ font-size: 1em; }}
.plot img {{ max-width: 640px; }}
</style>
<script>{bundle}</script>
</head>
<body>
{blocks}
<script type="application/json" id="pipe-plots">{specs}</script>
<script>
for (const plot of JSON.parse(document.getElementById("pipe-plots").textContent)) {{
  vegaEmbed("#" + plot.id, plot.spec, {{renderer: "svg", actions: {{export: true, source: true, compiled: false, editor: false}}}})
    .catch((error) => {{ document.getElementById(plot.id).textContent = String(error); }});
}}
</script>
</body>
</html>
"""
