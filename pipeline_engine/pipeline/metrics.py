"""Metrics files (JSON, YAML, TOML, CSV/TSV) -> one flat mapping of `a.b.c` keys to values.

Metrics files come from git (or the cache) like every other file, so they are parsed within the
bounds of `core.yamlio` (no alias bombs, no deep nesting, unique keys, 64-bit numbers); NaN and
infinities are read, as DVC reads them (a diverged run logs NaN).
Nested keys are joined with `.` and list items by index (`layers.0.units`), as DVC shows them.
A CSV or TSV file gives its last row under the header's column names (DVC's rule for tabular
metrics: the file is a log, the last line the latest value); its numbers become numbers.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Mapping
from typing import Any

from pipeline_engine.core.yamlio import MAX_DEPTH, check_document_size
from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.params import parse_document

__all__ = ["MAX_METRICS", "METRICS_SUFFIXES", "parse_metrics"]

METRICS_SUFFIXES = (".json", ".yaml", ".yml", ".toml", ".csv", ".tsv")
#: How many values one metrics file may hold (a bound for hostile input, far above real files).
MAX_METRICS = 100_000
_INT = re.compile(r"^[-+]?\d{1,19}$")
_FLOAT = re.compile(r"^[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?$")


def parse_metrics(text: str, *, suffix: str, source: str) -> dict[str, Any]:
    """The flat metrics of one file's text, parsed by its `suffix`; empty text gives {}.

    Values are numbers, strings, booleans or None (dates become ISO strings), in the file's order.

    Raises:
        SpecError: naming `source` (and the key or line): invalid text, a top level that is not a
            mapping, list or table, two keys that flatten to the same name, or more than `MAX_METRICS` values.
    """
    suffix = suffix.lower()
    if suffix in (".csv", ".tsv"):
        check_document_size(text, source=source)
        return _last_row(text, delimiter="\t" if suffix == ".tsv" else ",", source=source)
    data = parse_document(text, suffix=suffix, source=source, allow_nonfinite=True)
    if data is None:
        return {}
    if not isinstance(data, (Mapping, list)):
        raise SpecError(f"{source}: metrics must be a mapping (or a list), not {type(data).__name__}")
    return _flatten(data, source=source)


def _flatten(data: Mapping[str, Any] | list[Any], *, source: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    # Depth-first in file order, without recursion (the parsers bound depth, this keeps it cheap).
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        prefix, value, depth = stack.pop()
        if isinstance(value, (Mapping, list)):
            if depth > MAX_DEPTH:
                raise SpecError(f"{source}: nested deeper than {MAX_DEPTH} levels")
            items = list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))
            stack.extend((f"{prefix}{k}.", v, depth + 1) for k, v in reversed(items))
            continue
        key = prefix[:-1]
        if key in flat:
            raise SpecError(f"{source}: key '{key}' appears twice once nested keys are joined with '.'")
        if len(flat) >= MAX_METRICS:
            raise SpecError(f"{source}: more than {MAX_METRICS} values")
        flat[key] = value.isoformat() if isinstance(value, (datetime.date, datetime.time)) else value
    return flat


def _last_row(text: str, *, delimiter: str, source: str) -> dict[str, Any]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    last: list[str] | None = None
    last_line = 0
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if header is None:
                header = row
            else:
                last, last_line = row, reader.line_num
    except csv.Error as exc:
        raise SpecError(f"{source}:{reader.line_num}: invalid {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}") from None
    if header is None or last is None:
        return {}
    names = [h.strip() for h in header]
    if len(names) > MAX_METRICS:
        raise SpecError(f"{source}: more than {MAX_METRICS} columns")
    duplicate = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if duplicate is not None or "" in names:
        raise SpecError(f"{source}:1: column names must be unique and not empty ('{duplicate or ''}')")
    if len(last) != len(names):
        raise SpecError(f"{source}:{last_line}: the last row has {len(last)} values for {len(names)} columns")
    return {name: _number(cell) for name, cell in zip(names, last, strict=True)}


def _number(cell: str) -> Any:
    """A CSV cell as an int or a finite float when it reads as one, else the text as it is."""
    text = cell.strip()
    if _INT.match(text):
        value = int(text)
        return value if -(2**63) <= value < 2**64 else cell
    if _FLOAT.match(text):
        number = float(text)
        return number if number not in (float("inf"), float("-inf")) else cell
    return cell
