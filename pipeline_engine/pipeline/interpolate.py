"""Templating of pipeline.yaml values by DVC's rules: `${a.b[0]}`, `\\${` escapes, vars merging, foreach/matrix.

A `Context` holds the names `${...}` can use and where each part came from: params.yaml and
`vars` sources merge deeply, and defining the same key twice is an error naming both sources
(DVC: "cannot redefine"). Keys read from a params file are remembered so the stage tracks them.
"""

from __future__ import annotations

import enum
import itertools
import math
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline_engine.errors import SpecError

__all__ = [
    "MAX_GENERATED", "BoolStyle", "Context", "ListStyle", "Origin", "Resolver", "expand_foreach", "expand_matrix",
    "parse_expr", "to_flags",
]

_TEMPLATE = re.compile(r"(\\)?\$\{(?P<inner>[^}]*)\}")
# DVC's grammar: a word, then `.word` or `[word]` parts; a word is anything but `.`, `[` and `]`.
_EXPR = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[[^.\[\]]+\])*")
_RESERVED = ("item", "key")

KeyPath = tuple[str, ...]


class BoolStyle(enum.Enum):
    """How `${dict}` in `cmd` writes a false flag (DVC's `parsing.bool`)."""

    STORE_TRUE = "store_true"  # `--flag` when true, nothing when false
    BOOLEAN_OPTIONAL = "boolean_optional"  # `--flag` / `--no-flag`


class ListStyle(enum.Enum):
    """How `${dict}` in `cmd` writes a list (DVC's `parsing.list`)."""

    NARGS = "nargs"  # `--k 1 2`
    APPEND = "append"  # `--k 1 --k 2`


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a part of the context was defined: `label` for messages, `source`/`key` for params tracking."""

    label: str
    source: str | None = None  # the params file, or None for inline `vars` and foreach items
    key: KeyPath = ()  # the key path of this part inside `source`


@dataclass(frozen=True, slots=True)
class Context:
    """Names available to `${...}`, the origin of each merged part, and the reserved names (`item`, `key`)."""

    data: Mapping[str, Any] = field(default_factory=dict)
    origins: Mapping[KeyPath, Origin] = field(default_factory=dict)
    reserved: frozenset[str] = frozenset()
    #: params files merged so far: the keys taken from each, or None for the whole file
    imports: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)

    def merged(self, extra: Mapping[str, Any], *, label: str, source: str | None = None) -> Context:
        """A context with `extra` merged in deeply; `source` is the params file it was read from.

        Raises:
            SpecError: `extra` redefines a key already defined (or a reserved name).
        """
        taken = sorted(k for k in extra if k in self.reserved)
        if taken:
            raise SpecError(f"attempted to modify reserved key '{taken[0]}' in '{label}'")
        data = dict(self.data)
        origins = dict(self.origins)
        _merge(data, extra, (), origins, label, source)
        return Context(data, origins, self.reserved, self.imports)

    def imported(self, source: str, keys: tuple[str, ...] | None) -> Context:
        """This context, noting that `keys` (None: all) of params file `source` were merged."""
        before = self.imports.get(source, ())
        both = None if keys is None or before is None else (*before, *keys)
        return Context(self.data, self.origins, self.reserved, {**self.imports, source: both})

    def with_names(self, names: Mapping[str, Any], origins: Mapping[KeyPath, Origin]) -> Context:
        """`names` (`item`, `key`) set over any existing ones and reserved against `vars`."""
        kept = {p: o for p, o in self.origins.items() if p[0] not in names}
        return Context({**self.data, **names}, {**kept, **origins}, self.reserved | set(names), self.imports)

    def origin_of(self, path: KeyPath) -> tuple[Origin, KeyPath] | None:
        """The origin of the part holding `path` and the rest of `path` below that part."""
        for cut in range(len(path), 0, -1):
            origin = self.origins.get(path[:cut])
            if origin is not None:
                return origin, path[cut:]
        return None


def _merge(into: dict[str, Any], new: Mapping[str, Any], at: KeyPath, origins: dict[KeyPath, Origin],
           label: str, source: str | None) -> None:
    for raw_key, value in new.items():
        key = str(raw_key)
        path = (*at, key)
        current = into.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            into[key] = dict(current)
            _merge(into[key], value, path, origins, label, source)
        elif key in into:
            found = next((origins[path[:n]] for n in range(len(path), 0, -1) if path[:n] in origins), None)
            before = found.label if found else "?"
            raise SpecError(f"cannot redefine '{'.'.join(path)}' from '{label}' as it already exists in '{before}'")
        else:
            into[key] = value
            origins[path] = Origin(label, source, path)


def parse_expr(expr: str, *, where: str) -> KeyPath:
    """`a.b[0].c` as its parts `('a', 'b', '0', 'c')` (DVC's grammar; parts are stripped).

    Raises:
        SpecError: the expression is empty or malformed (`a..b`, `a[0]b`).
    """
    if not _EXPR.fullmatch(expr):
        raise SpecError(f"{where}: cannot parse '${{{expr}}}'",
                        hint="write names as 'a.b', 'a[0]' or 'a.b[0].c'")
    parts = tuple(p.strip() for p in expr.replace("[", ".").replace("]", "").split("."))
    if not all(parts):
        raise SpecError(f"{where}: cannot parse '${{{expr}}}'")
    return parts


class Resolver:
    """Resolves templates against a context and remembers which params-file keys were used."""

    def __init__(self, context: Context, *, where: str, bool_style: BoolStyle = BoolStyle.STORE_TRUE,
                 list_style: ListStyle = ListStyle.NARGS) -> None:
        self.context = context
        self.where = where
        self.bool_style = bool_style
        self.list_style = list_style
        self.used: set[tuple[str, str]] = set()

    def resolve(self, value: Any, *, key: str | None = None) -> Any:
        """`value` with every string template replaced; mappings and lists are resolved deeply.

        `key` is the stage field being resolved: only in `cmd` may a mapping be interpolated
        into text (as `--key value` flags).
        """
        if isinstance(value, str):
            return self._resolve_str(value, key)
        if isinstance(value, Mapping):
            return {self._resolve_str(k, key) if isinstance(k, str) else k: self.resolve(v, key=key)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, key=key) for v in value]
        return value

    def _resolve_str(self, text: str, key: str | None) -> Any:
        if "${" not in text:
            return text
        whole = _TEMPLATE.fullmatch(text)
        if whole and not whole.group(1):
            # A value that is only a template keeps its type: `foreach: ${models}` is a list.
            value = self.lookup(whole.group("inner"))
            return self._to_text(value, whole.group("inner")) if key == "cmd" else value
        return _TEMPLATE.sub(lambda m: self._substitute(m, key), text)

    def _substitute(self, match: re.Match[str], key: str | None) -> str:
        if match.group(1):
            return match.group(0)[1:]
        expr = match.group("inner")
        value = self.lookup(expr)
        if isinstance(value, list) or (isinstance(value, Mapping) and key != "cmd"):
            kind = "a mapping" if isinstance(value, Mapping) else "a list"
            raise SpecError(
                f"{self.where}: cannot interpolate '${{{expr}}}' ({kind}) into text; only a whole value can be "
                f"{kind}" + (" and 'cmd' turns a mapping into --flags" if kind == "a mapping" else ""))
        return self._to_text(value, expr)

    def _to_text(self, value: Any, expr: str) -> str:
        if isinstance(value, Mapping):
            return to_flags(value, bool_style=self.bool_style, list_style=self.list_style,
                            where=f"{self.where}: '${{{expr}}}'")
        if isinstance(value, list):
            raise SpecError(f"{self.where}: 'cmd' cannot be the list '${{{expr}}}'",
                            hint="use a mapping (it becomes --flags) or '${name[0]}'")
        return to_text(value)

    def lookup(self, expr: str) -> Any:
        """The value of a dotted/indexed name such as `train.layers[0]` (negative indexes count from the end).

        Raises:
            SpecError: the name is malformed or not defined.
        """
        path = parse_expr(expr, where=self.where)
        value: Any = self.context.data
        canonical: list[str] = []  # `a.b.1` for `a.b[-1]`: the key the params file is tracked by
        for i, part in enumerate(path):
            if isinstance(value, list) and _is_index(part, len(value)):
                part = str(int(part) % len(value))
            canonical.append(part)
            value = _step(value, part)
            if value is _MISSING:
                if i == 0:
                    raise SpecError(f"{self.where}: '${{{expr.strip()}}}' is not defined",
                                    hint="define it in params.yaml or under 'vars'")
                raise SpecError(f"{self.where}: '${{{expr.strip()}}}': could not find '{'.'.join(path[: i + 1])}'")
        self._track(tuple(canonical), value)
        return value

    def _track(self, path: KeyPath, value: Any) -> None:
        found = self.context.origin_of(path)
        if found is not None and found[0].source is not None:
            origin, rest = found
            self.used.add((origin.source, ".".join((*origin.key, *rest))))  # type: ignore[arg-type]
        if isinstance(value, Mapping | list):  # parts merged in below from other sources
            for sub, origin in self.context.origins.items():
                if len(sub) > len(path) and sub[: len(path)] == path and origin.source is not None:
                    self.used.add((origin.source, ".".join(origin.key)))


_MISSING = object()


def _is_index(part: str, length: int) -> bool:
    try:
        return -length <= int(part) < length
    except ValueError:
        return False


def _step(value: Any, part: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(part, _MISSING)
    if isinstance(value, list):
        try:
            return value[int(part)]
        except (ValueError, IndexError):
            return _MISSING
    return _MISSING


def to_text(value: Any) -> str:
    """A scalar as DVC writes it in text: booleans as `true`/`false`, anything else by `str` (null is `None`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def to_flags(data: Mapping[str, Any], *, bool_style: BoolStyle, list_style: ListStyle, where: str) -> str:
    """A mapping as command-line flags, as DVC writes `${dict}` in `cmd`.

    Nested keys join with dots (`--a.b 1`), strings are shell-quoted, true is `--k`, false is
    nothing (or `--no-k`), lists are `--k 1 2` (or `--k 1 --k 2`).

    Raises:
        SpecError: a list holds a list or a mapping.
    """
    words: list[str] = []
    for key, value in _flatten(data):
        if isinstance(value, bool):
            if value:
                words.append(f"--{key}")
            elif bool_style is BoolStyle.BOOLEAN_OPTIONAL:
                words.append(f"--no-{key}")
        elif isinstance(value, list):
            for n, item in enumerate(value):
                if isinstance(item, list | Mapping):
                    raise SpecError(f"{where}: cannot interpolate nested list in '{key}'")
                text = shlex.quote(item) if isinstance(item, str) else to_text(item)
                words.append(text if n and list_style is ListStyle.NARGS else f"--{key} {text}")
        else:
            words.append(f"--{key} {shlex.quote(value) if isinstance(value, str) else to_text(value)}")
    return " ".join(words)


def item_name(value: Any, index: int, key: str | None = None) -> str:
    """The suffix a foreach/matrix value gives its stage name (its text, or `key<index>` for a collection)."""
    if isinstance(value, Mapping | list):
        return f"{key}{index}" if key else str(index)
    return to_text(value)


# Stages one foreach or matrix may generate. pipeline.yaml comes through git, and every command that
# reads it expands every stage: a 100x100x100 matrix (a few lines) made `pipe status` run for
# minutes in a gigabyte. DVC has no bound; pipelines generating more than this are not seen in practice.
MAX_GENERATED = 50_000


def _check_count(count: int, *, where: str, what: str) -> None:
    if count > MAX_GENERATED:
        raise SpecError(f"{where}: {what} generates {count:,} stages, more than {MAX_GENERATED:,}",
                        hint="split it into several stages, or loop inside one stage's command")


def expand_foreach(items: Any, *, where: str) -> Iterator[tuple[str, dict[str, Any], KeyPath]]:
    """(suffix, names, item's key below `foreach`) per item: a list gives `item`, a mapping `key` and `item`.

    Raises:
        SpecError: `items` is neither a list nor a mapping, or has more than `MAX_GENERATED` items.
    """
    if isinstance(items, Mapping | list):
        _check_count(len(items), where=where, what="'foreach'")
    if isinstance(items, Mapping):
        for key, value in items.items():
            yield str(key), {"key": key, "item": value}, (str(key),)
    elif isinstance(items, list):
        composite = any(isinstance(v, Mapping | list) for v in items)
        for index, value in enumerate(items):
            suffix = str(index) if composite else item_name(value, index)
            yield suffix, {"item": value}, (str(index),)
    else:
        raise SpecError(f"{where}: 'foreach' must be a list, a mapping or '${{name}}' of one")


def expand_matrix(matrix: Mapping[str, Any], *, where: str) -> Iterator[tuple[str, dict[str, Any], list[int]]]:
    """(suffix `a-b`, {"key": suffix, "item": {name: value}}, index per axis) for each combination.

    Raises:
        SpecError: a matrix entry is not a non-empty list, or the combinations are more than `MAX_GENERATED`.
    """
    axes: list[list[tuple[str, Any]]] = []
    for name, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: matrix '{name}' must be a non-empty list")
    _check_count(math.prod(len(v) for v in matrix.values()), where=where, what="'matrix'")
    for name, values in matrix.items():
        axes.append([(item_name(v, i, str(name)), v) for i, v in enumerate(values)])
    names = [str(n) for n in matrix]
    for combo in itertools.product(*(list(enumerate(axis)) for axis in axes)):
        suffix = "-".join(label for _, (label, _) in combo)
        item = {n: v for n, (_, (_, v)) in zip(names, combo, strict=True)}
        yield suffix, {"key": suffix, "item": item}, [i for i, _ in combo]
