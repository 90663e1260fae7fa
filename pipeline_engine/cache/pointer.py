"""`<path>.pipe` pointer files: the git-tracked record of a path added with `pipe add`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.hashing import ALGORITHM, Oid, is_dir_oid
from pipeline_engine.core.layout import is_valid_oid
from pipeline_engine.core.yamlio import dump_yaml, load_yaml
from pipeline_engine.errors import SpecError

__all__ = ["POINTER_SUFFIX", "OutRecord", "Pointer", "read_pointer", "write_pointer"]

POINTER_SUFFIX = ".pipe"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class OutRecord:
    """The recorded state of one path: its oid, total size and, for a directory, file count.

    Shared by pointer files and lock entries so both describe data the same way.
    """

    path: str
    oid: Oid
    size: int
    nfiles: int | None = None

    @property
    def isdir(self) -> bool:
        """True when the path was a directory."""
        return is_dir_oid(self.oid)

    def to_dict(self) -> dict[str, Any]:
        """The on-disk mapping (see docs/format.md)."""
        d: dict[str, Any] = {"path": self.path, "hash": ALGORITHM, "oid": self.oid, "size": self.size}
        if self.nfiles is not None:
            d["nfiles"] = self.nfiles
        return d

    @classmethod
    def from_dict(cls, raw: Any, *, source: str) -> OutRecord:
        """Parse and validate an on-disk mapping.

        Raises:
            SpecError: a key is missing, of the wrong type, or the path is unsafe.
        """
        if not isinstance(raw, dict):
            raise SpecError(f"{source}: each out must be a mapping with 'path' and 'oid'")
        path, oid, size = raw.get("path"), raw.get("oid"), raw.get("size")
        if not isinstance(path, str) or not path:
            raise SpecError(f"{source}: 'path' must be a non-empty string")
        if path.startswith("/") or ".." in path.split("/"):
            raise SpecError(f"{source}: path '{path}' must be relative and stay inside the project")
        if raw.get("hash", ALGORITHM) != ALGORITHM:
            raise SpecError(f"{source}: unsupported hash '{raw.get('hash')}' (expected '{ALGORITHM}')")
        if not isinstance(oid, str) or not is_valid_oid(oid):
            raise SpecError(f"{source}: 'oid' of '{path}' is not a valid {ALGORITHM} hash")
        if not isinstance(size, int) or size < 0:
            raise SpecError(f"{source}: 'size' of '{path}' must be a non-negative integer")
        nfiles = raw.get("nfiles")
        if nfiles is not None and (not isinstance(nfiles, int) or nfiles < 0):
            raise SpecError(f"{source}: 'nfiles' of '{path}' must be a non-negative integer")
        return cls(path, Oid(oid), size, nfiles)


@dataclass(frozen=True, slots=True)
class Pointer:
    """A pointer file: where it is (project-relative) and the out it records.

    `out.path` is relative to the pointer's directory, as in DVC's `.dvc` files.
    """

    relpath: str
    out: OutRecord

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
    if raw.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise SpecError(f"{relpath}: unsupported schema {raw.get('schema')!r}; upgrade pipe")
    out = OutRecord.from_dict(raw["outs"][0], source=relpath)
    if "/" in out.path:
        raise SpecError(f"{relpath}: path '{out.path}' must name a file beside the pointer")
    return Pointer(relpath, out)


def write_pointer(root: Path, pointer: Pointer) -> None:
    """Write a pointer file atomically, with stable key order."""
    data = {"schema": SCHEMA_VERSION, "outs": [pointer.out.to_dict()]}
    atomic_write(root / pointer.relpath, dump_yaml(data))
