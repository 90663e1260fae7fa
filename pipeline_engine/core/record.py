"""PathRecord: the recorded content of one path (oid, size, file count), as pointers and locks write it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_engine.core.hashing import ALGORITHM, Oid, is_dir_oid
from pipeline_engine.core.layout import is_valid_oid
from pipeline_engine.errors import SpecError

__all__ = ["PathRecord"]


@dataclass(frozen=True, slots=True)
class PathRecord:
    """One path's recorded state: its oid, total size and, for a directory, its file count.

    Pointer files (their out), and pipeline.lock (each dep and out) share this type and its
    on-disk shape `{path, hash: xxh3_128, oid, size[, nfiles][, isexec]}`. `isexec` is written
    only when true (a single file with its exec bit set; as DVC's `isexec`), so older records
    read unchanged.
    """

    path: str
    oid: Oid
    size: int
    nfiles: int | None = None
    isexec: bool = False

    @property
    def isdir(self) -> bool:
        """True when the path was a directory."""
        return is_dir_oid(self.oid)

    def to_dict(self) -> dict[str, Any]:
        """The on-disk mapping (see docs/format.md)."""
        d: dict[str, Any] = {"path": self.path, "hash": ALGORITHM, "oid": self.oid, "size": self.size}
        if self.nfiles is not None:
            d["nfiles"] = self.nfiles
        if self.isexec:
            d["isexec"] = True
        return d

    @classmethod
    def from_dict(cls, raw: Any, *, source: str) -> PathRecord:
        """Parse and validate an on-disk mapping; `source` names the file in errors.

        Raises:
            SpecError: a key is missing, of the wrong type, or the path is unsafe.
        """
        if not isinstance(raw, Mapping):
            raise SpecError(f"{source}: each entry must be a mapping with 'path' and 'oid'")
        path, oid, size, nfiles = raw.get("path"), raw.get("oid"), raw.get("size"), raw.get("nfiles")
        if not isinstance(path, str) or not path:
            raise SpecError(f"{source}: 'path' must be a non-empty string")
        if path.startswith("/") or ".." in path.split("/"):
            raise SpecError(f"{source}: invalid path '{path}': it must be relative and stay inside the project")
        if raw.get("hash", ALGORITHM) != ALGORITHM:
            raise SpecError(f"{source}: unsupported hash '{raw.get('hash')}' (expected '{ALGORITHM}')")
        if not isinstance(oid, str) or not is_valid_oid(oid):
            raise SpecError(f"{source}: 'oid' of '{path}' is not a valid {ALGORITHM} hash")
        if not isinstance(size, int) or size < 0:
            raise SpecError(f"{source}: 'size' of '{path}' must be a non-negative integer")
        if nfiles is not None and (not isinstance(nfiles, int) or nfiles < 0):
            raise SpecError(f"{source}: 'nfiles' of '{path}' must be a non-negative integer")
        return cls(path, Oid(oid), size, nfiles)
