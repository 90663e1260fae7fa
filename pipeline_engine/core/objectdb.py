"""ObjectDB: the verbs every object database speaks, the local store (`cache.store`) and each remote alike.

An object database holds content-addressed objects under their oids, in the layout of
`core.layout` (`<2 hex>/<30 hex>`). Both sides use the same words with the same meaning, so a
command moving objects between them reads the same whichever way they go:

| verb                     | meaning                                                              |
|--------------------------|----------------------------------------------------------------------|
| `exists(oid)`            | the object is present (its content is not read)                      |
| `missing(oids)`          | the subset of `oids` that is absent (the one bulk existence question)|
| `put(oid, path)`         | bring the object in from the local file `path`; idempotent           |
| `put_many(items)`        | many `(oid, local path)` at once; returns the failures by oid        |
| `get(oid, dest)`         | copy the object out to the new local file `dest`                     |
| `get_many(items)`        | many `(oid, dest)` at once; returns the failures by oid              |
| `iter_oids()`            | every object present                                                 |
| `remove(oids)`           | delete objects; absent ones are not an error                         |

Failures: `get` of an absent object raises `ObjectNotFoundError` (in bulk: that oid's failure is
one); an object whose bytes do not hash to its oid is never taken in by the local store
(`CorruptObjectError` or `CacheError`, nothing left behind); a remote reports its own trouble as
`RemoteError` naming it. Bulk calls go on past one object's failure and return them all;
`on_done(oid, error)` runs once per object as it ends (progress bars), possibly in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from pipeline_engine.core.hashing import Oid
from pipeline_engine.errors import PipeError

__all__ = ["ObjectDB", "OnDone"]

#: Called once per object when its transfer ends: (oid, None) on success, (oid, error) on failure.
OnDone = Callable[[str, "PipeError | None"], None]


@runtime_checkable
class ObjectDB(Protocol):
    """The shared vocabulary of `ObjectStore` and `Remote` (see the module docstring for each verb)."""

    def exists(self, oid: str) -> bool:
        """True when the object is present."""
        ...

    def missing(self, oids: Collection[str]) -> set[str]:
        """The subset of `oids` that is not present."""
        ...

    def put(self, oid: str, path: Path) -> None:
        """Bring object `oid` in from the local file `path` (nothing changes when it is present)."""
        ...

    def put_many(
        self, items: Sequence[tuple[str, Path]], *, on_done: OnDone | None = None
    ) -> dict[str, PipeError]:
        """Bring many `(oid, local path)` objects in; returns the failures by oid."""
        ...

    def get(self, oid: str, dest: Path) -> None:
        """Copy object `oid` out to the new local file `dest`."""
        ...

    def get_many(
        self, items: Sequence[tuple[str, Path]], *, on_done: OnDone | None = None
    ) -> dict[str, PipeError]:
        """Copy many `(oid, dest)` objects out; returns the failures by oid."""
        ...

    def iter_oids(self) -> Iterator[Oid]:
        """Every object present."""
        ...

    def remove(self, oids: Iterable[str]) -> None:
        """Delete objects; absent ones are not an error."""
        ...
