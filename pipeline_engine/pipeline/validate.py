"""JSON Schema validation of pipeline.yaml with errors that name the file, line, stage and key."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import yaml

from pipeline_engine.core.schema import SCHEMA_DIR, load_schema, schema_errors
from pipeline_engine.errors import SpecError

__all__ = ["PIPELINE_SCHEMA", "SCHEMA_DIR", "locate", "schema", "suggest", "validate", "where"]

_TYPE_WORDS = {
    "array": "a list", "object": "a mapping", "string": "a string", "boolean": "true or false",
    "integer": "an integer", "number": "a number", "null": "empty",
}
#: The schema file's name (the shared loader and validators are in core.schema).
PIPELINE_SCHEMA = "pipeline.schema.json"


def schema(name: str) -> dict[str, Any]:
    """A schema from pipeline_engine/schemas/ by file name (see core.schema.load_schema)."""
    return load_schema(name)


def validate(raw: Any, *, text: str, source: str, at: str = "") -> None:
    """Check a parsed pipeline.yaml against schemas/pipeline.schema.json.

    `at` follows the line number in messages (` at 'HEAD~1'` for a file read at a revision).

    Raises:
        SpecError: the first problem, as `file:line: stage 'x': message`.
    """
    error = schema_errors(raw, PIPELINE_SCHEMA)
    if error is None:
        return
    path = list(error.absolute_path)
    message, path = _describe(error, path)
    raise SpecError(f"{where(source, text, path, at=at)}{message}")


def where(source: str, text: str, path: Sequence[str | int], *, at: str = "") -> str:
    """`file:line: stage 'name': ` for a location inside pipeline.yaml (`at` goes after the line)."""
    line = locate(text, path)
    prefix = f"{source}:{line}{at}: " if line else f"{source}{at}: "
    if len(path) >= 2 and path[0] == "stages":
        prefix += f"stage '{path[1]}': "
    return prefix


def _describe(error: Any, path: list[str | int]) -> tuple[str, list[str | int]]:
    key = _key_name(path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = min(str(k) for k in error.instance if k not in allowed)
        return f"unknown key '{unknown}'{suggest(unknown, allowed)}", [*path, unknown]
    if error.validator == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)
        return f"'{key}' must be {words}, not {error.instance!r}", path
    if error.validator == "propertyNames" or "propertyNames" in error.absolute_schema_path:
        return f"invalid stage name {error.instance!r} (use letters, digits, '_', '-', '.')", [*path, error.instance]
    if error.validator in ("minItems", "minLength", "minProperties"):
        return f"'{key}' must not be empty", path
    if error.validator == "pattern":
        return f"'{key}' has an invalid value {error.instance!r}", path
    return f"'{key}': {error.message}", path


def _key_name(path: Sequence[str | int]) -> str:
    names = [str(p) for p in path[2:] if isinstance(p, str)] if path[:1] == ["stages"] else [
        str(p) for p in path if isinstance(p, str)
    ]
    return ".".join(names) or (str(path[-1]) if path else "pipeline.yaml")


def suggest(word: str, choices: Sequence[str]) -> str:
    """` (did you mean 'x'?)` for the nearest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def locate(text: str, path: Sequence[str | int]) -> int | None:
    """The 1-based line of the deepest node of `path` found in the YAML text (None if unparseable)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
