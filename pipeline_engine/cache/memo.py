"""The hash memo: remembers file and directory hashes by (path, inode, mtime_ns, size).

It only ever holds hashes pipe computed (by reading the bytes, or by copying them while hashing),
never an oid it assumed. It also remembers which cache objects were verified (re-hashed and found
to match their name) by the object's (inode, mtime_ns, size), so linking an object into the
workspace (hardlink, symlink, reflink) reads it once, not at every checkout.

It also remembers which tracked paths pipe placed in the workspace (checkout wrote them, or add
took them over) and the oid they held, so a later checkout can remove data that no pointer or
lock tracks any more, when it still hashes to that oid (unchanged since, hence in the cache).

It also remembers which directory manifests were found complete in the store (the manifest and
every file it lists present), with a stamp of the store directories that holds them: any object
removed from one of them (gc, quarantine, a manual `rm`) changes that directory's mtime, so the
record is only trusted while the store could not have lost an object it needs.

It also remembers the parsed columns of the last few large directory manifests, by the stat data
of the manifest's object in the store (`cache.manifests`): parsing and checking a 10,000-entry
manifest costs ~15 ms, reading its columns back ~2 ms.

It also remembers, per tracked directory, the manifest it was last compared with a segment at a
time (a segment: the files directly inside one of its sub-directories): which segments that
manifest has, how many files each, and the stat fingerprint each had when its files were exactly
the manifest's. A status after one changed file then compares one segment, not the whole tree.

A file row also verifies a cache object: the row of a hardlink or symlink pipe placed or hashed
holds the object's own stat data, so an object whose stat still equals it is that inode unchanged
since its content was found to be the oid (checkout then needs no separate verification record).

An unchanged file then costs one `stat` instead of a read. A directory is memoised by a
fingerprint of all its files' stat data, so an unchanged tracked tree is neither re-hashed nor
rebuilt. A file modified within the same clock tick as it was hashed would look unchanged, so
entries whose mtime is too close to the moment they were hashed are not recorded ("racy"
entries, as git calls them); they are simply hashed again next time.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_engine.core.hashing import Oid

if TYPE_CHECKING:
    import sqlite3

__all__ = ["FileStamp", "HashMemo", "SegmentMemo", "TreeMemo", "stamp_of", "trusted_from_ns"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    relpath TEXT PRIMARY KEY, ino INTEGER, mtime_ns INTEGER, size INTEGER, oid TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trees (
    relpath TEXT PRIMARY KEY, fingerprint TEXT, oid TEXT, size INTEGER, nfiles INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS verified (
    oid TEXT PRIMARY KEY, ino INTEGER, mtime_ns INTEGER, size INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS placed (
    relpath TEXT PRIMARY KEY, oid TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS complete (
    oid TEXT PRIMARY KEY, fanouts TEXT, stamp TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifests (
    oid TEXT PRIMARY KEY, ino INTEGER, mtime_ns INTEGER, size INTEGER, paths BLOB, oids BLOB, sizes BLOB,
    isexec BLOB, added INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments (
    relpath TEXT, prefix TEXT, oid TEXT, fingerprint TEXT, nfiles INTEGER, PRIMARY KEY (relpath, prefix)
) WITHOUT ROWID;
"""
# Timestamps this close to "now" may still change within the same tick: do not trust them.
_RACY_NS = 50_000_000


@dataclass(frozen=True, slots=True)
class FileStamp:
    """The stat data that identifies one version of a file."""

    ino: int
    mtime_ns: int
    size: int


def stamp_of(st: os.stat_result) -> FileStamp:
    """The memo key part of a stat result."""
    return FileStamp(st.st_ino, st.st_mtime_ns, st.st_size)


def trusted_from_ns(mtime_ns: int) -> int:
    """The moment (`time.time_ns()`) from which a record of a file last modified at `mtime_ns` is
    kept as trusted rather than racy."""
    return mtime_ns + _RACY_NS


@dataclass(frozen=True, slots=True)
class TreeMemo:
    """A memoised directory: the manifest oid and totals for a stat fingerprint."""

    fingerprint: str
    oid: Oid
    size: int
    nfiles: int


@dataclass(frozen=True, slots=True)
class SegmentMemo:
    """One segment of manifest `oid` (its files directly inside sub-directory `prefix`): `nfiles`
    of them, and they were exactly the workspace files while those had stat `fingerprint`
    ("" when unknown: then it never matches)."""

    oid: Oid
    fingerprint: str
    nfiles: int


class HashMemo:
    """SQLite-backed memo in `.pipe/tmp/`; losing it only costs re-hashing."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        # One connection shared by the threads of a parallel repro: every use holds this lock.
        self._lock = threading.RLock()

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, opened (and the schema created) on first use."""
        with self._lock:
            return self._open()

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            import sqlite3  # 25 ms: paid only by commands that hash

            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    db = self._connect()
                except sqlite3.DatabaseError as err:
                    if isinstance(err, sqlite3.OperationalError):
                        raise
                    # Not a database (overwritten, truncated by hand): it is only a memo, so it is
                    # set aside (kept for a look) and a new one started; this costs re-hashing.
                    for suffix in ("", "-wal", "-shm"):
                        with contextlib.suppress(FileNotFoundError):
                            os.replace(f"{self._path}{suffix}", f"{self._path}.corrupt{suffix}")
                    db = self._connect()
            except (OSError, sqlite3.OperationalError) as err:
                if isinstance(err, sqlite3.OperationalError) and not _is_unwritable(err):
                    raise
                # A disk that refuses the memo (full, read-only): this command remembers in memory
                # only. Losing the memo costs re-hashing, never a traceback.
                db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        db = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def get(self, relpath: str, stamp: FileStamp) -> Oid | None:
        """The remembered oid of `relpath` if its stat data is unchanged."""
        with self._lock:
            row = self.db.execute(
                "SELECT ino, mtime_ns, size, oid FROM files WHERE relpath = ?", (relpath,)
            ).fetchone()
        if row is None or FileStamp(row[0], row[1], row[2]) != stamp:
            return None
        return Oid(row[3])

    def get_under(self, prefix: str) -> dict[str, tuple[FileStamp, Oid]]:
        """All remembered files under directory `prefix`, keyed by project-relative path."""
        with self._lock:
            rows = self.db.execute(
                "SELECT relpath, ino, mtime_ns, size, oid FROM files WHERE relpath >= ? AND relpath < ?",
                (prefix + "/", prefix + "0"),  # '0' sorts right after '/'
            ).fetchall()
        return {r[0]: (FileStamp(r[1], r[2], r[3]), Oid(r[4])) for r in rows}

    def iter_under(self, prefix: str, *, page: int = 10_000) -> Iterator[tuple[str, int, int, int, str]]:
        """The remembered files under directory `prefix` in path order, read a page at a time.

        Rows are `(relpath, ino, mtime_ns, size, oid)`, plain tuples: a sorted merge with a walk
        (`cache.scan`) compares a million of them, and memory stays one page, not a dict of every
        file. Each page is read under the lock, so other threads may write between pages.
        """
        after, end = prefix + "/", prefix + "0"  # '0' sorts right after '/'
        op = ">="
        while True:
            with self._lock:
                rows: list[tuple[str, int, int, int, str]] = self.db.execute(
                    "SELECT relpath, ino, mtime_ns, size, oid FROM files "
                    f"WHERE relpath {op} ? AND relpath < ? ORDER BY relpath LIMIT ?",
                    (after, end, page),
                ).fetchall()
            yield from rows
            if len(rows) < page:
                return
            after, op = rows[-1][0], ">"

    def files_between(self, first: str, last: str) -> dict[str, tuple[int, int, int, str]]:
        """The remembered files whose relpath sorts from `first` to `last` (both included), as
        `{relpath: (ino, mtime_ns, size, oid)}`: one query for a chunk of a checkout."""
        with self._lock:
            rows = self.db.execute(
                "SELECT relpath, ino, mtime_ns, size, oid FROM files WHERE relpath >= ? AND relpath <= ?",
                (first, last),
            ).fetchall()
        return {r[0]: r[1:] for r in rows}

    def put_many(self, items: Iterable[tuple[str, FileStamp, Oid]]) -> None:
        """Remember file hashes, skipping racy ones."""
        limit = time.time_ns() - _RACY_NS
        rows = [(p, s.ino, s.mtime_ns, s.size, o) for p, s, o in items if s.mtime_ns < limit]
        if rows:
            with self._transaction():
                self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", rows)

    def put_linked(self, items: Iterable[tuple[str, FileStamp, Oid]]) -> None:
        """`put_many` for files pipe just placed from the cache: a racy one is kept too, with mtime
        -1, so `get` never trusts it but `last_oid` still knows what a hardlink held when it is
        found edited in place right after `pipe add` or checkout."""
        limit = time.time_ns() - _RACY_NS
        rows = [(p, s.ino, s.mtime_ns if s.mtime_ns < limit else -1, s.size, o) for p, s, o in items]
        if rows:
            with self._transaction():
                self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", rows)

    def is_verified(self, oid: str, stamp: FileStamp) -> bool:
        """True when cache object `oid` was verified and its stat data has not changed since."""
        with self._lock:
            row = self.db.execute("SELECT ino, mtime_ns, size FROM verified WHERE oid = ?", (oid,)).fetchone()
        return row is not None and FileStamp(row[0], row[1], row[2]) == stamp

    def last_oid(self, relpath: str, ino: int) -> Oid | None:
        """The oid remembered for `relpath` when it was inode `ino`, whatever its mtime and size since
        (a file changed in place: `cache.linkedit.separate_edit` asks what it held before)."""
        with self._lock:
            row = self.db.execute("SELECT oid FROM files WHERE relpath = ? AND ino = ?", (relpath, ino)).fetchone()
        return Oid(row[0]) if row else None

    def get_verified(self, oids: Collection[str]) -> dict[str, tuple[int, int, int]]:
        """The stat data (ino, mtime_ns, size) each of `oids` had when it was verified (unverified
        ones are left out): one query per 500 oids, for checking out many linked files."""
        wanted = list(oids)
        found: dict[str, tuple[int, int, int]] = {}
        with self._lock:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                rows = self.db.execute(
                    f"SELECT oid, ino, mtime_ns, size FROM verified WHERE oid IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                found.update((r[0], (r[1], r[2], r[3])) for r in rows)
        return found

    def put_verified(self, items: Iterable[tuple[str, FileStamp]]) -> None:
        """Remember objects whose content was just checked against their oid (racy ones are not)."""
        limit = time.time_ns() - _RACY_NS
        rows = [(o, s.ino, s.mtime_ns, s.size) for o, s in items if s.mtime_ns < limit]
        if rows:
            with self._transaction():
                self.db.executemany("INSERT OR REPLACE INTO verified VALUES (?, ?, ?, ?)", rows)

    def put_placed(self, items: Iterable[tuple[str, str]]) -> None:
        """Remember that pipe put (checkout) or took over (add) tracked path `relpath` holding `oid`.

        Rows already remembered are not written again: a checkout that changed nothing (or put
        back what was deleted) then writes nothing at all.
        """
        rows = list(items)
        known: set[tuple[str, str]] = set()
        with self._lock:
            for i in range(0, len(rows), 500):
                chunk = [r[0] for r in rows[i:i + 500]]
                known.update(self.db.execute(
                    f"SELECT relpath, oid FROM placed WHERE relpath IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall())
        rows = [r for r in rows if (r[0], r[1]) not in known]
        if rows:
            with self._transaction():
                self.db.executemany("INSERT OR REPLACE INTO placed VALUES (?, ?)", rows)

    def placed(self) -> dict[str, Oid]:
        """Every tracked path pipe placed, with the oid it held then."""
        with self._lock:
            rows = self.db.execute("SELECT relpath, oid FROM placed").fetchall()
        return {r[0]: Oid(r[1]) for r in rows}

    def drop_placed(self, relpaths: Iterable[str]) -> None:
        """Forget placed paths and any placed path under them (deleted, or handed back to the user)."""
        rows = [(p, p + "/", p + "0") for p in relpaths]  # '0' sorts right after '/'
        if rows:
            with self._transaction():
                self.db.executemany(
                    "DELETE FROM placed WHERE relpath = ? OR (relpath >= ? AND relpath < ?)", rows
                )

    def get_tree(self, relpath: str) -> TreeMemo | None:
        """The memoised manifest of directory `relpath`, whatever its fingerprint."""
        with self._lock:
            row = self.db.execute(
                "SELECT fingerprint, oid, size, nfiles FROM trees WHERE relpath = ?", (relpath,)
            ).fetchone()
        return TreeMemo(row[0], Oid(row[1]), row[2], row[3]) if row else None

    def put_tree(self, relpath: str, memo: TreeMemo, *, newest_mtime_ns: int) -> None:
        """Remember a directory's manifest unless one of its files is racy."""
        if newest_mtime_ns >= time.time_ns() - _RACY_NS:
            return
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO trees VALUES (?, ?, ?, ?, ?)",
                (relpath, memo.fingerprint, memo.oid, memo.size, memo.nfiles),
            )

    def get_complete(self, oid: str) -> tuple[str, str] | None:
        """`(fanouts, stamp)` as `put_complete` recorded them for directory manifest `oid`, or None."""
        with self._lock:
            row = self.db.execute("SELECT fanouts, stamp FROM complete WHERE oid = ?", (oid,)).fetchone()
        return (row[0], row[1]) if row else None

    def put_complete(self, oid: str, fanouts: str, stamp: str, *, newest_mtime_ns: int) -> None:
        """Remember that manifest `oid` and every file it lists were in the store when the store's
        directories `fanouts` had `stamp` (see `cache.workspace.is_cached`); not when racy."""
        if newest_mtime_ns >= time.time_ns() - _RACY_NS:
            return
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO complete VALUES (?, ?, ?)", (oid, fanouts, stamp))

    def get_segments(self, relpath: str) -> dict[str, SegmentMemo]:
        """The segments remembered for directory `relpath`, by prefix (`""`, `"sub/"`, `"sub/deeper/"`).

        They are all of one manifest's segments (`put_segments` replaces the set whole), unless
        the rows were tampered with: a caller checks what it reads from them against the manifest.
        """
        with self._lock:
            rows = self.db.execute(
                "SELECT prefix, oid, fingerprint, nfiles FROM segments WHERE relpath = ?", (relpath,)
            ).fetchall()
        return {r[0]: SegmentMemo(Oid(r[1]), r[2], r[3]) for r in rows}

    def put_segments(self, relpath: str, oid: str, rows: Iterable[tuple[str, str, int, int]], *, whole: bool) -> None:
        """Remember segments `(prefix, fingerprint, nfiles, newest_mtime_ns)` of manifest `oid`.

        `whole`: `rows` are every segment of the manifest and replace what `relpath` had; else they
        update single segments of the same manifest. A fingerprint whose newest file is racy is
        kept as "" (the segment is known, its workspace state is not).
        """
        limit = time.time_ns() - _RACY_NS
        values = [(relpath, p, oid, fp if newest < limit else "", n) for p, fp, n, newest in rows]
        with self._transaction():
            if whole:
                self.db.execute("DELETE FROM segments WHERE relpath = ?", (relpath,))
            self.db.executemany("INSERT OR REPLACE INTO segments VALUES (?, ?, ?, ?, ?)", values)

    def get_manifest(self, oid: str, stamp: FileStamp) -> tuple[bytes, bytes, bytes, bytes] | None:
        """The parsed columns `(paths, oids, sizes, isexec)` remembered for directory manifest `oid`
        while its object in the store still has stat data `stamp` (see `cache.manifests`)."""
        with self._lock:
            row = self.db.execute(
                "SELECT ino, mtime_ns, size, paths, oids, sizes, isexec FROM manifests WHERE oid = ?", (oid,)
            ).fetchone()
        if row is None or FileStamp(row[0], row[1], row[2]) != stamp:
            return None
        return row[3], row[4], row[5], row[6]

    def put_manifest(
        self, oid: str, stamp: FileStamp, columns: tuple[bytes, bytes, bytes, bytes], *, keep: int, entries: int
    ) -> None:
        """Remember manifest `oid`'s parsed columns by its object's `stamp` (not when racy); only the
        `keep` most recently added manifests are kept, and of those only the newest holding
        `entries` entries in all (a million-entry manifest's columns take ~50 MB)."""
        if stamp.mtime_ns >= time.time_ns() - _RACY_NS:
            return
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO manifests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (oid, stamp.ino, stamp.mtime_ns, stamp.size, *columns, time.time_ns()),
            )
            self.db.execute(
                "DELETE FROM manifests WHERE oid IN (SELECT oid FROM (SELECT oid, "
                "ROW_NUMBER() OVER (ORDER BY added DESC) AS k, SUM(length(isexec)) OVER (ORDER BY added DESC) AS n "
                "FROM manifests) WHERE k > ? OR (k > 1 AND n > ?))",
                (keep, entries),
            )

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _transaction(self) -> _Transaction:
        return _Transaction(self)


class _Transaction:
    """Holds the memo's lock for the whole transaction, so threads never interleave one."""

    def __init__(self, memo: HashMemo) -> None:
        self._memo = memo
        self._began = False

    def __enter__(self) -> None:
        import sqlite3

        self._memo._lock.acquire()
        try:
            self._memo.db.execute("BEGIN IMMEDIATE")
            self._began = True
        except sqlite3.OperationalError as err:
            if not _is_unwritable(err):  # unwritable: the body's writes fail alike and are skipped
                self._memo._lock.release()
                raise
        except BaseException:
            self._memo._lock.release()  # never leave the other threads waiting for it
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        import sqlite3

        try:
            db = self._memo.db if self._began else None
            if db is None:
                pass
            elif exc_type is None:
                try:
                    db.execute("COMMIT")
                except sqlite3.OperationalError as err:
                    if not _is_unwritable(err):
                        raise
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
            else:
                with contextlib.suppress(sqlite3.Error):  # sqlite rolls back by itself on a full disk
                    db.execute("ROLLBACK")
        finally:
            self._memo._lock.release()
        # A write the disk refuses (full, read-only) is skipped: losing it only costs re-hashing,
        # and it must not turn a full disk into a traceback (or fail 'pipe cache verify').
        return isinstance(exc, sqlite3.OperationalError) and _is_unwritable(exc)


# sqlite's messages for a database the disk refuses to write (full, read-only, failing).
_UNWRITABLE = ("disk is full", "readonly database", "unable to open database file", "disk i/o error")


def _is_unwritable(err: Exception) -> bool:
    text = str(err).lower()
    return any(m in text for m in _UNWRITABLE)
