"""Bounded YAML and JSON in, deterministic YAML out: every file from git is untrusted input.

Reading composes the node graph with the C loader, then walks it once (iteratively) before any
Python object is built: aliases may add at most `MAX_ALIAS_NODES` nodes (an alias bomb is refused
in milliseconds, not expanded), nesting is at most `MAX_DEPTH` levels, an alias may not contain
itself, and mapping keys are unique (YAML requires it; PyYAML would silently keep the last).
Scalars resolve by the YAML 1.2 core schema, as DVC reads its files (ruamel.yaml): `no`, `off`,
`yes` and `on` are strings, `1e6` is the float 1000000.0, `0o17` is 15 and `017` is 17. Writing
quotes every string that YAML 1.1 or 1.2 would read as something else (`'no'`, `'1e6'`), so what
pipe writes reads back the same with either.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar

import yaml

from pipeline_engine.core.fsutil import read_regular
from pipeline_engine.core.revision import RevisionFiles
from pipeline_engine.errors import PathError, SpecError

__all__ = [
    "MAX_ALIAS_NODES", "MAX_DEPTH", "MAX_DOCUMENT_BYTES", "Dumper", "Loader", "check_document_size", "check_values",
    "dump_yaml", "load_yaml", "parse_json", "parse_yaml", "read_document", "read_utf8",
]

#: How many nodes aliases may add to a document beyond the nodes written in it.
MAX_ALIAS_NODES = 100_000
#: How deeply collections may nest (pipe's own files use fewer than 10 levels).
MAX_DEPTH = 100
#: The largest params, metrics or plots data file pipe parses (it reads them whole): 16 MiB.
#: Real ones are kilobytes (dvclive's plot logs a few MiB); YAML parses at ~0.2 MiB/s here, JSON
#: ~3 MiB/s, so a larger file would hold `status`/`repro` for minutes before any other bound applied.
MAX_DOCUMENT_BYTES = 16 * 2**20

_CLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


# The YAML 1.2 core schema's implicit types, as ruamel.yaml (DVC's reader) writes them; `=` is a
# plain string (YAML 1.1's `value` type only made loading fail).
_YAML12 = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:float", r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", "-+0123456789."),
    ("tag:yaml.org,2002:int", r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", "-+0123456789"),
    (_MERGE_TAG, r"^(?:<<)$", "<"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:timestamp", r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
        (?:[Tt]|[\ \t]+)[0-9][0-9]?
        :[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
        (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", "0123456789"),
]


def _add_yaml12(cls: Any) -> None:
    for tag, pattern, first in _YAML12:
        cls.add_implicit_resolver(tag, re.compile(pattern, re.VERBOSE), list(first))


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    """A YAML 1.2 integer: `0o17` and `0x1f` by prefix, `017` is decimal (YAML 1.1 read it as octal)."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    bases = {"0b": 2, "0o": 8, "0x": 16}
    base = bases.get(digits[:2], 10)
    return sign * int(digits[2:] if base != 10 else digits, base)


class Loader(_CLoader):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml when present) with YAML 1.2 core-schema scalars."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[Any]]] = {}  # fresh: no YAML 1.1 resolvers


_add_yaml12(Loader)
Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class Dumper(_CDumper):  # type: ignore[misc]
    """A safe dumper that never writes aliases and quotes strings YAML 1.1 or 1.2 would not read back."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_add_yaml12(Dumper)  # on top of YAML 1.1's resolvers, which the class inherits


def parse_yaml(text: str, *, source: str, allow_nonfinite: bool = False) -> Any:
    """Parse one YAML document within the bounds above; errors name `source` with the line.

    `allow_nonfinite`: `.nan` and `.inf` are floats (metrics and plot data: a diverged run logs
    NaN, as DVC reads it); elsewhere (params, pipe's own files) they are refused.

    Raises:
        SpecError: invalid YAML, a duplicate key, nesting too deep, aliases expanding too far.
    """
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _GraphCheck(loader, source, node, allow_nonfinite=allow_nonfinite).run()
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise SpecError(_describe(exc, source)) from exc
    except RecursionError:  # only the pure-Python composer recurses (no libyaml)
        raise SpecError(f"{source}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # a mapping key of more digits than Python converts (values are checked)
        raise SpecError(f"{source}: invalid key: {exc}") from exc
    finally:
        loader.dispose()


def _describe(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{source}{where}: invalid YAML: {problem}"


def _key_path(root: yaml.Node, target: yaml.Node) -> str:
    """` key 'a.b.0':` naming where `target` sits under `root` (searched only to word an error)."""
    parent: dict[int, tuple[yaml.Node, str | None]] = {}
    stack = [root]
    while stack and id(target) not in parent:
        node = stack.pop()
        pairs: list[tuple[yaml.Node, str | None]] = []
        if isinstance(node, yaml.SequenceNode):
            pairs = [(child, str(i)) for i, child in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                pairs += [(key, None), (value, str(key.value) if isinstance(key, yaml.ScalarNode) else "?")]
        for child, label in pairs:
            if id(child) not in parent and child is not root:
                parent[id(child)] = (node, label)
                stack.append(child)
    labels: list[str] = []
    current = target
    while id(current) in parent:
        current, label = parent[id(current)]
        if label is not None:
            labels.append(label)
    labels.reverse()
    if len(labels) > 8:  # deep nesting: the start of the path says where
        labels = [*labels[:8], "..."]
    return f" key '{'.'.join(labels)}':" if labels else ""


class _GraphCheck:
    """One iterative walk over the composed nodes, before any Python object is built.

    Refuses cycles, deep nesting, alias bombs, duplicate keys, control characters in keys,
    explicit tags that build anything but plain scalars, lists and mappings, and numbers that are
    not finite or do not fit in 64 bits. Aliases are shared node objects, so each collection's
    expanded size and height are memoised by id; scalars are checked where they are met.
    """

    def __init__(self, loader: Any, source: str, root: yaml.Node, *, allow_nonfinite: bool = False) -> None:
        self.loader = loader
        self.source = source
        self.root = root
        self.allow_nonfinite = allow_nonfinite

    def fail(self, node: yaml.Node, message: str, *, hint: str | None = None) -> SpecError:
        where = f"{self.source}:{node.start_mark.line + 1}:{_key_path(self.root, node)}"
        return SpecError(f"{where} {message}", hint=hint)

    def run(self) -> None:
        root = self.root
        if isinstance(root, yaml.ScalarNode):
            self.check_scalar(root)
            return
        done: dict[int, tuple[int, int]] = {}  # id -> (expanded size, height)
        open_ids: set[int] = set()
        written = 0
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, finished = stack.pop()
            if finished:
                open_ids.discard(id(node))
                done[id(node)] = self.finish(node, done)
                continue
            if id(node) in done:
                continue
            if id(node) in open_ids:
                raise self.fail(node, "an alias refers to a node that contains it")
            open_ids.add(id(node))
            stack.append((node, True))
            for child in _children(node):
                written += 1
                if isinstance(child, yaml.ScalarNode):
                    self.check_scalar(child)
                elif id(child) not in done:
                    stack.append((child, False))
        if done[id(root)][0] - written > MAX_ALIAS_NODES:
            raise SpecError(
                f"{self.source}: aliases expand to more than {MAX_ALIAS_NODES:,} nodes (an alias bomb?)",
                hint="write the values out instead of repeating anchors",
            )

    def finish(self, node: yaml.Node, done: dict[int, tuple[int, int]]) -> tuple[int, int]:
        expected = _SEQ_TAG if isinstance(node, yaml.SequenceNode) else _MAP_TAG
        if node.tag != expected:
            raise self.fail(node, f"unsupported tag '{node.tag}'")
        size, height = 1, 1
        for child in _children(node):
            if isinstance(child, yaml.ScalarNode):
                size += 1
            else:
                child_size, child_height = done[id(child)]
                size += child_size
                height = max(height, child_height + 1)
        if height > MAX_DEPTH:
            raise self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.MappingNode):
            self.check_keys(node)
        # Saturate: the exact size of a bomb does not matter, only that it is too big.
        return min(size, 1 << 62), height

    def check_scalar(self, node: yaml.ScalarNode) -> None:
        tag = node.tag
        if tag == _STR_TAG:
            return  # any text is a valid string; the readers check what their fields may hold
        plain = not node.style
        implicit = self.loader.resolve(yaml.ScalarNode, node.value, (plain, not plain))
        if tag != implicit:
            raise self.fail(node, f"unsupported tag '{tag}'", hint="remove the tag or quote the value")
        if tag not in _NUMBER_TAGS:
            return  # null, bool, merge; a timestamp's date is checked when it is built
        try:
            value = self.loader.construct_object(node)
        except ValueError as exc:  # an impossible date, an integer of more digits than Python converts
            raise self.fail(node, f"invalid value {node.value[:40]!r}: {exc}") from None
        if isinstance(value, float) and not math.isfinite(value) and not self.allow_nonfinite:
            raise self.fail(node, f"{node.value[:40]!r} is not a finite number", hint="quote it to make it a string")
        if isinstance(value, int) and not -(2**63) <= value < 2**64:
            raise self.fail(node, f"{node.value[:40]!r} does not fit in 64 bits", hint="quote it to make it a string")

    def check_keys(self, node: yaml.MappingNode) -> None:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue  # `<<` merges may be overridden; collection keys fail at construction
            key = key_node.value if key_node.tag == _STR_TAG else self.loader.construct_object(key_node)
            if key in seen:
                raise self.fail(key_node, f"duplicate key {str(key)!r} (keys must be unique)",
                                hint="remove one of the two entries")
            if isinstance(key, str) and _CONTROL.search(key):
                raise self.fail(key_node, f"control character in key {key!r}")
            seen.add(key)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def load_yaml(path: Path, *, source: str | None = None) -> Any:
    """Read and parse a YAML file; `source` is the name used in error messages.

    Raises:
        SpecError: the file cannot be read or is not valid, bounded YAML.
    """
    name = source or str(path)
    try:
        text = read_utf8(path, source=name)
    except FileNotFoundError as exc:
        raise SpecError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    return parse_yaml(text, source=name)


def read_utf8(path: Path, *, source: str) -> str:
    """A file's text; `source` names it in errors.

    Raises:
        FileNotFoundError: the file does not exist (callers decide whether that is an error).
        SpecError: the file cannot be read, or is not UTF-8 (the message gives the byte offset).
    """
    try:
        return read_regular(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text (byte {exc.start})") from exc
    except FileNotFoundError:
        raise
    except PathError as exc:  # a FIFO or a device: never read (it could block forever)
        raise SpecError(f"{source}: {exc.message}", hint=exc.hint) from None
    except OSError as exc:
        raise SpecError(f"{source}: cannot read: {exc.strerror or exc}") from exc


def parse_json(text: str, *, source: str, allow_nonfinite: bool = False) -> Any:
    """Parse JSON within the same bounds: depth, unique keys, finite numbers that fit in 64 bits.

    `allow_nonfinite`: `NaN`, `Infinity` and `-Infinity` (which Python's json and pandas write,
    and DVC reads) are floats, for metrics and plot data; elsewhere they are refused.

    Raises:
        SpecError: invalid JSON, a duplicate key, NaN/Infinity, a huge number, or nesting too deep.
    """
    checks = _JsonChecks(source, allow_nonfinite=allow_nonfinite)
    try:
        data = json.loads(
            text, object_pairs_hook=checks.pairs, parse_constant=checks.constant,
            parse_int=checks.integer, parse_float=checks.real,
        )
    except json.JSONDecodeError as exc:
        raise SpecError(f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except RecursionError:
        raise SpecError(f"{source}: nested deeper than {MAX_DEPTH} levels") from None
    check_values(data, source=source, allow_nonfinite=allow_nonfinite)
    return data


class _JsonChecks:
    """json.loads hooks that refuse what the YAML walk refuses (no line numbers: json gives none)."""

    def __init__(self, source: str, *, allow_nonfinite: bool = False) -> None:
        self.source = source
        self.allow_nonfinite = allow_nonfinite

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in data:
                raise SpecError(f"{self.source}: duplicate key {key!r} (keys must be unique)")
            data[key] = value
        return data

    def constant(self, name: str) -> Any:
        if self.allow_nonfinite:
            return float(name)  # "NaN", "Infinity", "-Infinity": the only names json passes here
        raise SpecError(f"{self.source}: {name} is not a finite number")

    def integer(self, text: str) -> int:
        if len(text) > 20 or not -(2**63) <= int(text) < 2**64:
            raise SpecError(f"{self.source}: {text[:40]} does not fit in 64 bits")
        return int(text)

    def real(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value) and not self.allow_nonfinite:
            raise SpecError(f"{self.source}: {text[:40]} is not a finite number")
        return value


def check_values(data: Any, *, source: str, allow_nonfinite: bool = False) -> None:
    """Refuse what a parser let through: nesting past `MAX_DEPTH`, NaN/inf (unless `allow_nonfinite`),
    integers past 64 bits.

    For parsers without hooks (TOML); the message names the key.

    Raises:
        SpecError: naming the file and the key.
    """
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        shown = path if len(path) <= 8 else (*path[:8], "...")
        where = f"{source}: key '{'.'.join(shown)}'" if path else source
        if isinstance(value, dict | list):
            if len(path) >= MAX_DEPTH:
                raise SpecError(f"{where}: nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, (*path, str(k))) for k, v in items)
        elif isinstance(value, float) and not math.isfinite(value) and not allow_nonfinite:
            raise SpecError(f"{where}: {value} is not a finite number", hint="quote it to make it a string")
        elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
            raise SpecError(f"{where}: the number does not fit in 64 bits", hint="quote it to make it a string")


def read_document(files: RevisionFiles, relpath: str) -> str | None:
    """The text of a params, metrics or plots file at a revision, its size checked before it is read.

    Raises:
        SpecError: the file is over `MAX_DOCUMENT_BYTES` (nothing was read), or not UTF-8.
        UnsafePathError: the path gate refuses `relpath`.
    """
    size = files.size(relpath)
    if size is not None:
        check_document_size(size, source=files.describe(relpath))
    return files.read_text(relpath)


def check_document_size(data: str | bytes | int, *, source: str) -> None:
    """Refuse a params, metrics or plots file over `MAX_DOCUMENT_BYTES`, before it is parsed.

    `data`: the file's text, its bytes, or its size in bytes (from a stat, before reading).

    Raises:
        SpecError: naming `source`, its size and the limit.
    """
    if isinstance(data, int):
        size = data
    elif isinstance(data, bytes) or len(data) > MAX_DOCUMENT_BYTES or len(data) * 4 <= MAX_DOCUMENT_BYTES:
        size = len(data)  # characters: a lower bound of the bytes, and enough to decide
    else:
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise SpecError(
            f"{source}: {size / 2**20:.1f} MiB is over the {MAX_DOCUMENT_BYTES // 2**20} MiB limit of a params, "
            "metrics or plots file",
            hint="keep large data in files tracked with 'pipe add' (or stage outs), not in files pipe parses",
        )


def dump_yaml(data: Any, *, sort_keys: bool = True) -> str:
    """Serialise `data` as block-style YAML with stable ordering."""
    return yaml.dump(
        data, Dumper=Dumper, sort_keys=sort_keys, default_flow_style=False, allow_unicode=True
    )
