"""Plot data: a data file's text -> records, and a plot's series at one revision -> Vega-Lite datapoints.

The rules are DVC's (`dvc plots`), so a DVC user's plots look the same:
- CSV/TSV: one record per row under the header's names (`header: false`: columns `0`, `1`, ...);
  cells that read as numbers become numbers (DVC leaves them strings; Vega-Lite would convert them).
- JSON/YAML: a list of records, or a mapping holding lists of records (dvclive's `{"roc": [...]}`);
  several such lists are joined index by index.
- A series is (file, x column, y column). No `x`: the row number, as `step`. No `y`: the last
  column of the first record. Each datapoint carries `rev`, `filename` and `field` (the y column),
  so one chart can overlay revisions and files; when the series use different columns, their
  values are copied to one shared column (`pipe_inferred_y_value`, as DVC's `dvc_inferred_*`).

Data files come from git or the cache: they are parsed within `core.yamlio`'s bounds, and the
number of datapoints one plot may hold is bounded too.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline_engine.core.yamlio import check_document_size
from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.params import parse_document

__all__ = [
    "DATA_SUFFIXES", "FIELD", "FILENAME", "INFERRED_X", "INFERRED_Y", "MAX_POINTS", "REV", "STEP",
    "Series", "SeriesPoints", "default_y", "parse_records", "series_points",
]

REV, FILENAME, FIELD, STEP = "rev", "filename", "field", "step"
INFERRED_X, INFERRED_Y = "pipe_inferred_x_value", "pipe_inferred_y_value"
DATA_SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".tsv")
#: How many datapoints one plot may hold (a bound for hostile input; a browser chokes long before).
MAX_POINTS = 1_000_000
BOTH = f"{FILENAME}::{FIELD}"
#: (files differ, columns differ) -> the column naming each series.
SERIES_KEYS = {(True, False): FILENAME, (False, True): FIELD, (True, True): BOTH}
_NONFINITE = frozenset({"nan", "inf", "infinity"})
_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


@dataclass(frozen=True, slots=True)
class Series:
    """One line (or set of points) of a plot: a data file, its x column (None: the row number), its y column."""

    path: str
    x: str | None
    y: str


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    """A plot's datapoints at one revision, and the column names its template is filled with."""

    points: tuple[Mapping[str, Any], ...]
    x: str
    y: str
    x_label: str
    y_label: str
    #: The column that tells series apart when a plot has several (`filename`, `field` or
    #: `filename::field`), and its values; None and () for a single series.
    series_field: str | None = None
    series_names: tuple[str, ...] = ()


def parse_records(text: str, *, suffix: str, source: str, header: bool = True) -> list[dict[str, Any]]:
    """A data file's records (module docstring), parsed by its `suffix`; [] for an empty file.

    Raises:
        SpecError: naming `source`: invalid text, a shape that holds no records, or more than `MAX_POINTS` rows.
    """
    suffix = suffix.lower()
    if suffix in (".csv", ".tsv"):
        check_document_size(text, source=source)
        return _table(text, delimiter="\t" if suffix == ".tsv" else ",", header=header, source=source)
    if suffix not in DATA_SUFFIXES:
        raise SpecError(f"{source}: plots read JSON, YAML, CSV and TSV files (or images), not '{suffix or 'no suffix'}'")
    data = parse_document(text, suffix=suffix, source=source, allow_nonfinite=True)
    if data is None:
        return []
    if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        return [_record(r) for r in data]
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: plot data must be a list of records or a mapping holding one, "
                        f"not {type(data).__name__}")
    records: list[dict[str, Any]] = []
    for rows in _record_lists(data):
        for i, row in enumerate(rows):
            if i == len(records):
                records.append({})
            records[i].update(_record(row))
    return records


def _record(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A record as JSON can hold it: keys as text, YAML dates and times as ISO text (as metrics show them),
    NaN and infinities as None (a missing point to Vega-Lite; JSON has no NaN)."""
    return {str(k): _value(v) for k, v in row.items()}


def _value(v: Any) -> Any:
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _record_lists(data: Mapping[str, Any]) -> Iterator[list[Mapping[str, Any]]]:
    """Every list of records inside `data` (depth first, file order) whose records share their keys (DVC's rule)."""
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            stack.extend(reversed([v for v in value.values() if isinstance(v, (Mapping, list))]))
        elif value and all(isinstance(r, Mapping) for r in value):
            keys = set(value[0])
            if all(set(r) == keys for r in value):
                yield value


def _table(text: str, *, delimiter: str, header: bool, source: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    names: list[str] | None = None
    records: list[dict[str, Any]] = []
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if names is None:
                names = [h.strip() for h in row] if header else [str(i) for i in range(len(row))]
                if header:
                    continue
            if len(row) != len(names):
                raise SpecError(f"{source}:{reader.line_num}: {len(row)} values for {len(names)} columns")
            if len(records) >= MAX_POINTS:
                raise SpecError(f"{source}: more than {MAX_POINTS} rows")
            records.append({name: _number(cell) for name, cell in zip(names, row, strict=True)})
    except csv.Error as exc:
        raise SpecError(f"{source}:{reader.line_num}: invalid {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}") from None
    return records


def _number(cell: str) -> Any:
    """A cell as an int or a finite float when it reads as one, None for NaN or an infinity (a missing
    point, as in JSON data), else the text."""
    text = cell.strip()
    if not _NUMBER.match(text):
        return None if text.lower().lstrip("+-") in _NONFINITE else cell
    if text.lstrip("+-").isdigit():
        return int(text)
    number = float(text)
    return number if abs(number) != float("inf") else None


def series_points(series: Sequence[Series], records: Mapping[str, Sequence[Mapping[str, Any]]], *,
                  rev: str, x_label: str | None = None, y_label: str | None = None) -> SeriesPoints:
    """The datapoints of `series` (their files' `records`) at revision `rev`, tagged with rev, filename and field.

    A series whose file has no records at this revision contributes nothing.

    Raises:
        SpecError: a series names a column its file does not have (the message lists the columns it has),
            or the plot would hold more than `MAX_POINTS` datapoints.
    """
    x_fields = {s.x or STEP for s in series}
    y_fields = {s.y for s in series}
    x = next(iter(x_fields)) if len(x_fields) == 1 else INFERRED_X
    y = next(iter(y_fields)) if len(y_fields) == 1 else INFERRED_Y
    files = {s.path for s in series}
    prefix = len(os.path.commonpath(list(files))) if len(files) > 1 else 0
    key = SERIES_KEYS.get((len(files) > 1, len(y_fields) > 1))
    points: list[Mapping[str, Any]] = []
    for s in series:
        rows = records.get(s.path) or ()
        if not rows:
            continue
        for column in (s.x, s.y):
            if column is not None and not any(column in r for r in rows):
                have = ", ".join(sorted({k for r in rows for k in r})[:20])
                raise SpecError(f"{s.path} at '{rev}': no column '{column}' (it has: {have})")
        if len(points) + len(rows) > MAX_POINTS:
            raise SpecError(f"{s.path} at '{rev}': the plot would hold more than {MAX_POINTS} points")
        tags = {REV: rev, FILENAME: s.path[prefix:].strip("/"), FIELD: s.y}
        if key == BOTH:
            tags[BOTH] = f"{tags[FILENAME]}::{s.y}"
        for step, row in enumerate(rows):
            point = dict(row)
            point[x] = step if s.x is None else row.get(s.x)
            point[y] = row.get(s.y)
            point.update(tags)
            points.append(point)
    names = tuple(sorted({str(p[key]) for p in points})) if key else ()
    return SeriesPoints(tuple(points), x, y, x_label or (x if x != INFERRED_X else "x"),
                        y_label or (y if y != INFERRED_Y else "y"), key, names)


def default_y(records: Sequence[Mapping[str, Any]]) -> str | None:
    """The column DVC plots when none is named: the first record's last key."""
    return next(reversed(list(records[0])), None) if records and records[0] else None
