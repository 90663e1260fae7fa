"""Small edits of pipeline.yaml text that keep the user's comments and layout: add a stage, set a flag.

Each edit changes only the lines it must and is checked by parsing the result: when the
parsed result is not exactly the intended data (an unusual layout, flow style), the file is
dumped anew instead, which is correct but loses comments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import yaml

from pipeline_engine.core.yamlio import dump_yaml, parse_yaml
from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.spec import PIPELINE_FILE

__all__ = ["add_stage", "set_stage_flag"]


def _stage_nodes(text: str) -> tuple[yaml.MappingNode | None, yaml.Node | None]:
    root = yaml.compose(text, Loader=yaml.SafeLoader) if text.strip() else None
    if not isinstance(root, yaml.MappingNode):
        return None, None
    for key, value in root.value:
        if key.value == "stages":
            return root, value
    return root, None


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _after_line(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _checked(text: str, new_text: str, change: Callable[[dict[str, Any]], None]) -> str:
    expected = parse_yaml(text, source=PIPELINE_FILE) or {}
    change(expected)
    try:
        if parse_yaml(new_text, source=PIPELINE_FILE) == expected:
            return new_text
    except SpecError:
        pass
    return dump_yaml(expected, sort_keys=False)


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
