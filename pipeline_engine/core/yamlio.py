"""Deterministic YAML in and out: C loader when available, sorted keys, no aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline_engine.errors import SpecError

__all__ = ["dump_yaml", "load_yaml", "parse_yaml"]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _NoAliasDumper(_Dumper):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def parse_yaml(text: str, *, source: str) -> Any:
    """Parse YAML text; a syntax error names `source` with line and column.

    Raises:
        SpecError: the text is not valid YAML.
    """
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{source}{where}: invalid YAML: {problem}") from exc


def load_yaml(path: Path, *, source: str | None = None) -> Any:
    """Read and parse a YAML file; `source` is the name used in error messages.

    Raises:
        SpecError: the file cannot be read or is not valid YAML.
    """
    name = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{name}: cannot read: {exc}") from exc
    return parse_yaml(text, source=name)


def dump_yaml(data: Any, *, sort_keys: bool = True) -> str:
    """Serialise `data` as block-style YAML with stable ordering."""
    return yaml.dump(
        data, Dumper=_NoAliasDumper, sort_keys=sort_keys, default_flow_style=False, allow_unicode=True
    )
