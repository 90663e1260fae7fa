"""Params overrides (`-S [FILE:]KEY=VALUE`): parse them, expand sweeps, and rewrite params file text.

A value is read as one YAML 1.2 value (`0.1` a number, `no` a string, `[1, 2]` a list). As in
Hydra (DVC's syntax), `KEY=VALUE` changes a key the file has, `+KEY=VALUE` adds one it lacks,
`++KEY=VALUE` sets a key either way, and `~KEY` deletes one. A sweep
gives several values, in Hydra's syntax as DVC takes it: `a,b,c`, `range(start, stop[, step])`
(stop excluded) and `choice(a, b, ...)`; several sweeps form their cartesian product, the first
`-S` varying slowest. Overrides are recorded as `schemas/params-overrides.schema.json` describes.

Rewriting keeps the file's layout where that is cheap: YAML through ruamel.yaml's round-trip
loader (comments, order, quoting), JSON with its indentation, TOML rewritten plainly (no comments).
"""

from __future__ import annotations

import enum
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.core.schema import check_schema
from pipeline_engine.core.yamlio import parse_yaml
from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.params import PARAMS_FILE, lookup, parse_document

__all__ = ["OVERRIDES_SCHEMA", "Op", "Override", "Sweep", "apply_overrides", "combinations", "from_records",
           "parse_sweep", "to_records"]

OVERRIDES_SCHEMA = "params-overrides.schema.json"
_CALL = re.compile(r"^\s*(range|choice)\s*\((.*)\)\s*$", re.DOTALL)
_MAX_COMBINATIONS = 10_000


class Op(enum.Enum):
    """What an override does to its key; the value is Hydra's prefix."""

    SET = ""  # change a key the file has
    ADD = "+"  # add a key the file lacks
    FORCE = "++"  # set it, whether or not the file has it
    DELETE = "~"  # delete a key the file has


@dataclass(frozen=True, slots=True)
class Override:
    """Set `key` (dotted) of params file `file` (project-relative) to `value` (or add or delete it: `op`)."""

    file: str
    key: str
    value: Any
    op: Op = Op.SET

    @property
    def text(self) -> str:
        """As the user writes it, without the file: `+train.seed=1`, `~train.dropout`."""
        return f"{self.op.value}{self.key}" if self.op is Op.DELETE else f"{self.op.value}{self.key}={self.value}"


@dataclass(frozen=True, slots=True)
class Sweep:
    """One `-S` option: `key` of `file` takes each of `values` in turn (one value: a plain override)."""

    file: str
    key: str
    values: tuple[Any, ...]
    op: Op = Op.SET


def parse_sweep(text: str) -> Sweep:
    """`[FILE:][+|++|~]KEY=VALUE` (`~KEY` alone) -> a Sweep; VALUE may be `a,b`, `range(...)` or `choice(...)`.

    Raises:
        SpecError: no `=` (or one after `~KEY`), an empty key, a file the path gate refuses, a value
            that is not YAML, an empty value in a sweep (`1,`), or a range with a zero step or no values.
    """
    left, eq, raw = text.partition("=")
    file, colon, key = left.strip().rpartition(":")
    op = next(o for o in (Op.FORCE, Op.ADD, Op.DELETE, Op.SET) if key.startswith(o.value))
    key = key[len(op.value):]
    if (not eq) != (op is Op.DELETE) or not key:
        hint = "delete a key with -S ~KEY, with no value" if op is Op.DELETE else "e.g. -S train.lr=0.1"
        raise SpecError(f"-S '{text}': expected [FILE:]KEY=VALUE or [FILE:]~KEY", hint=hint)
    file = check_relpath(file, source=f"-S '{text}'") if colon else PARAMS_FILE
    if any(not part for part in key.split(".")):
        raise SpecError(f"-S '{text}': '{key}' is not a dotted key", hint="e.g. -S train.lr=0.1")
    values = (None,) if op is Op.DELETE else tuple(_values(raw, source=f"-S '{text}'"))
    return Sweep(file, key, values, op)


def _values(raw: str, *, source: str) -> list[Any]:
    call = _CALL.match(raw)
    if call is None:
        parts = _split(raw)
        if len(parts) > 1 and not all(parts):  # `1,` or `1,,2`: a stray comma, not a sweep over ''
            raise SpecError(f"{source}: a sweep value is empty", hint="quote an empty string: a,''")
        return [_scalar(p, source=source) for p in parts] if len(parts) > 1 else [_scalar(raw, source=source)]
    inner = _split(call.group(2)) if call.group(2).strip() else []
    if not all(inner):
        raise SpecError(f"{source}: a {call.group(1)}() value is empty", hint="quote an empty string: ''")
    args = [_scalar(p, source=source) for p in inner]
    if call.group(1) == "choice":
        if not args:
            raise SpecError(f"{source}: choice() needs at least one value")
        return args
    return _range(args, source=source)


def _range(args: Sequence[Any], *, source: str) -> list[Any]:
    numeric = all(isinstance(a, int | float) and not isinstance(a, bool) for a in args)
    if not numeric or not 1 <= len(args) <= 3:
        raise SpecError(f"{source}: range() takes 1 to 3 numbers: range([start,] stop[, step])")
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) > 2 else 1)
    if step == 0:
        raise SpecError(f"{source}: range() step must not be zero")
    # rounded first: (0.4 - 0.1) / 0.1 is 3.0000000000000004, and 0.4 is not in range(0.1, 0.4, 0.1)
    count = max(0, math.ceil(round((stop - start) / step, 9)))
    if count == 0 or count > _MAX_COMBINATIONS:
        raise SpecError(f"{source}: range() gives {count} values", hint="give a start below stop, or a step")
    if all(isinstance(a, int) for a in (start, stop, step)):
        return [start + i * step for i in range(count)]
    return [round(start + i * step, 12) for i in range(count)]


def _split(text: str) -> list[str]:
    """Split at commas outside brackets and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _scalar(text: str, *, source: str) -> Any:
    return parse_yaml(text, source=source) if text.strip() else ""


def combinations(sweeps: Sequence[Sweep]) -> list[tuple[Override, ...]]:
    """The cartesian product of the sweeps' values, one tuple of overrides per experiment.

    Raises:
        SpecError: two sweeps set the same key of the same file, or more than 10,000 combinations.
    """
    seen: set[tuple[str, str]] = set()
    for s in sweeps:
        if (s.file, s.key) in seen:
            raise SpecError(f"-S '{s.file}:{s.key}' is given twice", hint="give each key once, with all its values")
        seen.add((s.file, s.key))
    if math.prod(len(s.values) for s in sweeps) > _MAX_COMBINATIONS:
        raise SpecError(f"the sweep has more than {_MAX_COMBINATIONS} combinations")
    choices = [[Override(s.file, s.key, v, s.op) for v in s.values] for s in sweeps]
    return [tuple(c) for c in itertools.product(*choices)]


def to_records(overrides: Sequence[Override]) -> list[dict[str, Any]]:
    """Overrides as the schema's list of `{file, key, value}` (and `op` when it is not a plain change)."""
    return [{"file": o.file, "key": o.key, "value": o.value, **({"op": o.op.value} if o.op is not Op.SET else {})}
            for o in overrides]


def from_records(raw: Any, *, source: str) -> tuple[Override, ...]:
    """Recorded overrides back, checked against the schema and the path gate.

    Raises:
        SpecError: naming `source` and the key path.
    """
    check_schema(raw, name=OVERRIDES_SCHEMA, source=source)
    return tuple(Override(check_relpath(r["file"], source=source), r["key"], r["value"], Op(r.get("op", "")))
                 for r in raw)


def apply_overrides(text: str, overrides: Sequence[Override], *, relpath: str) -> str:
    """The text of params file `relpath` with each override's key set to its value (or added, or deleted).

    Raises:
        SpecError: the text does not parse, a key to change or delete is not in the file, a key to add
            is, or its parent is not a mapping (the message names the key and the file).
    """
    suffix = PurePosixPath(relpath).suffix.lower()
    data = parse_document(text, suffix=suffix, source=relpath) or {}
    for o in overrides:
        _check(data, o, relpath=relpath)
    if suffix == ".json":
        for o in overrides:
            _set(data, o)
        indent = _json_indent(text)
        return json.dumps(data, indent=indent) + ("\n" if indent is not None else "")
    if suffix == ".toml":
        for o in overrides:
            _set(data, o)
        return _dump_toml(data, relpath=relpath)
    return _yaml_round_trip(text, overrides)


def _check(data: Any, o: Override, *, relpath: str) -> None:
    try:
        lookup(data, o.key)
    except KeyError:
        if o.op in (Op.SET, Op.DELETE):
            raise SpecError(
                f"-S: param '{o.key}' is not in '{relpath}'",
                hint=f"add it with -S +{o.key}=VALUE, or name another file: -S FILE:{o.key}=VALUE",
            ) from None
    else:
        if o.op is Op.ADD:
            raise SpecError(f"-S: param '{o.key}' is already in '{relpath}'",
                            hint=f"change it with -S {o.key}=VALUE (or ++{o.key}=VALUE)")
        return
    node = data  # a key to add: every parent that exists must be a mapping, as Hydra requires
    for part in o.key.split(".")[:-1]:
        if not isinstance(node, Mapping):
            break
        if part not in node:
            return
        node = node[part]
    if not isinstance(node, Mapping):
        raise SpecError(f"-S: cannot add '{o.key}' to '{relpath}': its parent is not a mapping")


def _set(data: Any, o: Override) -> None:
    *parents, last = o.key.split(".")
    node = data
    for part in parents:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})  # added only for +/++ keys: _check found the others
    index: Any = int(last) if isinstance(node, list) else last
    if o.op is Op.DELETE:
        del node[index]
    else:
        node[index] = o.value


def _json_indent(text: str) -> int | None:
    match = re.search(r"\n( +)\S", text)
    return len(match.group(1)) if match else None


def _yaml_round_trip(text: str, overrides: Sequence[Override]) -> str:
    import io

    from ruamel.yaml import YAML

    yml = YAML(typ="rt")
    yml.preserve_quotes = True
    yml.width = 4096
    doc = yml.load(text)
    for o in overrides:
        _set(doc, o)
    out = io.StringIO()
    yml.dump(doc, out)
    return out.getvalue()


def _dump_toml(data: Mapping[str, Any], *, relpath: str) -> str:
    lines: list[str] = []
    _toml_table(data, (), lines, relpath=relpath)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_table(table: Mapping[str, Any], path: tuple[str, ...], lines: list[str], *, relpath: str) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    if path and (scalars or not table):
        lines.extend(["", "[" + ".".join(_toml_key(p) for p in path) + "]"])
    lines.extend(f"{_toml_key(k)} = {_toml_value(v, relpath=relpath)}" for k, v in scalars)
    for k, v in table.items():
        if isinstance(v, Mapping):
            _toml_table(v, (*path, k), lines, relpath=relpath)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any, *, relpath: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v, relpath=relpath) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v, relpath=relpath)}" for k, v in value.items()) + "}"
    raise SpecError(f"{relpath}: cannot write a {type(value).__name__} value in TOML", hint="use a YAML params file")
