"""Where packed objects are: oid -> (pack, offset, length) for every object of a remote's packs, compactly.

A million packed objects must not cost a `Loc` object each: the map keeps one int per object and
makes the `Loc` on access. Objects two pushes packed at once are in two packs: every place is kept.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

__all__ = ["Loc", "LocMap"]


@dataclass(frozen=True, slots=True)
class Loc:
    """Where a packed object is: its pack's name, byte offset and length."""

    pack: str
    offset: int
    length: int


class LocMap(MutableMapping[str, Loc]):
    """oid -> Loc, kept as one int per object (pack number, offset and length packed together).

    A `Loc` object per packed object (with its two ints) cost ~110 bytes: ~110 MB for a million
    objects; the `Loc` is made on access instead. An object may be in several packs (two pushes
    of the same objects at once): `add` keeps every place, the map shows the first, and the
    object stays while any pack holding it does (`drop_pack`).
    """

    __slots__ = ("_extra", "_map", "_names", "_numbers")

    _PACK_BITS = 24
    _LENGTH_BITS = 40

    def __init__(self) -> None:
        self._names: list[str] = []
        self._numbers: dict[str, int] = {}
        self._map: dict[str, int] = {}
        self._extra: dict[str, list[int]] = {}  # oid -> its places in other packs (rare)

    def _loc(self, v: int) -> Loc:
        pack_mask, length_mask = (1 << self._PACK_BITS) - 1, (1 << self._LENGTH_BITS) - 1
        return Loc(self._names[v & pack_mask], v >> (self._PACK_BITS + self._LENGTH_BITS),
                   (v >> self._PACK_BITS) & length_mask)

    def _value(self, loc: Loc) -> int:
        number = self._numbers.get(loc.pack)
        if number is None:
            number = self._numbers[loc.pack] = len(self._names)
            self._names.append(loc.pack)
        assert number < 1 << self._PACK_BITS and 0 <= loc.length < 1 << self._LENGTH_BITS and loc.offset >= 0
        return (loc.offset << (self._PACK_BITS + self._LENGTH_BITS)) | (loc.length << self._PACK_BITS) | number

    def __getitem__(self, oid: str) -> Loc:
        return self._loc(self._map[oid])

    def __setitem__(self, oid: str, loc: Loc) -> None:
        self._map[oid] = self._value(loc)
        self._extra.pop(oid, None)

    def add(self, oid: str, loc: Loc) -> None:
        """Record one more place of `oid`; a place in the same pack replaces the one known there."""
        value = self._value(loc)
        old = self._map.get(oid)
        mask = (1 << self._PACK_BITS) - 1
        if old is None or old & mask == value & mask:
            self._map[oid] = value
            return
        others = [v for v in self._extra.get(oid, ()) if v & mask != value & mask]
        self._extra[oid] = [*others, value]

    def places(self, oid: str) -> list[Loc]:
        """Every pack place of `oid` (the one the map shows first); [] when in no pack."""
        v = self._map.get(oid)
        return [] if v is None else [self._loc(v), *(self._loc(x) for x in self._extra.get(oid, ()))]

    def duplicates(self) -> set[str]:
        """The oids held by more than one pack."""
        return set(self._extra)

    def drop_pack(self, pack: str) -> None:
        """Forget every place in `pack`; an object also in another pack moves there."""
        number = self._numbers.get(pack)
        if number is None:
            return
        mask = (1 << self._PACK_BITS) - 1
        for oid, others in list(self._extra.items()):
            kept = [v for v in others if v & mask != number]
            if kept:
                self._extra[oid] = kept
            else:
                del self._extra[oid]
        for oid in [o for o, v in self._map.items() if v & mask == number]:
            others = self._extra.pop(oid, [])
            if others:
                self._map[oid] = others[0]
                if others[1:]:
                    self._extra[oid] = others[1:]
            else:
                del self._map[oid]

    def by_pack(self) -> dict[str, dict[str, Loc]]:
        """pack name -> its objects (oid -> Loc), every place counted."""
        by: dict[str, dict[str, Loc]] = {}
        for oid, v in self._map.items():
            loc = self._loc(v)
            by.setdefault(loc.pack, {})[oid] = loc
        for oid, others in self._extra.items():
            for v in others:
                loc = self._loc(v)
                by.setdefault(loc.pack, {})[oid] = loc
        return by

    def __delitem__(self, oid: str) -> None:
        del self._map[oid]
        self._extra.pop(oid, None)

    def __contains__(self, oid: object) -> bool:
        return oid in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)
