"""Directory manifests: the sorted file list of a directory, stored as one object named `<hash>.dir`.

A tree keeps its entries in columns (paths, packed 16-byte oids, sizes, exec bits) rather than
as one object per file, so a million-file directory costs about 110 bytes a file in memory
instead of about 500; `TreeEntry` values are made on access. Its canonical bytes are produced
in chunks (`iter_bytes`: the oid and the stored object never need them whole) and parsed by a
fast path over the canonical form that falls back to `json` for anything else, so the errors a
hostile manifest gets are exactly those of the plain parser.
"""

from __future__ import annotations

import bisect
import json
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import TypeVar, cast, overload

from pipeline_engine.core.hashing import DIR_SUFFIX, Oid, is_dir_oid, new_hasher
from pipeline_engine.core.layout import is_valid_oid
from pipeline_engine.core.pathgate import all_plain, check_relpath
from pipeline_engine.core.record import is_count
from pipeline_engine.errors import CacheError, PipeError, UnsafePathError

__all__ = ["Row", "Tree", "TreeDiff", "TreeEntry", "count_entries", "diff_trees", "segment_of"]

_OID_BYTES = 16
# Entries per chunk of canonical bytes: about 0.5 MiB of text.
_CHUNK = 4096
_ROW = '{"hash":"%s","isexec":%s,"relpath":%s,"size":%d}'
# The fields of one entry as the writer lays them out; whatever else a row holds is caught by
# writing the parsed tree back and comparing (see `_parse_canonical`).
_LENIENT_ROW = re.compile(
    rb'\{"hash":"([0-9a-f]{32})","isexec":(true|false),"relpath":"([^"\\]*(?:\\.[^"\\]*)*)","size":([0-9]{1,19})\}'
)
_BOUNDARY = b'},{"hash":"'
# Where every row starts: `{"hash":"` cannot occur inside a JSON string (its quotes would be escaped).
_ROW_START = b'{"hash":"'


_V = TypeVar("_V")
#: One file as a plain tuple: (relpath, oid, exec bit); see `Tree.rows`.
Row = tuple[str, Oid, bool]


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file of a directory: POSIX path relative to the directory, oid, size, exec bit."""

    relpath: str
    oid: Oid
    size: int
    isexec: bool = False


class Tree:
    """A directory's content; entries are sorted by relpath, so equal trees have equal bytes.

    `Tree(entries)` keeps the order given (`from_entries` sorts). Entry oids are file oids (32
    lowercase hex digits). Immutable.
    """

    __slots__ = ("_exec", "_oid", "_oids", "_paths", "_sizes", "_sorted")

    def __init__(self, entries: Iterable[TreeEntry] = ()) -> None:
        rows = list(entries)
        self._init(
            [e.relpath for e in rows], _pack_oids([e.oid for e in rows]),
            array("q", [e.size for e in rows]), bytes(bool(e.isexec) for e in rows),
        )

    def _init(self, paths: list[str], oids: bytes, sizes: array[int], isexec: bytes) -> None:
        assert len(oids) == _OID_BYTES * len(paths) == _OID_BYTES * len(sizes) == _OID_BYTES * len(isexec)
        self._paths = paths
        self._oids = oids
        self._sizes = sizes
        self._exec = isexec
        self._oid: Oid | None = None
        self._sorted = all(a < b for a, b in zip(paths, paths[1:]))

    @classmethod
    def from_columns(
        cls, paths: list[str], oids: Sequence[str] | bytes, sizes: Iterable[int], isexec: Iterable[bool | int]
    ) -> Tree:
        """A tree from parallel columns, in the order given (sorted by path for a canonical tree).

        `oids` are file oids, or those oids packed (16 bytes each, `bytes.fromhex`). `paths` is
        kept, not copied: the caller hands it over. Raises ValueError when an oid is not a file oid.
        """
        tree = cls.__new__(cls)
        packed = bytes(oids) if isinstance(oids, (bytes, bytearray)) else _pack_oids(oids)
        sizes = sizes if isinstance(sizes, array) and sizes.typecode == "q" else array("q", sizes)
        bits = isexec if isinstance(isexec, bytes) and not isexec.translate(None, b"\x00\x01") else bytes(bool(x) for x in isexec)
        tree._init(paths, packed, sizes, bits)
        return tree

    @classmethod
    def from_entries(cls, entries: Iterable[TreeEntry]) -> Tree:
        """Build a tree, sorting the entries into canonical order."""
        return cls(sorted(entries, key=lambda e: e.relpath))

    # -- reading ---------------------------------------------------------------------------------

    @property
    def entries(self) -> Sequence[TreeEntry]:
        """The entries in order, made on access (a view: nothing is copied)."""
        return _Entries(self)

    def paths(self) -> Sequence[str]:
        """The relpaths in order (no entries are made)."""
        return self._paths

    def columns(self) -> tuple[list[str], bytes, array[int], bytes]:
        """The tree's own columns (not copies): paths, oids packed 16 bytes each, sizes, exec bits
        (one byte each); `from_columns` takes them back."""
        return self._paths, self._oids, self._sizes, self._exec

    def entry(self, i: int) -> TreeEntry:
        """The `i`-th entry."""
        return TreeEntry(
            self._paths[i], Oid(self._oids[i * _OID_BYTES:(i + 1) * _OID_BYTES].hex()), self._sizes[i],
            bool(self._exec[i]),
        )

    def rows(self) -> Sequence[Row]:
        """The entries as plain `(relpath, oid, isexec)` rows, for code that touches every file
        (checkout): a view whose slices are made from the columns at a fraction of the cost of
        `TreeEntry` values, and never all at once."""
        return _Rows(self)

    def _rows(self, start: int, end: int) -> list[Row]:
        hexed = self._oids[start * _OID_BYTES:end * _OID_BYTES].hex()
        oids = [cast(Oid, hexed[k:k + 32]) for k in range(0, len(hexed), 32)]
        return list(zip(self._paths[start:end], oids, map(bool, self._exec[start:end])))

    def oids(self) -> Iterator[Oid]:
        """The file oids in entry order (with repeats)."""
        hexed = self._oids.hex()
        return (Oid(hexed[i:i + 32]) for i in range(0, len(hexed), 32))

    def fanouts(self) -> set[str]:
        """The store's fan-out directory names (first two hex digits) of the file oids."""
        return {f"{b:02x}" for b in set(self._oids[::_OID_BYTES])}

    def __len__(self) -> int:
        return len(self._paths)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        return (self._paths, self._oids, self._sizes, self._exec) == (
            other._paths, other._oids, other._sizes, other._exec
        )

    def __hash__(self) -> int:
        return hash(self.oid)

    def __repr__(self) -> str:
        return f"Tree({len(self)} entries)"

    @property
    def oid(self) -> Oid:
        """The manifest's oid: the hash of its canonical bytes plus `.dir`."""
        if self._oid is None:
            h = new_hasher()
            for chunk in self.iter_bytes():
                h.update(chunk)
            self._oid = Oid(h.hexdigest() + DIR_SUFFIX)
        return self._oid

    @property
    def size(self) -> int:
        """Total bytes of all files."""
        return sum(self._sizes)

    def under(self, directory: str) -> list[TreeEntry]:
        """The entries inside sub-directory `directory` (paths still relative to the tree's root).

        In a sorted tree they are one run, found by bisection: no entry outside it is made.
        """
        prefix = directory + "/"
        if not self._sorted:
            return [e for e in self.entries if e.relpath.startswith(prefix)]
        first = bisect.bisect_left(self._paths, prefix)
        end = bisect.bisect_left(self._paths, directory + "0")  # '0' sorts right after '/'
        return [self.entry(i) for i in range(first, end)]

    def by_path(self) -> Mapping[str, TreeEntry]:
        """Entries keyed by relpath (a view; lookups bisect the sorted paths)."""
        return _ByPath(self)

    # -- canonical bytes -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical JSON: one object per entry, keys sorted, no whitespace (as `json.dumps` makes it)."""
        return b"".join(self.iter_bytes())

    def iter_bytes(self) -> Iterator[bytes]:
        """`to_bytes` in chunks of about half a MiB, for hashing or writing without holding it whole."""
        n = len(self._paths)
        if n == 0:
            yield b"[]"
            return
        for start in range(0, n, _CHUNK):
            end = min(n, start + _CHUNK)
            hexed = self._oids[start * _OID_BYTES:end * _OID_BYTES].hex()
            paths, sizes, isexec = self._paths, self._sizes, self._exec
            rows = ",".join([
                _ROW % (hexed[(i - start) * 32:(i - start + 1) * 32], "true" if isexec[i] else "false",
                        encode_basestring_ascii(paths[i]), sizes[i])
                for i in range(start, end)
            ])
            yield ("[" if start == 0 else ",").encode() + rows.encode("ascii") + (b"]" if end == n else b"")

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
        fast = _parse_canonical(data, where)
        return fast if fast is not None else _parse_json(data, where)


def _pack_oids(oids: Sequence[str]) -> bytes:
    joined = "".join(oids)
    try:
        packed = bytes.fromhex(joined)
    except ValueError:
        packed = b""
    if len(packed) != _OID_BYTES * len(oids) or packed.hex() != joined:
        bad = next((o for o in oids if not is_valid_oid(o) or is_dir_oid(o)), joined)
        raise ValueError(f"'{bad}' is not a file oid")
    return packed


def _parse_canonical(data: bytes, where: str) -> Tree | None:
    """The tree of a manifest in canonical form with sorted, unique, safe paths; None for anything else.

    Rows are pulled out by a lenient pattern a chunk at a time; the tree is then written back
    and compared with `data`, so only bytes the writer itself would produce are accepted here.
    None sends the bytes to the json parser, which accepts or refuses them exactly as before.
    """
    if data == b"[]":
        return Tree()
    if not (data.startswith(b'[{"hash":"') and data.endswith(b"}]")):
        return None
    paths: list[str] = []
    oids = bytearray()
    sizes = array("q")
    isexec = bytearray()
    try:
        for piece in _pieces(data):
            rows = _LENIENT_ROW.findall(piece)
            oids += bytes.fromhex(b"".join(r[0] for r in rows).decode("ascii"))
            sizes.extend(int(r[3]) for r in rows)
            isexec.extend(r[1] == b"true" for r in rows)
            got = [r[2].decode("ascii") if b"\\" not in r[2] else json.loads(b'"' + r[2] + b'"') for r in rows]
            if not all_plain(got) and any(check_relpath(p, source=where) != p for p in got):
                return None
            paths += got
    except (PipeError, ValueError, OverflowError):
        return None
    if not all(a < b for a, b in zip(paths, paths[1:])) or _file_and_dir(paths):
        return None  # the json parser keeps the order given and names the repeated or clashing path
    tree = Tree.__new__(Tree)
    tree._init(paths, bytes(oids), sizes, bytes(isexec))
    view, pos = memoryview(data), 0
    for chunk in tree.iter_bytes():
        if view[pos:pos + len(chunk)] != chunk:
            return None
        pos += len(chunk)
    return tree if pos == len(data) else None


def count_entries(data: bytes) -> int:
    """The number of entries of canonical manifest bytes (counted, not parsed)."""
    return data.count(_ROW_START)


def segment_of(data: bytes, prefix: str, *, oid: str = "") -> Tree | None:
    """The entries of canonical manifest `data` directly inside sub-directory `prefix` (`""` or
    `"a/b/"`), found by bisection over its sorted rows: a million-entry manifest is not parsed
    to read the thousand entries of one directory. Each entry read passes the path gate.

    None when `data` is not canonical around there (the caller parses it whole and gets the
    plain parser's answer); valid only for bytes checked against their oid.
    """
    where = f"directory manifest '{oid}'"
    try:
        start = _first_row(data, prefix) if prefix else 1
        end = _first_row(data, prefix[:-1] + "0") if prefix else len(data) - 1  # '0' sorts right after '/'
        if start is None or end is None or not data.startswith(b"[") or start > end:
            return None
        piece = data[start:end]
        rows = _LENIENT_ROW.findall(piece)
        paths = [r[2].decode("ascii") if b"\\" not in r[2] else json.loads(b'"' + r[2] + b'"') for r in rows]
        sizes = array("q", [int(r[3]) for r in rows])
    except (ValueError, OverflowError):
        return None
    back = ",".join(_ROW % (r[0].decode("ascii"), r[1].decode("ascii"), encode_basestring_ascii(p), n)
                    for r, p, n in zip(rows, paths, sizes, strict=True))
    if piece.rstrip(b",").rstrip(b"]") != back.encode("ascii") or not all(a < b for a, b in zip(paths, paths[1:])):
        return None  # not rows as the writer lays them out, or not sorted
    try:  # every row read, not only those kept: a manifest naming an unsafe path anywhere is not read
        if any(check_relpath(p, source=where) != p for p in paths):
            return None
    except PipeError:
        return None
    keep = [i for i, p in enumerate(paths) if "/" not in p[len(prefix):]]
    return Tree.from_columns([paths[i] for i in keep], b"".join(bytes.fromhex(rows[i][0].decode()) for i in keep),
                             [sizes[i] for i in keep], [rows[i][1] == b"true" for i in keep])


def _first_row(data: bytes, key: str) -> int | None:
    """The offset of the first row of sorted canonical manifest `data` whose path is >= `key`
    (the offset of the closing `]` when there is none); None when a row there cannot be read."""
    end = len(data) - 1
    lo, hi = 1, end
    while lo < hi:
        mid = (lo + hi) // 2
        row = data.find(_ROW_START, mid, end)
        if row < 0:
            hi = mid
            continue
        m = _LENIENT_ROW.match(data, row)
        if m is None:
            return None
        raw = m.group(3)
        path = raw.decode("ascii") if b"\\" not in raw else json.loads(b'"' + raw + b'"')
        if path >= key:
            hi = mid
        else:
            lo = row + 1
    row = data.find(_ROW_START, lo, end)
    return end if row < 0 else row


def _pieces(data: bytes, size: int = 1 << 18) -> Iterator[bytes]:
    """`data` (a canonical manifest) cut between rows into pieces of about `size` bytes.

    `},{"hash":"` cannot occur inside a JSON string (its quote would be escaped), so it is always
    a boundary between two rows.
    """
    start = 0
    while start < len(data):
        cut = data.find(_BOUNDARY, start + size)
        end = len(data) if cut < 0 else cut + 1
        yield data[start:end]
        start = end


def _file_and_dir(paths: list[str]) -> bool:
    """True when a path of the sorted list is also the parent directory of another one."""
    dirs: set[str] = set()
    for p in paths:
        parent = p.rpartition("/")[0]
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    for d in dirs:
        i = bisect.bisect_left(paths, d)
        if i < len(paths) and paths[i] == d:
            return True
    return False


def _parse_json(data: bytes, where: str) -> Tree:
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
    return Tree(entries)


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


class _View(Sequence[_V]):
    """A tree's files as a sequence, each item made when it is read (`_made`, a range at a time)."""

    __slots__ = ("_tree",)

    def __init__(self, tree: Tree) -> None:
        self._tree = tree

    def __len__(self) -> int:
        return len(self._tree)

    def _made(self, r: range) -> Sequence[_V]:
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> _V: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[_V]: ...

    def __getitem__(self, i: int | slice) -> _V | Sequence[_V]:
        if isinstance(i, slice):
            return self._made(range(*i.indices(len(self))))
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("tree entry index out of range")
        return self._made(range(i, i + 1))[0]


class _Entries(_View[TreeEntry]):
    """A tree's entries as a sequence, each `TreeEntry` made when it is read."""

    __slots__ = ()

    def _made(self, r: range) -> Sequence[TreeEntry]:
        return tuple(self._tree.entry(j) for j in r)

    def __iter__(self) -> Iterator[TreeEntry]:
        t = self._tree
        return (
            TreeEntry(p, o, s, bool(x)) for p, o, s, x in zip(t._paths, t.oids(), t._sizes, t._exec, strict=True)
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Entries):
            return self._tree == other._tree
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._tree)


class _Rows(_View[Row]):
    """A tree's files as `Row`s, made from the columns a slice at a time."""

    __slots__ = ()

    def _made(self, r: range) -> Sequence[Row]:
        if r.step == 1:
            return self._tree._rows(r.start, max(r.start, r.stop))
        return [self._tree._rows(j, j + 1)[0] for j in r]

    def __iter__(self) -> Iterator[Row]:
        for start in range(0, len(self), _CHUNK):
            yield from self._tree._rows(start, start + _CHUNK)


class _ByPath(Mapping[str, TreeEntry]):
    """A tree's entries keyed by relpath: a bisect over the sorted paths (a dict for an unsorted tree)."""

    __slots__ = ("_index", "tree")

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._index: dict[str, int] | None = (
            None if tree._sorted else {p: i for i, p in enumerate(tree._paths)}
        )

    def position(self, path: str) -> int | None:
        """The index of `path` in the tree, or None."""
        if self._index is not None:
            return self._index.get(path)
        paths = self.tree._paths
        i = bisect.bisect_left(paths, path)
        return i if i < len(paths) and paths[i] == path else None

    def __getitem__(self, path: str) -> TreeEntry:
        i = self.position(path) if isinstance(path, str) else None
        if i is None:
            raise KeyError(path)
        return self.tree.entry(i)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.position(path) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.tree._paths)

    def __len__(self) -> int:
        return len(self.tree)


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
    """Compare two trees given as relpath -> entry mappings (`Tree.by_path()`, or any mapping)."""
    if isinstance(old, _ByPath) and isinstance(new, _ByPath) and old.tree._sorted and new.tree._sorted:
        return _merge_diff(old.tree, new.tree)
    added = sorted(p for p in new if p not in old)
    deleted = sorted(p for p in old if p not in new)
    modified = sorted(
        p for p, e in new.items() if p in old and (old[p].oid != e.oid or old[p].isexec != e.isexec)
    )
    return TreeDiff(tuple(added), tuple(modified), tuple(deleted))


def _merge_diff(old: Tree, new: Tree) -> TreeDiff:
    """`diff_trees` of two sorted trees by one merge of their path columns: no entry is made."""
    added: list[str] = []
    modified: list[str] = []
    deleted: list[str] = []
    a, b = old._paths, new._paths
    i = j = 0
    while i < len(a) and j < len(b):
        pa, pb = a[i], b[j]
        if pa == pb:
            if (
                old._exec[i] != new._exec[j]
                or old._oids[i * _OID_BYTES:(i + 1) * _OID_BYTES] != new._oids[j * _OID_BYTES:(j + 1) * _OID_BYTES]
            ):
                modified.append(pa)
            i += 1
            j += 1
        elif pa < pb:
            deleted.append(pa)
            i += 1
        else:
            added.append(pb)
            j += 1
    deleted.extend(a[i:])
    added.extend(b[j:])
    return TreeDiff(tuple(added), tuple(modified), tuple(deleted))
