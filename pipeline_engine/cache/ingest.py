"""`pipe add`'s way into the store: each file read once, hashed and copied from memory, in
waves committed by a thread of their own, shared between processes for a big tree.

A file is read whole when small (hashed, then written beside its final name) or streamed while
it is hashed when large, so nothing is read twice. Copies go to temporary names in the store and
are handed, a wave of `_WAVE` at a time, to a committing thread (`core.groupcommit`) that flushes
the filesystem once (`syncfs`) and then renames them to their oids: an object under its final
name is complete, and the flush overlaps the copying. With thousands of files the items are
shared between forked processes, one per core (`core.forked`): the Python around each file's
syscalls is what a small-files add costs, and threads cannot run it on two cores at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from pipeline_engine.cache.memo import FileStamp, stamp_of
from pipeline_engine.cache.store import READ_ONLY, Temps, unlink_quietly, write_new
from pipeline_engine.core.forked import fork_jobs, map_forked
from pipeline_engine.core.fsutil import TEMP_PREFIX, shown_path, temp_name
from pipeline_engine.core.groupcommit import GroupCommit
from pipeline_engine.core.hashing import SMALL_FILE, Oid, copy_hashed, hash_bytes, read_small
from pipeline_engine.core.parallel import map_chunked
from pipeline_engine.core.tempsweep import sweep_pid
from pipeline_engine.errors import CacheError, CorruptObjectError

if TYPE_CHECKING:
    from pipeline_engine.cache.store import ObjectStore

__all__ = ["ingest"]

# Copies are handed to the committing thread this many at a time ...
_WAVE = 1024
# ... and the copying waits when this many wait to be committed (bounded bookkeeping on a slow disk).
_MAX_WAITING = 16 * _WAVE
# The files are shared between processes (`core.forked`) when each gets at least this many.
_FORK_MIN = 2000


def ingest(
    store: ObjectStore,
    items: Sequence[tuple[str | os.PathLike[str], FileStamp]],
    *,
    jobs: int = 8,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[Oid], set[Oid]]:
    """Copy workspace files in while hashing them, each stored under the oid its copied bytes have.

    For files whose oid is not known yet (`pipe add`): each is read once, not hashed and then
    copied. `items` are `(file, stamp from the walk)`; a file whose stat data differs from its
    stamp after it was read changed meanwhile: the call fails and nothing of its wave (the
    `_WAVE` files copied together) is stored. The copies go to temporary files in the store,
    handed in waves to a thread that commits them (one `syncfs` makes them durable, then each is
    renamed to its oid, a duplicate is dropped) while the next waves are copied: the flush
    overlaps the copying (`core.groupcommit`). `on_done(nbytes)` after each file.
    Returns the oid of each item, in order, and the oids this call added to the store.

    Raises:
        CorruptObjectError: a file changed while it was being cached (named by path); the
            waves committed before it stay in the store, each object under the oid of its bytes.
        OSError: the disk is full or refuses a write (no partial object is left).
    """
    fans = [f"{i:02x}" for i in range(256 if len(items) >= 64 else min(256, len(items)))]
    for fan in fans:
        store._ensure_fanout(fan)
    # Fan-out directories that hold no object yet (a new cache): what is in them later, this
    # call put there, so a commit needs no stat to tell a duplicate.
    empty = {f for f in fans if _holds_no_object(os.path.join(store.root, f))} if len(fans) == 256 else set()
    n = fork_jobs(len(items), min_per_process=_FORK_MIN)
    if n == 1:
        return _share(store, items, fans, empty, jobs, on_done)
    # One contiguous share per process (files of one directory stay together). A duplicate
    # across shares is renamed twice onto the same object: the same bytes, so harmless.
    bounds = [len(items) * k // n for k in range(n + 1)]
    def share(k: int) -> tuple[list[Oid], set[Oid]]:
        part = items[bounds[k]:bounds[k + 1]]
        return _share(store, part, fans, empty, max(1, jobs // n), on_done if k == 0 else None)

    # A child that dies (the OOM killer) leaves its copies as temporary files in the fan-out directories.
    fan_dirs = [os.path.join(store.root, fan) for fan in fans]
    parts = map_forked(share, n, sweep=lambda pid: sweep_pid(pid, fan_dirs))
    oids: list[Oid] = []
    added: set[Oid] = set()
    for k, (got, new) in enumerate(parts):
        oids += got
        added |= new
        if k and on_done is not None:
            for _, stamp in items[bounds[k]:bounds[k + 1]]:
                on_done(stamp.size)
    return oids, added


def _share(
    store: ObjectStore, items: Sequence[tuple[str | os.PathLike[str], FileStamp]], fans: Sequence[str],
    empty: Collection[str], jobs: int, on_done: Callable[[int], None] | None,
) -> tuple[list[Oid], set[Oid]]:
    """`ingest` of `items` by this process: copied in waves, committed by a thread of its own."""
    oids: list[Oid] = []
    added: set[Oid] = set()  # changed by the committing thread only
    group: GroupCommit[tuple[Oid, str]] = GroupCommit(
        lambda batch: added.update(_commit_wave(store, batch, empty, added)),
        _unlink_temps,
        limit=_MAX_WAITING,
    )
    copied: list[tuple[Oid, str]] = []
    try:
        for start in range(0, len(items), _WAVE):
            copied = _copy_wave(store, items, start, fans, jobs, on_done)
            oids += [oid for oid, _ in copied]
            group.put(copied)
            copied = []
        group.finish()
    except BaseException:  # an interrupt while the last commit runs, too: it ends before this returns
        group.finish(abort=True)
        _unlink_temps(copied)  # a wave an interrupted `put` never took (renamed ones are gone already)
        raise
    return oids, added


def _copy_wave(
    store: ObjectStore, items: Sequence[tuple[str | os.PathLike[str], FileStamp]], start: int,
    fans: Sequence[str], jobs: int, on_done: Callable[[int], None] | None,
) -> list[tuple[Oid, str]]:
    """Copy `items[start:start + _WAVE]` to temporary files in the store; `(oid, temporary)` each.

    A small file is read whole and hashed before its copy is written, so the copy is made in
    its own fan-out directory and renamed within it (a rename across directories takes the
    filesystem's rename lock: the threads would queue on it). A large one is streamed to a
    temporary name spread over the fan-out directories (creating thousands of files in one
    directory serialises on its lock) and renamed once its oid is known.
    """
    temps = Temps()
    root = str(store.root)

    def copy(item: tuple[int, tuple[str | os.PathLike[str], FileStamp]]) -> tuple[Oid, str]:
        i, (src, stamp) = item
        small = stamp.size <= SMALL_FILE
        if small:
            data = read_small(src, stamp.size)
            if len(data) != stamp.size or stamp_of(os.stat(src)) != stamp:
                raise _changed(src)
            oid = hash_bytes(data)
            store._ensure_fanout(oid[:2])
            tmp = f"{root}/{oid[:2]}/{temp_name()}"
        else:
            tmp = f"{root}/{fans[i % len(fans)]}/{temp_name()}"
        if not temps.add(tmp):
            raise CacheError("stopped")  # the wave has failed already: no one sees this
        if small:
            write_new(tmp, data)
        else:
            oid = copy_hashed(src, tmp, mode=READ_ONLY)
        if temps.closed:
            unlink_quietly(tmp)
            raise CacheError("stopped")
        if not small and stamp_of(os.stat(src)) != stamp:
            raise _changed(src)
        if on_done is not None:
            on_done(stamp.size)
        return oid, tmp

    wave = list(enumerate(items[start:start + _WAVE], start))
    try:
        return map_chunked(copy, wave, jobs=jobs)
    except BaseException:
        for tmp in temps.close():
            unlink_quietly(tmp)
        raise


def _commit_wave(
    store: ObjectStore, copied: Sequence[tuple[Oid, str]], empty: Collection[str], added: Collection[Oid]
) -> set[Oid]:
    """Rename temporary files to their oids (after one flush); drop duplicates and the copies
    of objects the store has. `empty`: fan-out directories that held no object before this
    call, which has `added` the objects there since. Returns the oids added."""
    root = str(store.root)
    staged: dict[Oid, tuple[str, str]] = {}
    dropped: list[str] = []
    for oid, tmp in copied:
        final = f"{root}/{oid[:2]}/{oid[2:]}"
        # One stat per object at most, not `missing`'s listing of every fan-out directory: at a
        # million objects each wave would list them all.
        present = oid in added if oid[:2] in empty else os.path.exists(final)
        if oid not in staged and not present:
            staged[oid] = (tmp, final)
            store._ensure_fanout(oid[:2])
        else:
            dropped.append(tmp)
    try:
        store._commit_many(list(staged.values()), jobs=2)
    except BaseException:
        dropped += [tmp for tmp, _ in staged.values()]  # the renamed ones are gone already
        raise
    finally:
        for tmp in dropped:
            unlink_quietly(tmp)
    return set(staged)


def _unlink_temps(copied: Sequence[tuple[Oid, str]]) -> None:
    for _, tmp in copied:
        unlink_quietly(tmp)


def _holds_no_object(fanout_dir: str) -> bool:
    """True when the directory has nothing but temporary files (read up to its first other name)."""
    with os.scandir(fanout_dir) as it:
        return all(entry.name.startswith(TEMP_PREFIX) for entry in it)


def _changed(src: str | os.PathLike[str]) -> CorruptObjectError:
    return CorruptObjectError(
        f"'{shown_path(src)}' changed while it was being cached; nothing was stored for it",
        hint="run the command again once the file is no longer being written",
    )
