"""Removing packed objects: gc's pruning of a remote's packs, and exact removal.

Packs are immutable, so an object leaves a pack only when the whole pack goes: a pack with no live
object is deleted (index first, then pack); a pack whose live objects fill less than `LIVE_SHARE` of
its bytes is repacked (the live objects, read back and verified, go into a new pack, uploaded with
its index before the old index and then the old pack are deleted); a pack still mostly live is left
as it is, dead objects and all, until it falls below the share. A pack without an index is a push
in flight or one a killed push left: removed once older than `ORPHAN_AGE`, reported otherwise.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pipeline_engine.core.fsutil import temp_name
from pipeline_engine.core.hashing import Oid
from pipeline_engine.errors import RemoteError
from pipeline_engine.remote.pack import PackWriter
from pipeline_engine.remote.packed import Loc, Packs

__all__ = ["LIVE_SHARE", "ORPHAN_AGE", "PackPrune", "drop_from_packs", "prune_packs"]

#: A pack whose live objects hold less than this share of its bytes is repacked by gc.
LIVE_SHARE = 0.5
#: A pack without an index older than this (seconds) is removed by gc: no push takes that long
#: between uploading a pack and its index.
ORPHAN_AGE = 3600.0


@dataclass(frozen=True, slots=True)
class PackPrune:
    """What gc did (or would do) to a remote's packs; pack names are `packs/<name>.pack` paths."""

    removed: tuple[Oid, ...] = ()  # packed objects that no longer exist
    deleted: tuple[str, ...] = ()  # packs with no live object
    repacked: tuple[str, ...] = ()  # packs rewritten with only their live objects
    dead_left: int = 0  # dead objects left in packs that are still mostly live
    orphans_removed: tuple[str, ...] = ()  # packs without an index, older than ORPHAN_AGE
    orphans_young: tuple[str, ...] = ()  # packs without an index, kept: a push may be uploading it
    problems: tuple[str, ...] = ()  # unreadable indexes (their packs are left alone)


def prune_packs(packs: Packs, keep: Collection[str], *, dry: bool, orphan_age: float = ORPHAN_AGE) -> PackPrune:
    """Delete or repack the packs whose objects `keep` mostly does not name; remove old orphan packs.

    Raises:
        RemoteError: the remote cannot be listed, read or changed.
    """
    by_pack = packs.rows_by_pack()
    dups = packs.where.duplicates()  # objects two pushes packed at once: kept in one pack only
    removed: list[Oid] = []
    deleted: list[str] = []
    repacked: list[str] = []
    dead_left = 0
    doomed: list[str] = []  # packs deleted or repacked
    held: set[str] = set()  # duplicated live objects a pack that stays still holds
    for name in sorted(by_pack):
        rows = by_pack[name]
        live = {o: loc for o, loc in rows.items() if o in keep}
        if len(live) == len(rows):
            held.update(o for o in live if o in dups)
        elif live and not _mostly_dead(live, rows):
            dead_left += len(rows) - len(live)
            held.update(o for o in live if o in dups)
        else:
            doomed.append(name)
    for name in doomed:  # what goes, before anything changes
        removed.extend(Oid(o) for o in by_pack[name] if o not in keep and _gone(packs, o, dups, doomed))
    for name in doomed:
        rows = by_pack[name]
        live = {o: loc for o, loc in rows.items() if o in keep and o not in held}
        held.update(o for o in live if o in dups)
        (repacked if live else deleted).append(packs.relpath(name))
        if not dry:
            _replace(packs, name, live)
    now = time.time()
    old = [e for e in packs.orphans if e.mtime is not None and now - e.mtime > orphan_age]
    young = [e for e in packs.orphans if e not in old]
    if not dry:
        for entry in old:
            packs.delete_file(entry.name)
        for stray in packs.strays:  # an index whose pack is gone counts for nothing
            packs.delete_file(f"{stray}.idx")
    still = packs.where if not dry else {}
    return PackPrune(
        tuple(sorted({o for o in removed if o not in still})),
        tuple(deleted),
        tuple(repacked),
        dead_left,
        tuple(f"{packs.dir.rpartition('/')[2]}/{e.name}" for e in old),
        tuple(f"{packs.dir.rpartition('/')[2]}/{e.name}" for e in young),
        tuple(str(p) for p in packs.problems.values()),
    )


def drop_from_packs(packs: Packs, doomed: Collection[str]) -> None:
    """Make every object of `doomed` leave the packs: each pack holding one is rewritten or deleted.

    Raises:
        RemoteError: the remote cannot be read or changed.
    """
    for name, rows in sorted(packs.rows_by_pack().items()):
        if any(o in doomed for o in rows):
            _replace(packs, name, {o: loc for o, loc in rows.items() if o not in doomed})


def _gone(packs: Packs, oid: str, dups: Collection[str], doomed: Collection[str]) -> bool:
    """True when every pack holding `oid` is deleted or repacked (a pack that stays keeps its dead objects)."""
    return oid not in dups or all(loc.pack in doomed for loc in packs.where.places(oid))


def _mostly_dead(live: Mapping[str, Loc], rows: Mapping[str, Loc]) -> bool:
    total = sum(loc.length for loc in rows.values())
    if total == 0:  # only empty objects: count them instead
        return len(live) < LIVE_SHARE * len(rows)
    return sum(loc.length for loc in live.values()) < LIVE_SHARE * total


def _replace(packs: Packs, name: str, live: Mapping[str, Loc]) -> None:
    """Upload a new pack of `live` (if any), then delete the old index, then the old pack."""
    if live and not _repack(packs, name, live):
        return
    packs.delete(name)


def _repack(packs: Packs, name: str, live: Mapping[str, Loc]) -> bool:
    """Upload the new pack and its index; False when it would be the old pack again (only empty objects died)."""
    work = packs.site.work_dir
    work.mkdir(parents=True, exist_ok=True)
    old = work / temp_name(".pack")
    writer = PackWriter(work)
    try:
        packs.fetch_whole(name, old)
        for oid in sorted(live):
            loc = live[oid]
            wrong = writer.add(oid, old, offset=loc.offset, length=loc.length)
            if wrong is not None:
                raise RemoteError(
                    f"{packs.site.label}: object '{oid}' in pack '{packs.relpath(name)}' is corrupt "
                    f"(it hashes to '{wrong}'); the pack was left as it is",
                    hint="push the object again from a clone that has it, then rerun 'pipe gc --cloud'",
                )
        index = writer.finish()
        if index.name == name:
            return False
        try:
            packs.upload(writer.path, index)
        except packs.site.errors as exc:
            raise RemoteError(f"{packs.site.label}: cannot upload the repacked '{packs.relpath(index.name)}': {exc}") from exc
    except OSError as exc:
        raise RemoteError(f"{packs.site.label}: cannot repack '{packs.relpath(name)}': {exc}") from exc
    finally:
        writer.abort()
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return True
