"""Checking out a new directory while its objects still arrive: its files go into a temporary
directory beside its path, which is renamed into place once every file is there.

`pipe pull` into a fresh clone places each fetched chunk's files while the next chunk downloads
(`index/pullplace.py`). Until its last file is placed the out does not exist at its path, so an
out whose objects do not all arrive (missing or corrupt on the remote) is discarded whole: the
workspace never shows half an out. The temporary directory is a `temp_name` in the nearest
existing ancestor of the out's path (no parent directory is created before the out is complete,
and the final rename never crosses a filesystem), so a killed pull's leftover is removed by the
next command's sweep (`core.tempsweep`).

Placing is `cache.place.Placer`'s (verified objects only, link types, read-only objects for
links); each file placed is remembered in the hash memo by its final path, as checkout does, so
the next `status` does not read it.
"""

from __future__ import annotations

import contextlib
import os
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path

from pipeline_engine.cache.checkout import CheckoutResult, PathList
from pipeline_engine.cache.link import LinkType
from pipeline_engine.cache.memo import FileStamp, HashMemo, trusted_from_ns
from pipeline_engine.cache.place import Placer
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.cache.workdirs import make_dirs
from pipeline_engine.core.fsutil import remove_path, temp_name
from pipeline_engine.core.hashing import Oid

__all__ = ["OidIndex", "StagedDir"]


class StagedDir:
    """Directory out `relpath` (manifest `oid`, `tree`) being placed under a temporary directory.

    Not thread-safe: one thread places, publishes or discards it.
    """

    def __init__(
        self, store: ObjectStore, memo: HashMemo, link_types: Sequence[LinkType], root: Path, relpath: str,
        oid: str, tree: Tree,
    ) -> None:
        """Create the temporary directory. `root / relpath` must not exist and must have passed
        the path gate (`resolve_in_project`).

        Raises:
            OSError: the temporary directory cannot be created.
        """
        self.store = store
        self.memo = memo
        self.link_types = tuple(link_types)
        self.relpath = relpath
        self.oid = oid
        self.tree = tree
        self.final = root / relpath
        self.remaining = len(tree)  # files not placed yet
        anchor = self.final.parent
        while not anchor.is_dir():
            anchor = anchor.parent
        self.temp = anchor / temp_name()
        self.temp.mkdir()
        self._made: set[str] = {""}
        self._unrecorded: list[tuple[str, FileStamp, Oid]] = []
        self.published = False
        self.discarded = False

    @property
    def is_complete(self) -> bool:
        """True when every file of the tree is placed (and the directory was not discarded)."""
        return self.remaining == 0 and not self.discarded

    def place(self, positions: Sequence[int], *, trusted: Collection[str] = (),
              advance: Callable[[int], None] | None = None) -> None:
        """Place the files at `positions` of the tree; objects in `trusted` were verified by this command.

        A file whose object proves corrupt is not placed (the placer quarantines the object), so
        the out never becomes complete.

        Raises:
            ObjectNotFoundError, CacheError: as `Placer.place_many`; OSError: a full disk, say.
        """
        if not positions or self.discarded or self.published:
            return
        entries = [self.tree.entry(i) for i in positions]
        dirs = {e.relpath.rpartition("/")[0] for e in entries} - self._made
        if dirs:
            make_dirs(self.temp, self.relpath, dirs, force=False)
            self._made |= {p for d in dirs for p in _parents(d)}
        prefix = os.fspath(self.temp) + os.sep
        placer = Placer(self.store, self.memo, self.link_types, trusted=trusted)
        stamps = placer.place_many([(prefix + e.relpath, e.oid, e.isexec) for e in entries], advance=advance)
        rows = [(f"{self.relpath}/{e.relpath}", st, e.oid) for e, st in zip(entries, stamps) if st is not None]
        self.remaining -= len(rows)
        # Remembered once out of the memo's racy window (a younger stamp is kept as "never
        # trusted", and the next status would hash the file again): a batch or two later.
        self._unrecorded += rows
        now = time.time_ns()
        ready = [r for r in self._unrecorded if trusted_from_ns(r[1].mtime_ns) <= now]
        if ready:
            self._unrecorded = [r for r in self._unrecorded if trusted_from_ns(r[1].mtime_ns) > now]
            self.memo.put_linked(ready)

    def publish(self) -> CheckoutResult | None:
        """Rename the complete directory into place; None (and discarded) when something appeared at its path.

        Raises:
            OSError: the out's parent directories cannot be created.
        """
        assert self.is_complete
        if os.path.lexists(self.final):
            self.discard()
            return None
        self.final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.temp, self.final)  # fails on anything but a path made an empty directory meanwhile
        except OSError:
            self.discard()
            return None
        self.published = True
        self.memo.put_placed([(self.relpath, self.oid)])  # its last batch of files: `record`
        return CheckoutResult(self.relpath, written=PathList(self.relpath, self.tree.paths()))

    def record(self, *, settle: bool = False) -> None:
        """Remember the files placed last in the hash memo (the others are already).

        Their mtimes are moments old, inside the memo's racy window, where a record is kept as
        "never trusted" and the next `status` would hash them again. With `settle`, first wait
        until the newest is out of that window (at most the window, 50 ms), as every earlier
        file was before it was recorded.
        """
        if settle and self._unrecorded:
            newest = max(st.mtime_ns for _, st, _ in self._unrecorded)
            wait_ns = trusted_from_ns(newest) - time.time_ns()
            if wait_ns > 0:
                time.sleep(min(wait_ns, trusted_from_ns(0)) / 1e9)
        if self._unrecorded:
            self.memo.put_linked(self._unrecorded)
            self._unrecorded = []

    def discard(self) -> None:
        """Give the out up: remove the temporary directory (best effort: a leftover is swept by
        the next command). Nothing is placed afterwards."""
        self.discarded = True
        self._unrecorded = []
        with contextlib.suppress(OSError):
            remove_path(self.temp)



def _parents(relpath: str) -> Iterator[str]:
    """`a/b/c`, `a/b`, `a`: the directories `make_dirs` created or checked for `relpath`."""
    while relpath:
        yield relpath
        relpath = relpath.rpartition("/")[0]


class OidIndex:
    """Which (out, position) pairs of several trees hold a given file oid, in ~16 bytes per file.

    A dict keyed by oid would cost ~120 bytes a file (~120 MB for a million); this keeps two
    arrays sorted by a 64-bit key taken from the oid and checks the full oid on a match.
    """

    def __init__(self, trees: Sequence[Tree]) -> None:
        self._trees = list(trees)
        keys: array[int] = array("Q")
        refs: array[int] = array("Q")
        for n, tree in enumerate(self._trees):
            keys.extend(int(oid[:16], 16) for oid in tree.oids())
            refs.extend(range(n << 32, (n << 32) + len(tree)))
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys = array("Q", map(keys.__getitem__, order))
        self._refs = array("Q", map(refs.__getitem__, order))

    def find(self, oids: Iterable[str]) -> dict[int, list[int]]:
        """Tree number -> positions in that tree of the files whose oid is one of `oids`."""
        found: dict[int, list[int]] = {}
        keys, refs, size = self._keys, self._refs, len(self._keys)
        for oid in oids:
            key = int(oid[:16], 16)
            i = bisect_left(keys, key)
            while i < size and keys[i] == key:
                n, pos = divmod(refs[i], 1 << 32)
                if self._trees[n].entry(pos).oid == oid:
                    found.setdefault(n, []).append(pos)
                i += 1
        return found
