"""Templating of pipeline.yaml values: `${a.b}`, `${list[0]}`, `\\${` escapes, foreach and matrix items."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline_engine.errors import SpecError

__all__ = ["Context", "Resolver", "expand_foreach", "expand_matrix"]

_TEMPLATE = re.compile(r"(\\)?\$\{\s*([^}]*?)\s*\}")
_PART = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Context:
    """Names available to `${...}`: each top-level name maps to a value and its params file (or None)."""

    data: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str | None] = field(default_factory=dict)

    def merged(self, extra: Mapping[str, Any], *, source: str | None = None) -> Context:
        """A context where `extra`'s names replace existing ones."""
        return Context({**self.data, **extra}, {**self.sources, **{k: source for k in extra}})


class Resolver:
    """Resolves templates against a context and remembers which params-file keys were used."""

    def __init__(self, context: Context, *, where: str) -> None:
        self.context = context
        self.where = where
        self.used: set[tuple[str, str]] = set()

    def resolve(self, value: Any) -> Any:
        """`value` with every string template replaced; mappings and lists are resolved deeply."""
        if isinstance(value, str):
            return self._resolve_str(value)
        if isinstance(value, Mapping):
            return {self._resolve_key(k): self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _resolve_key(self, key: Any) -> Any:
        return self._resolve_str(key) if isinstance(key, str) else key

    def _resolve_str(self, text: str) -> Any:
        if "${" not in text:
            return text
        whole = _TEMPLATE.fullmatch(text)
        if whole and not whole.group(1):
            # A value that is only a template keeps its type: `foreach: ${models}` is a list.
            return self.lookup(whole.group(2))
        return _TEMPLATE.sub(self._substitute, text)

    def _substitute(self, match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(0)[1:]
        value = self.lookup(match.group(2))
        if isinstance(value, (Mapping, list)):
            raise SpecError(
                f"{self.where}: '${{{match.group(2)}}}' is a {type(value).__name__}; "
                "only a whole value can be a mapping or a list"
            )
        return _to_text(value)

    def lookup(self, expr: str) -> Any:
        """The value of a dotted/indexed name such as `train.layers[0]`.

        Raises:
            SpecError: the name is malformed or not defined.
        """
        parts = _parse_expr(expr, where=self.where)
        head = parts[0]
        if not isinstance(head, str) or head not in self.context.data:
            raise SpecError(
                f"{self.where}: '${{{expr}}}' is not defined",
                hint="define it in params.yaml or under 'vars'",
            )
        value = self.context.data[head]
        for part in parts[1:]:
            value = _step(value, part, expr=expr, where=self.where)
        source = self.context.sources.get(head)
        if source is not None:
            self.used.add((source, ".".join(_leading_names(parts))))
        return value


def _leading_names(parts: list[str | int]) -> list[str]:
    names: list[str] = []
    for p in parts:
        if not isinstance(p, str):
            break
        names.append(p)
    return names


def _parse_expr(expr: str, *, where: str) -> list[str | int]:
    parts: list[str | int] = []
    pos = 0
    while pos < len(expr):
        m = _PART.match(expr, pos)
        if m is None or (pos == 0 and expr.startswith(".")):
            raise SpecError(f"{where}: cannot parse '${{{expr}}}'")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts:
        raise SpecError(f"{where}: empty '${{}}'")
    return parts


def _step(value: Any, part: str | int, *, expr: str, where: str) -> Any:
    if isinstance(part, int) and isinstance(value, list) and part < len(value):
        return value[part]
    if isinstance(part, str) and isinstance(value, Mapping) and part in value:
        return value[part]
    if isinstance(part, str) and isinstance(value, list) and part.isdigit() and int(part) < len(value):
        return value[int(part)]
    raise SpecError(f"{where}: '${{{expr}}}': no '{part}' in {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _item_name(value: Any, index: int, key: str | None = None) -> str:
    if isinstance(value, (str, int, float, bool)):
        return _to_text(value)
    return f"{key}{index}" if key else str(index)


def expand_foreach(items: Any, *, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(suffix, names) per item: a list gives `item`, a mapping gives `key` and `item`.

    Raises:
        SpecError: `items` is neither a list nor a mapping.
    """
    if isinstance(items, Mapping):
        for key, value in items.items():
            yield str(key), {"key": key, "item": value}
    elif isinstance(items, list):
        for index, value in enumerate(items):
            yield _item_name(value, index), {"item": value}
    else:
        raise SpecError(f"{where}: 'foreach' must be a list, a mapping or '${{name}}' of one")


def expand_matrix(matrix: Mapping[str, Any], *, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(suffix `a-b`, {"item": {name: value}}) for each combination, in the order written.

    Raises:
        SpecError: a matrix entry is not a list.
    """
    axes: list[list[tuple[str, Any]]] = []
    for name, values in matrix.items():
        if isinstance(values, Mapping):
            values = list(values.values())
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: matrix '{name}' must be a non-empty list")
        axes.append([(_item_name(v, i, str(name)), v) for i, v in enumerate(values)])
    names = [str(n) for n in matrix]
    for combo in itertools.product(*axes):
        suffix = "-".join(label for label, _ in combo)
        yield suffix, {"item": {n: v for n, (_, v) in zip(names, combo, strict=True)}}
