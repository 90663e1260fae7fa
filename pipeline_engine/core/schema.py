"""JSON Schema checks of pipe's files (pointers, lock, config, pipeline.yaml), remembered by text digest.

The schemas live in `pipeline_engine/schemas/` (a copy of the top-level `schemas/`, where editors
and other tools find them). The hand-written checks of each parser run first and give the precise
messages; the schema check adds coverage (unknown keys, types no parser looked at) and names the
file and the key path (`outs.0.size`).

jsonschema costs ~50 ms to import, more than a no-op `pipe status` spends on everything else, so
a text that passed once is not checked again: its digest (xxh3 of the schema name and the text)
is remembered in memory and, given a `memo` directory (`.pipe/tmp`), in `valid-texts` there, one
digest a line, appended as texts pass and as pipe writes them. Only `.pipe/tmp` (never committed,
written only by pipe) holds the memo; losing it costs one more check per file. The memo is an
optimisation of a coverage check, never a security boundary: the path gate and the parsers' own
checks run on every read.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import tmp_dir, valid_texts_path
from pipeline_engine.core.revision import RevisionFiles, WorkspaceFiles
from pipeline_engine.errors import SpecError

__all__ = [
    "SCHEMA_DIR", "check_schema", "describe_error", "is_known_valid", "key_path", "load_schema",
    "memo_of", "remember_valid", "schema_errors",
]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
# Past this size the memo file is started afresh (about 30,000 texts).
_MEMO_LIMIT = 1 << 20
# The control directory's name (project.CONTROL_DIR, a layer above this one).
_CONTROL_DIR = ".pipe"
_known: dict[Path | None, set[str]] = {}
_lock = threading.Lock()


@lru_cache(maxsize=8)
def load_schema(name: str) -> dict[str, Any]:
    """A schema from pipeline_engine/schemas/ by file name (`pointer.schema.json`)."""
    data: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return data


@lru_cache(maxsize=8)
def _validator(name: str) -> Any:
    return _validator_class()(load_schema(name))


@lru_cache(maxsize=1)
def _validator_class() -> Any:
    """Draft 2020-12 with ECMA-262 `pattern`s: a final `$` matches only at the end of the string.

    (Python's `$` also matches before a final newline, which let `env: ["A\\n"]` through.)
    """
    import jsonschema

    def pattern(validator: Any, regex: str, instance: Any, _schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string") and not re.search(_ecma(regex), instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {regex!r}")

    extend: Any = jsonschema.validators.extend  # untyped in the stubs
    return extend(jsonschema.Draft202012Validator, {"pattern": pattern})


@lru_cache(maxsize=16)
def _ecma(regex: str) -> str:
    return re.sub(r"(?<!\\)\$$", r"\\Z", regex)


def schema_errors(raw: Any, name: str) -> Any:
    """The best-matching jsonschema ValidationError of `raw` against schema `name`, or None."""
    import jsonschema

    return jsonschema.exceptions.best_match(_validator(name).iter_errors(raw))


def memo_of(where: Path | RevisionFiles) -> Path | None:
    """The memo directory of a project root or of the workspace's files (`.pipe/tmp`); None for a revision.

    Texts read at a git revision are remembered in memory only: the files object does not know
    the project's control directory.
    """
    root = where if isinstance(where, Path) else where.root if isinstance(where, WorkspaceFiles) else None
    return None if root is None else tmp_dir(root / _CONTROL_DIR)


def _digest(name: str, text: str) -> str:
    return hash_bytes(f"{name}\0{text}".encode())


def _memo_set(memo: Path | None) -> set[str]:
    """The digests known for `memo` (loaded from its file once per process); call under `_lock`."""
    known = _known.get(memo)
    if known is None:
        known = set()
        if memo is not None:
            path = valid_texts_path(memo)
            try:
                if path.stat().st_size > _MEMO_LIMIT:
                    path.unlink()
                else:
                    known.update(path.read_text(encoding="ascii", errors="replace").split())
            except OSError:
                pass  # no memo yet, or unreadable: texts are checked again
        _known[memo] = known
    return known


def is_known_valid(name: str, text: str, *, memo: Path | None = None) -> bool:
    """True when `text` passed schema `name` before (in this process or, with `memo`, in `.pipe/tmp`)."""
    with _lock:
        return _digest(name, text) in _memo_set(memo)


def remember_valid(name: str, text: str, *, memo: Path | None = None) -> None:
    """Record that `text` satisfies schema `name` (pipe wrote it, or it passed `check_schema`)."""
    digest = _digest(name, text)
    with _lock:
        known = _memo_set(memo)
        if digest in known:
            return
        known.add(digest)
        if memo is None or not memo.is_dir():
            return
        # One short O_APPEND write: lines from concurrent processes never interleave.
        try:
            fd = os.open(valid_texts_path(memo), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{digest}\n".encode("ascii"))
            finally:
                os.close(fd)
        except OSError:
            pass  # a read-only project still works; it checks again next time


def check_schema(raw: Any, *, name: str, source: str, text: str | None = None, memo: Path | None = None) -> None:
    """Check parsed `raw` against schema `name`, unless its `text` is known to have passed.

    Raises:
        SpecError: `source: 'key.path': problem` for the first (best-matching) violation.
    """
    if text is not None and is_known_valid(name, text, memo=memo):
        return
    error = schema_errors(raw, name)
    if error is not None:
        raise SpecError(f"{source}: {describe_error(error)}")
    if text is not None:
        remember_valid(name, text, memo=memo)


def describe_error(error: Any) -> str:
    """`'outs.0.size': -1 is less than the minimum of 0`, or `unknown key 'x'` with its path."""
    path = key_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(str(k) for k in error.instance if k not in allowed)
        if unknown:
            where = f" in '{path}'" if path else ""
            return f"unknown key '{unknown[0]}'{where}"
    return f"'{path or '(top level)'}': {error.message}"


def key_path(path: Sequence[Any]) -> str:
    """A jsonschema path as pipe's dotted key (`stages.train.outs.0`)."""
    return ".".join(str(p) for p in path)
