"""pipeline.lock: what each stage's last successful run recorded (cmd, deps, params, env, outs).

Written atomically with sorted, stable ordering so Git diffs stay small; each stage's entry is
updated on its own as soon as that stage finishes (`write_stage`), so an interrupted `repro`
keeps every finished stage.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.core.record import PathRecord
from pipeline_engine.core.revision import RevisionFiles, decode_utf8
from pipeline_engine.core.schema import check_schema, memo_of, remember_valid
from pipeline_engine.core.yamlio import Dumper, parse_yaml, read_utf8
from pipeline_engine.errors import SpecError

__all__ = [
    "LOCK_FILE", "LockFile", "LockWriter", "StageLock", "dump_lock", "parse_lock", "read_lock",
    "write_stage",
]

LOCK_FILE = "pipeline.lock"
SCHEMA_VERSION = 1
LOCK_SCHEMA = "lock.schema.json"
_write_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class StageLock:
    """One stage's recorded run: params are {file: {key: value}}, env is {name: value or None}."""

    cmd: str | tuple[str, ...]  # a tuple for a `cmd` list (written as a YAML list, as DVC does)
    deps: tuple[PathRecord, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env: Mapping[str, str | None] = field(default_factory=dict)
    outs: tuple[PathRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The on-disk mapping (see docs/format.md), in stable order."""
        data: dict[str, Any] = {"cmd": list(self.cmd) if isinstance(self.cmd, tuple) else self.cmd}
        if self.deps:
            data["deps"] = [d.to_dict() for d in sorted(self.deps, key=lambda r: r.path)]
        if self.params:
            data["params"] = {f: dict(sorted(v.items())) for f, v in sorted(self.params.items())}
        if self.env:
            data["env"] = dict(sorted(self.env.items()))
        if self.outs:
            data["outs"] = [o.to_dict() for o in sorted(self.outs, key=lambda r: r.path)]
        return data

    @classmethod
    def from_dict(cls, raw: Any, *, source: str) -> StageLock:
        """Parse one stage entry.

        Raises:
            SpecError: a field is missing or has the wrong shape.
        """
        if not isinstance(raw, Mapping) or not _is_cmd(raw.get("cmd")):
            raise SpecError(f"{source}: a stage entry needs 'cmd' (a string or a list of strings)")
        params = raw.get("params") or {}
        env = raw.get("env") or {}
        if not isinstance(params, Mapping) or not all(
            isinstance(f, str) and isinstance(v, Mapping) and all(isinstance(k, str) for k in v)
            for f, v in params.items()
        ):
            raise SpecError(f"{source}: 'params' must map params files to {{key: value}}")
        if not isinstance(env, Mapping) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in env.items()
        ):
            raise SpecError(f"{source}: 'env' must map variable names to strings")
        return cls(
            cmd=raw["cmd"] if isinstance(raw["cmd"], str) else tuple(raw["cmd"]),
            deps=_records(raw.get("deps"), source=f"{source}: deps"),
            params={check_relpath(f, source=f"{source}: params"): dict(v) for f, v in params.items()},
            env=dict(env),
            outs=_records(raw.get("outs"), source=f"{source}: outs"),
        )


def _is_cmd(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(c, str) for c in value))


def _records(raw: Any, *, source: str) -> tuple[PathRecord, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError(f"{source}: must be a list")
    return tuple(PathRecord.from_dict(r, source=source) for r in raw)


@dataclass(frozen=True, slots=True)
class LockFile:
    """Every stage entry of pipeline.lock, by stage name."""

    stages: Mapping[str, StageLock] = field(default_factory=dict)


def read_lock(root_or_files: Path | RevisionFiles, *, memo: Path | None = None) -> LockFile:
    """Read pipeline.lock from a project root (the workspace) or any `RevisionFiles` (empty when absent).

    `memo` (the project's `.pipe/tmp`; by default the workspace's) skips the schema check of known texts.

    Raises:
        SpecError: the file is not a valid lock file; the message names it (and the revision).
    """
    memo = memo or memo_of(root_or_files)
    if isinstance(root_or_files, Path):
        try:
            text: str | None = read_utf8(root_or_files / LOCK_FILE, source=LOCK_FILE)
        except FileNotFoundError:
            text = None
        source = LOCK_FILE
    else:
        text = root_or_files.read_text(LOCK_FILE)
        source = root_or_files.describe(LOCK_FILE)
    return LockFile() if text is None else parse_lock(text, source=source, memo=memo)


def parse_lock(text: str | bytes, *, source: str = LOCK_FILE, memo: Path | None = None) -> LockFile:
    """A lock file from its text (e.g. pipeline.lock at a past git revision); `source` names it in errors.

    After the checks below, the text is checked against schemas/lock.schema.json unless it passed
    before (`memo`: the project's `.pipe/tmp`, see core.schema).

    Raises:
        SpecError: the text is not a valid lock file.
    """
    if isinstance(text, bytes):
        text = decode_utf8(text, source=source)
    raw = parse_yaml(text, source=source)
    lock = _to_lock(raw, source=source)
    if raw is not None:
        check_schema(raw, name=LOCK_SCHEMA, source=source, text=text, memo=memo)
    return lock


def _to_lock(raw: Any, *, source: str) -> LockFile:
    if raw is None:
        return LockFile()
    if not isinstance(raw, Mapping) or not isinstance(raw.get("stages") or {}, Mapping):
        raise SpecError(f"{source}: must be a mapping with 'schema' and 'stages'")
    schema = raw.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise SpecError(f"{source}: unsupported schema {schema!r}; upgrade pipe")
    stages = {}
    for name, entry in (raw.get("stages") or {}).items():
        if not isinstance(name, str):
            raise SpecError(f"{source}: stage name {name!r} must be a string")
        stages[name] = StageLock.from_dict(entry, source=f"{source}: stage '{name}'")
    return LockFile(stages)


class _LockDumper(Dumper):
    """Keeps the key order we build (stable by construction), writes multi-line cmds as `|` blocks.

    Strings YAML 1.1 or 1.2 would read as another type (`'no'`, `'1e6'`) are quoted (yamlio.Dumper).
    """


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # A `|` block only for plain multi-line text: a block that keeps trailing blank lines (`|+`)
    # makes the emitter end the document with `...`, which cannot sit between two entries.
    # Anything else is left to the emitter, which quotes and escapes what a block cannot hold.
    block = (
        "\n" in value and value.strip("\n") != "" and not value.endswith("\n\n")
        and all(c.isprintable() or c == "\n" for c in value)
        and all(line == line.rstrip(" ") for line in value.split("\n"))
    )
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if block else None)


_LockDumper.add_representer(str, _str)
_HEADER = f"schema: {SCHEMA_VERSION}\nstages:\n"


def _entry_text(name: str, entry: StageLock) -> str:
    # Dumped under `stages:` so the emitter indents every line itself (blank lines of a block included).
    text = yaml.dump({"stages": {name: entry.to_dict()}}, Dumper=_LockDumper, sort_keys=False,
                     default_flow_style=False, allow_unicode=True)
    assert text.startswith("stages:\n"), text
    return text[len("stages:\n"):]


def dump_lock(lock: LockFile) -> str:
    """The YAML text of a lock file: stages sorted by name, every mapping in a fixed order."""
    if not lock.stages:
        return f"schema: {SCHEMA_VERSION}\nstages: {{}}\n"
    return _HEADER + "".join(_entry_text(name, lock.stages[name]) for name in sorted(lock.stages))


class LockWriter:
    """Holds pipeline.lock in memory during a run and rewrites it as each stage finishes.

    Entry texts are kept, so saving after each of N stages costs O(N) string joins, not N dumps.
    Thread-safe; the project mutex guarantees no other process writes the file meanwhile.
    """

    def __init__(self, root: Path, lock: LockFile) -> None:
        self._path = root / LOCK_FILE
        self._memo = memo_of(root)
        self._stages = dict(lock.stages)
        self._texts: dict[str, str] | None = None
        self._lock = threading.Lock()

    def update(self, name: str, entry: StageLock | None) -> LockFile:
        """Replace (None: drop) one stage's entry and write the file atomically."""
        with self._lock:
            if self._texts is None:
                self._texts = {n: _entry_text(n, e) for n, e in self._stages.items()}
            if entry is None:
                self._stages.pop(name, None)
                self._texts.pop(name, None)
            else:
                self._stages[name] = entry
                self._texts[name] = _entry_text(name, entry)
            body = "".join(self._texts[n] for n in sorted(self._texts))
            text = _HEADER + body if body else dump_lock(LockFile())
            remember_valid(LOCK_SCHEMA, text, memo=self._memo)  # pipe's own output: no check on the next read
            atomic_write(self._path, text)
            return LockFile(dict(self._stages))


def write_stage(root: Path, name: str, entry: StageLock | None) -> LockFile:
    """Replace (or with None, drop) one stage's entry, re-reading the file so others are kept."""
    with _write_lock:
        return LockWriter(root, read_lock(root)).update(name, entry)
