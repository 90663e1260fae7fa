"""`<path>.pipe` pointer files: the git-tracked record of a path added with `pipe add`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.record import PathRecord
from pipeline_engine.core.yamlio import dump_yaml, load_yaml
from pipeline_engine.errors import SpecError

__all__ = ["POINTER_SUFFIX", "Pointer", "read_pointer", "write_pointer"]

POINTER_SUFFIX = ".pipe"
SCHEMA_VERSION = 1


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


def read_pointer(root: Path, relpath: str) -> Pointer:
    """Load the pointer file at project-relative `relpath`.

    Raises:
        SpecError: the file is unreadable or not a valid pointer.
    """
    raw = load_yaml(root / relpath, source=relpath)
    if not isinstance(raw, dict) or not isinstance(raw.get("outs"), list) or len(raw["outs"]) != 1:
        raise SpecError(f"{relpath}: a pointer file needs 'outs' with exactly one entry")
    schema = raw.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise SpecError(f"{relpath}: unsupported schema {schema!r}; upgrade pipe")
    out = PathRecord.from_dict(raw["outs"][0], source=relpath)
    if "/" in out.path:
        raise SpecError(f"{relpath}: path '{out.path}' must name a file beside the pointer")
    return Pointer(relpath, out)


def write_pointer(root: Path, pointer: Pointer) -> None:
    """Write a pointer file atomically, with stable key order."""
    data = {"schema": SCHEMA_VERSION, "outs": [pointer.out.to_dict()]}
    atomic_write(root / pointer.relpath, dump_yaml(data))
