"""Params files (YAML, JSON, TOML): read them and pick the values of the keys a stage tracks."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline_engine.core.revision import RevisionFiles
from pipeline_engine.core.yamlio import (
    MAX_DEPTH,
    check_document_size,
    check_values,
    parse_json,
    parse_yaml,
    read_document,
)
from pipeline_engine.errors import SpecError

__all__ = [
    "PARAMS_FILE", "PARAMS_SUFFIXES", "lookup", "parse_document", "parse_params", "pick", "read_params",
    "read_params_file",
]

#: The params file every stage reads when it names keys without a file.
PARAMS_FILE = "params.yaml"
PARAMS_SUFFIXES = (".yaml", ".yml", ".json", ".toml")


def read_params(files: RevisionFiles, relpath: str) -> Mapping[str, Any]:
    """The params file at project-relative `relpath` in `files` (the workspace or a revision).

    Raises:
        SpecError: the file is missing, unreadable, not parseable, or not a mapping; the message
            names the file (and the revision, when not the workspace).
        UnsafePathError: the path gate refuses `relpath`.
    """
    source = files.describe(relpath)
    text = read_document(files, relpath)
    if text is None:
        raise SpecError(f"params file '{source}' does not exist", hint=f"create '{relpath}'")
    return parse_params(text, suffix=PurePosixPath(relpath).suffix, source=source)


def read_params_file(path: Path, *, source: str) -> Mapping[str, Any]:
    """Parse the params file at `path` by its suffix (see `parse_params`); `source` names it in errors.

    Raises:
        SpecError: the file is missing, unreadable, not parseable, or not a mapping.
    """
    try:
        check_document_size(path.stat().st_size, source=source)  # before reading it whole
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"params file '{source}' does not exist", hint=f"create '{source}'") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    return parse_params(text, suffix=path.suffix, source=source)


def parse_params(text: str, *, suffix: str, source: str) -> Mapping[str, Any]:
    """Params from text, by the file's `suffix` (`.json`, `.toml`, else YAML); empty text is {}.

    The text comes from git, so it is parsed within bounds (yamlio): no alias bombs, no deep
    nesting, unique keys, finite numbers that fit in 64 bits, string keys.

    Raises:
        SpecError: naming `source`: not parseable, or not a mapping.
    """
    data = parse_document(text, suffix=suffix, source=source)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: a params file must be a mapping of names to values")
    _check_keys(data, source=source)
    return data


def parse_document(text: str, *, suffix: str, source: str, allow_nonfinite: bool = False) -> Any:
    """Bounded JSON (`.json`), TOML (`.toml`) or YAML (anything else) -> plain values; None for empty JSON/YAML.

    `allow_nonfinite`: NaN and infinities are floats (metrics and plot data); params refuse them
    (a NaN never equals itself: a stage tracking one would rerun every time).

    Raises:
        SpecError: naming `source`: invalid text, larger than `MAX_DOCUMENT_BYTES`, or outside the
            bounds of `core.yamlio`.
    """
    check_document_size(text, source=source)
    suffix = suffix.lower()
    if suffix == ".json":
        return parse_json(text, source=source, allow_nonfinite=allow_nonfinite) if text.strip() else None
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{source}: invalid TOML: {exc}") from exc
        except RecursionError:
            raise SpecError(f"{source}: nested deeper than {MAX_DEPTH} levels") from None
        check_values(data, source=source, allow_nonfinite=allow_nonfinite)
        return data
    return parse_yaml(text, source=source, allow_nonfinite=allow_nonfinite)


def _check_keys(data: Mapping[str, Any], *, source: str) -> None:
    """Keys are names (`pipe params show`, dotted lookups): strings, as in JSON and TOML."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, prefix = stack.pop()
        if isinstance(value, list):
            stack.extend((v, f"{prefix}{i}.") for i, v in enumerate(value))
        elif isinstance(value, Mapping):
            for key, child in value.items():
                if not isinstance(key, str):
                    raise SpecError(f"{source}: key '{prefix}{key}' must be a string", hint="quote it")
                stack.append((child, f"{prefix}{key}."))


def lookup(data: Any, key: str) -> Any:
    """The value at dotted `key` (`train.lr`, `layers.0`); KeyError when a part is absent."""
    value = data
    for part in key.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(key)
    return value


def pick(data: Mapping[str, Any], keys: Iterable[str] | None, *, source: str, stage: str) -> dict[str, Any]:
    """The tracked values: `keys` from `data`, or every top-level key when `keys` is None.

    Raises:
        SpecError: a key is not in the file.
    """
    if keys is None:
        return {str(k): v for k, v in data.items()}
    picked: dict[str, Any] = {}
    for key in keys:
        try:
            picked[key] = lookup(data, key)
        except KeyError:
            raise SpecError(
                f"stage '{stage}': param '{key}' is not in '{source}'",
                hint=f"add '{key}' to '{source}' or remove it from the stage's params",
            ) from None
    return picked
