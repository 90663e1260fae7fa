"""PathRecord: the recorded content of one path (oid, size, file count), as pointers and locks write it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from pipeline_engine.core.hashing import ALGORITHM, Oid, is_dir_oid
from pipeline_engine.core.layout import is_valid_oid
from pipeline_engine.core.pathgate import check_not_own_file, check_relpath
from pipeline_engine.errors import SpecError

__all__ = ["PathRecord", "is_count"]

_MAX_COUNT = 2**63


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
            SpecError: a key is missing or of the wrong type.
            UnsafePathError: (a SpecError) the path does not pass the path gate (core.pathgate).
        """
        if not isinstance(raw, Mapping):
            raise SpecError(f"{source}: each entry must be a mapping with 'path' and 'oid'")
        path = check_not_own_file(check_relpath(raw.get("path"), source=source), source=source)
        oid, size, nfiles, isexec = raw.get("oid"), raw.get("size"), raw.get("nfiles"), raw.get("isexec", False)
        if raw.get("hash", ALGORITHM) != ALGORITHM:
            raise SpecError(f"{source}: unsupported hash {raw.get('hash')!r} of '{path}' (expected '{ALGORITHM}')")
        if not isinstance(oid, str) or not is_valid_oid(oid):
            raise SpecError(f"{source}: 'oid' of '{path}' is not a valid {ALGORITHM} hash")
        if not is_count(size):
            raise SpecError(f"{source}: 'size' of '{path}' must be an integer from 0 to 2**63-1")
        if nfiles is not None and not is_count(nfiles):
            raise SpecError(f"{source}: 'nfiles' of '{path}' must be an integer from 0 to 2**63-1")
        if not isinstance(isexec, bool):
            raise SpecError(f"{source}: 'isexec' of '{path}' must be true or false")
        return cls(path, Oid(oid), size, nfiles, isexec)


def is_count(value: object) -> TypeGuard[int]:
    """True for an int (not a bool) that fits a signed 64-bit size: 0 <= value < 2**63."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_COUNT
