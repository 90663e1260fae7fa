"""Small edits of pipeline.yaml text that keep the user's comments and layout: add or remove a stage, set a flag.

Each edit changes only the lines it must and is checked by parsing the result. When the
parsed result is not exactly the intended data (flow style, an unusual layout), the edit is
made by ruamel.yaml's round-trip loader instead, which keeps comments, flow style and the
file's indentation; it is imported only here, only then. Only if that result does not parse to
the intended data either is the file dumped anew (correct, but comments are lost).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import yaml

from pipeline_engine.core.yamlio import dump_yaml, parse_yaml
from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.spec import PIPELINE_FILE

__all__ = ["add_stage", "remove_stage", "set_stage_flag"]


def _stage_nodes(text: str) -> tuple[yaml.MappingNode | None, yaml.Node | None]:
    root = yaml.compose(text, Loader=yaml.SafeLoader) if text.strip() else None
    if not isinstance(root, yaml.MappingNode):
        return None, None
    for key, value in root.value:
        if key.value == "stages":
            return root, value
    return root, None


def _mapping_indent(text: str) -> int:
    """The indentation of block mappings in `text`: that of the first stage under `stages:`, or 2."""
    try:
        _, stages = _stage_nodes(text)
    except yaml.YAMLError:
        return 2
    if isinstance(stages, yaml.MappingNode) and not stages.flow_style and stages.value:
        return max(2, int(stages.value[0][0].start_mark.column))
    return 2


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _after_line(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _checked(text: str, new_text: str, change: Callable[[dict[str, Any]], None]) -> str:
    # The bounded loader reads `text` first: ruamel never sees an alias bomb or a duplicate key.
    expected = parse_yaml(text, source=PIPELINE_FILE) or {}
    change(expected)
    for candidate in (new_text, None):
        if candidate is None:
            candidate = _round_trip(text, change)
        try:
            if parse_yaml(candidate, source=PIPELINE_FILE) == expected:
                return candidate
        except SpecError:
            pass
    return dump_yaml(expected, sort_keys=False)


def _round_trip(text: str, change: Callable[[dict[str, Any]], None]) -> str:
    """`text` edited through ruamel.yaml's round-trip mode (comments, flow style and quotes kept)."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml_rt = YAML(typ="rt")
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 1 << 16  # never fold a long command onto two lines
    try:
        if text.strip():
            _, seq_indent, offset = load_yaml_guess_indent(text)
            yaml_rt.indent(mapping=_mapping_indent(text), sequence=seq_indent or 2, offset=offset or 0)
        data = yaml_rt.load(text) if text.strip() else None
        if data is None:
            data = {}
        change(data)
        out = io.StringIO()
        yaml_rt.dump(data, out)
    except (YAMLError, TypeError, KeyError, AttributeError):
        return ""  # the caller falls back to a plain dump
    return out.getvalue()


def add_stage(text: str, name: str, body: Mapping[str, Any], *, replace: bool = False) -> str:
    """`text` with stage `name` appended at the end of `stages:` (or replacing it in place)."""

    def change(data: dict[str, Any]) -> None:
        stages = data.get("stages") or {}
        stages[name] = dict(body)
        data["stages"] = stages

    _, stages = _stage_nodes(text)
    if not isinstance(stages, yaml.MappingNode) or stages.flow_style or not stages.value:
        prefix = text if text.endswith("\n") or not text else text + "\n"
        if stages is None:
            return _checked(text, prefix + "stages:\n" + _indent(name, body, 2), change)
        return _checked(text, "", change)
    indent = stages.value[0][0].start_mark.column
    block = _indent(name, body, indent)
    for i, (key, value) in enumerate(stages.value):
        if key.value == name and replace:
            start = _line_start(text, key.start_mark.index)
            end = (_line_start(text, stages.value[i + 1][0].start_mark.index) if i + 1 < len(stages.value)
                   else _after_line(text, _last_index(value)))
            return _checked(text, text[:start] + block + text[end:], change)
    pos = _after_line(text, _last_index(stages.value[-1][1]))
    new_text = text[:pos] + ("" if text[:pos].endswith("\n") or not pos else "\n") + block + text[pos:]
    return _checked(text, new_text, change)


def remove_stage(text: str, name: str) -> str:
    """`text` without stage `name` (a foreach/matrix stage as a whole); the other stages' lines are kept.

    Raises:
        SpecError: the stage is not in the text.
    """
    _, stages = _stage_nodes(text)
    _stage_body(stages, name)

    def change(data: dict[str, Any]) -> None:
        del data["stages"][name]

    assert isinstance(stages, yaml.MappingNode)  # _stage_body found the stage in it
    if stages.flow_style:
        return _checked(text, "", change)
    for i, (key, value) in enumerate(stages.value):
        if key.value == name:
            start = _line_start(text, key.start_mark.index)
            while start and text[_line_start(text, start - 1):start].lstrip().startswith("#"):
                start = _line_start(text, start - 1)  # the comment lines right above the stage go with it
            end = (_line_start(text, stages.value[i + 1][0].start_mark.index) if i + 1 < len(stages.value)
                   else _after_line(text, _last_index(value)))
            return _checked(text, text[:start] + text[end:], change)
    return _checked(text, "", change)


def _last_index(node: yaml.Node) -> int:
    # A block collection's end mark lies after trailing comments and blank lines: use its last scalar.
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    start: int = node.start_mark.index
    end: int = node.end_mark.index
    return max(start, end - 1)


def _indent(name: str, body: Mapping[str, Any], indent: int) -> str:
    text = dump_yaml({name: dict(body)}, sort_keys=False)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(keepends=True))


def set_stage_flag(text: str, name: str, key: str, value: bool | None) -> str:
    """`text` with `key: value` set in stage `name` (`do:` for foreach); None removes the key.

    Raises:
        SpecError: the stage is not in the text.
    """
    _, stages = _stage_nodes(text)
    body = _stage_body(stages, name)

    def change(data: dict[str, Any]) -> None:
        target = data["stages"][name]
        target = target["do"] if "foreach" in target else target
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value

    if not isinstance(body, yaml.MappingNode) or body.flow_style or not body.value:
        return _checked(text, "", change)
    for k, v in body.value:
        if k.value == key:
            if value is None:
                start, end = _line_start(text, k.start_mark.index), _after_line(text, _last_index(v))
                return _checked(text, text[:start] + text[end:], change)
            return _checked(text, text[: v.start_mark.index] + _bool(value) + text[v.end_mark.index:], change)
    if value is None:
        return text
    first = body.value[0][0]
    start = _line_start(text, first.start_mark.index)
    line = " " * first.start_mark.column + f"{key}: {_bool(value)}\n"
    return _checked(text, text[:start] + line + text[start:], change)


def _stage_body(stages: yaml.Node | None, name: str) -> yaml.Node:
    if isinstance(stages, yaml.MappingNode):
        for k, v in stages.value:
            if k.value == name:
                if isinstance(v, yaml.MappingNode):
                    for kk, vv in v.value:
                        if kk.value == "do" and any(x.value == "foreach" for x, _ in v.value):
                            return cast(yaml.Node, vv)
                return cast(yaml.Node, v)
    raise SpecError(f"stage '{name}' is not in {PIPELINE_FILE}", hint="run 'pipe dag' to list the stages")


def _bool(value: bool) -> str:
    return "true" if value else "false"
