"""Directory manifests: the sorted file list of a directory, stored as one object named `<hash>.dir`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline_engine.core.hashing import DIR_SUFFIX, Oid, hash_bytes
from pipeline_engine.errors import CacheError

__all__ = ["Tree", "TreeDiff", "TreeEntry", "diff_trees"]


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file of a directory: POSIX path relative to the directory, oid, size, exec bit."""

    relpath: str
    oid: Oid
    size: int
    isexec: bool = False


@dataclass(frozen=True, slots=True)
class Tree:
    """A directory's content; entries are sorted by relpath, so equal trees have equal bytes."""

    entries: tuple[TreeEntry, ...]

    @classmethod
    def from_entries(cls, entries: Iterable[TreeEntry]) -> Tree:
        """Build a tree, sorting the entries into canonical order."""
        return cls(tuple(sorted(entries, key=lambda e: e.relpath)))

    def to_bytes(self) -> bytes:
        """Canonical JSON: one object per entry, keys sorted, no whitespace."""
        rows = [{"hash": e.oid, "isexec": e.isexec, "relpath": e.relpath, "size": e.size} for e in self.entries]
        return json.dumps(rows, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @property
    def oid(self) -> Oid:
        """The manifest's oid: the hash of its canonical bytes plus `.dir`."""
        return Oid(hash_bytes(self.to_bytes()) + DIR_SUFFIX)

    @property
    def size(self) -> int:
        """Total bytes of all files."""
        return sum(e.size for e in self.entries)

    def by_path(self) -> dict[str, TreeEntry]:
        """Entries keyed by relpath."""
        return {e.relpath: e for e in self.entries}

    @classmethod
    def from_bytes(cls, data: bytes, *, oid: str = "") -> Tree:
        """Parse a manifest; entries are validated so a bad manifest cannot escape its directory.

        Raises:
            CacheError: the bytes are not a valid manifest.
        """
        try:
            rows = json.loads(data)
            entries = tuple(
                TreeEntry(str(r["relpath"]), Oid(str(r["hash"])), int(r["size"]), bool(r.get("isexec", False)))
                for r in rows
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise CacheError(f"directory manifest '{oid}' is not valid: {exc}") from exc
        for e in entries:
            parts = e.relpath.split("/")
            if e.relpath.startswith("/") or ".." in parts or "" in parts:
                raise CacheError(f"directory manifest '{oid}' has an unsafe path '{e.relpath}'")
        return cls(entries)


@dataclass(frozen=True, slots=True)
class TreeDiff:
    """Files added, modified and deleted going from an old tree to a new one."""

    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing differs."""
        return not (self.added or self.modified or self.deleted)


def diff_trees(old: Mapping[str, TreeEntry], new: Mapping[str, TreeEntry]) -> TreeDiff:
    """Compare two trees given as relpath -> entry mappings."""
    added = sorted(p for p in new if p not in old)
    deleted = sorted(p for p in old if p not in new)
    modified = sorted(
        p for p, e in new.items() if p in old and (old[p].oid != e.oid or old[p].isexec != e.isexec)
    )
    return TreeDiff(tuple(added), tuple(modified), tuple(deleted))
