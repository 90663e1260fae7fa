"""`<path>.pipe` pointer files: the git-tracked record of a path added with `pipe add`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.record import PathRecord
from pipeline_engine.core.revision import RevisionFiles, decode_utf8
from pipeline_engine.core.schema import check_schema, memo_of, remember_valid
from pipeline_engine.core.yamlio import dump_yaml, parse_yaml, read_utf8
from pipeline_engine.errors import SpecError

__all__ = ["POINTER_SUFFIX", "Pointer", "parse_pointer", "read_pointer", "write_pointer"]

POINTER_SUFFIX = ".pipe"
SCHEMA_VERSION = 1
POINTER_SCHEMA = "pointer.schema.json"


@dataclass(frozen=True, slots=True)
class Pointer:
    """A pointer file: where it is (project-relative) and the out it records.

    `out.path` is relative to the pointer's directory, as in DVC's `.dvc` files.
    """

    relpath: str
    out: PathRecord

    @property
    def data_relpath(self) -> str:
        """The tracked path, relative to the project root."""
        parent = self.relpath.rpartition("/")[0]
        return f"{parent}/{self.out.path}" if parent else self.out.path


def read_pointer(root_or_files: Path | RevisionFiles, relpath: str, *, memo: Path | None = None) -> Pointer:
    """Load the pointer file at project-relative `relpath`, in the workspace under a root or in any `RevisionFiles`.

    `memo` (the project's `.pipe/tmp`; by default the workspace's) skips the schema check of known texts.

    Raises:
        SpecError: the file is missing, unreadable or not a valid pointer (the message names it).
    """
    if isinstance(root_or_files, Path):
        try:
            text = read_utf8(root_or_files / relpath, source=relpath)
        except FileNotFoundError as exc:
            raise SpecError(f"{relpath}: cannot read: {exc.strerror or exc}") from exc
        return parse_pointer(text, relpath, memo=memo or memo_of(root_or_files))
    found = root_or_files.read_text(relpath)
    if found is None:
        raise SpecError(f"{root_or_files.describe(relpath)}: no such pointer file")
    return parse_pointer(found, relpath, source=root_or_files.describe(relpath), memo=memo or memo_of(root_or_files))


def parse_pointer(text: str | bytes, relpath: str, *, source: str | None = None, memo: Path | None = None) -> Pointer:
    """A pointer from its text; `relpath` is where it lies (project-relative), `source` names it in errors.

    After the checks below, the text is checked against schemas/pointer.schema.json unless it passed
    before (`memo`: the project's `.pipe/tmp`, see core.schema).

    Raises:
        SpecError: not a valid pointer; UnsafePathError (a SpecError) when the path it records
            does not pass the path gate.
    """
    source = source or relpath
    if isinstance(text, bytes):
        text = decode_utf8(text, source=source)
    raw = parse_yaml(text, source=source)
    if not isinstance(raw, dict) or not isinstance(raw.get("outs"), list) or len(raw["outs"]) != 1:
        raise SpecError(f"{source}: a pointer file needs 'outs' with exactly one entry")
    schema = raw.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise SpecError(f"{source}: unsupported schema {schema!r}; upgrade pipe")
    out = PathRecord.from_dict(raw["outs"][0], source=source)
    if "/" in out.path:
        raise SpecError(f"{source}: path '{out.path}' must name a file beside the pointer")
    check_schema(raw, name=POINTER_SCHEMA, source=source, text=text, memo=memo)
    return Pointer(relpath, out)


def write_pointer(root: Path, pointer: Pointer) -> None:
    """Write a pointer file atomically, with stable key order."""
    data = {"schema": SCHEMA_VERSION, "outs": [pointer.out.to_dict()]}
    text = dump_yaml(data)
    remember_valid(POINTER_SCHEMA, text, memo=memo_of(root))  # pipe's own output: no check on the next read
    atomic_write(root / pointer.relpath, text)
