"""Metrics and params results -> pandas DataFrames of display strings, laid out as DVC's tables.

The only ops module that imports pandas (STYLE §7), and only the table, Markdown and CSV outputs
come here: `--json` is built from the plain values, so it never pays pandas' import.

    metrics show:   [Revision,] Path, <metric keys, sorted>        one row per (revision, file)
    metrics diff:   Path, Metric, <a_rev>, <b_rev>, Change, Change %
    params diff:    Path, Param, <a_rev>, <b_rev>
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas

from pipeline_engine.ops.metrics import ChangeState, RevisionMetrics, ValueChange

__all__ = ["DEFAULT_PRECISION", "diff_frame", "format_value", "metrics_frame"]

#: Digits after the decimal point that floats are rounded to (DVC's default).
DEFAULT_PRECISION = 5
_NONE = "-"


def format_value(value: Any, precision: int = DEFAULT_PRECISION) -> str:
    """A metric or param for a table: floats rounded to `precision` digits, None as `-` (DVC's rules)."""
    if value is None:
        return _NONE
    if isinstance(value, float):
        return str(round(value, precision))
    if isinstance(value, Mapping):
        return str({k: _rounded(v, precision) for k, v in value.items()})
    if isinstance(value, list):
        return str([_rounded(v, precision) for v in value])
    return str(value)


def _rounded(value: Any, precision: int) -> Any:
    return round(value, precision) if isinstance(value, float) else value


def metrics_frame(revisions: Sequence[RevisionMetrics], *, precision: int = DEFAULT_PRECISION,
                  with_revision: bool = False) -> pandas.DataFrame:
    """One row per (revision, file) that loaded, columns `[Revision,] Path` then every metric key, sorted; `-` where absent."""
    rows: list[dict[str, str]] = []
    keys: dict[str, None] = {}
    for rev in revisions:
        for f in rev.files:
            if f.error is not None:
                continue
            keys.update(dict.fromkeys(f.flat))
            rows.append({"Revision": rev.rev, "Path": f.path,
                         **{k: format_value(v, precision) for k, v in f.flat.items()}})
    columns = [*(["Revision"] if with_revision else []), "Path", *sorted(keys)]
    return pandas.DataFrame([[row.get(c, _NONE) for c in columns] for row in rows], columns=columns, dtype=object)


def diff_frame(changes: Sequence[ValueChange], a_rev: str, b_rev: str, *, title: str = "Metric",
               precision: int = DEFAULT_PRECISION, with_change: bool = True) -> pandas.DataFrame:
    """One row per changed value: Path, `title`, the old and new values, and (`with_change`) the absolute and relative change.

    A value on one side only shows `-` on the other, and `added` or `deleted` as its change.
    """
    new_label = b_rev if b_rev != a_rev else f"{b_rev} (new)"
    columns = ["Path", title, a_rev, new_label, *(["Change", "Change %"] if with_change else [])]
    rows = []
    for c in changes:
        row = [c.path, c.key, format_value(c.old, precision) if c.state is not ChangeState.ADDED else _NONE,
               format_value(c.new, precision) if c.state is not ChangeState.DELETED else _NONE]
        if with_change:
            row += _change(c, precision)
        rows.append(row)
    return pandas.DataFrame(rows, columns=columns, dtype=object)


def _change(c: ValueChange, precision: int) -> list[str]:
    if c.state in (ChangeState.ADDED, ChangeState.DELETED):
        return [c.state.value, _NONE]
    delta, pct = c.diff, c.pct
    return [_NONE if delta is None else format_value(delta, precision),
            _NONE if pct is None else f"{pct:+.{min(precision, 2)}f}%"]
