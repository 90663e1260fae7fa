"""Directory manifests: the sorted file list of a directory, stored as one object named `<hash>.dir`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline_engine.core.hashing import DIR_SUFFIX, Oid, hash_bytes, is_dir_oid
from pipeline_engine.core.layout import is_valid_oid
from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.core.record import is_count
from pipeline_engine.errors import CacheError, UnsafePathError

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
        """Parse a manifest; every entry passes the path gate, so a manifest cannot escape its directory.

        Manifests come from remotes and other people's caches: each entry must be a mapping with a
        gated `relpath`, a valid file oid as `hash`, a bounded integer `size` and a boolean `isexec`;
        no path may appear twice or be both a file and a directory.

        Raises:
            CacheError: the bytes are not a valid manifest (the message names the manifest and entry).
        """
        where = f"directory manifest '{oid}'"
        try:
            rows = json.loads(data)
        except RecursionError:
            raise CacheError(f"{where} is not valid: nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise CacheError(f"{where} is not valid JSON: {exc}") from exc
        if not isinstance(rows, list):
            raise CacheError(f"{where} is not valid: expected a list of entries")
        entries = tuple(_entry(row, where) for row in rows)
        files = {e.relpath for e in entries}
        if len(files) != len(entries):
            raise CacheError(f"{where} is not valid: a path is listed twice")
        for e in entries:
            parent = e.relpath.rpartition("/")[0]
            while parent:
                if parent in files:
                    raise CacheError(f"{where} is not valid: '{parent}' is both a file and a directory")
                parent = parent.rpartition("/")[0]
        return cls(entries)


def _entry(row: object, where: str) -> TreeEntry:
    if not isinstance(row, dict):
        raise CacheError(f"{where} is not valid: each entry must be a mapping")
    try:
        relpath = check_relpath(row.get("relpath"), source=where)
    except UnsafePathError as exc:
        raise CacheError(exc.message) from None
    oid, size, isexec = row.get("hash"), row.get("size"), row.get("isexec", False)
    if not isinstance(oid, str) or not is_valid_oid(oid) or is_dir_oid(oid):
        raise CacheError(f"{where}: entry '{relpath}' has no valid file oid")
    if not is_count(size) or not isinstance(isexec, bool):
        raise CacheError(f"{where}: entry '{relpath}' needs an integer 'size' and a boolean 'isexec'")
    return TreeEntry(relpath, Oid(oid), size, isexec)


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
