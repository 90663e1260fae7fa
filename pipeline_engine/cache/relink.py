"""After `add` copied files into the cache: replace the workspace copies by links to their objects
when the preferred cache type shares storage (hardlink, symlink), as DVC does after `dvc add`."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Sequence
from pathlib import Path

from pipeline_engine.cache.link import SHARING_TYPES, LinkType
from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.place import Placer
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.parallel import map_chunked

__all__ = ["relink"]


def relink(
    store: ObjectStore,
    memo: HashMemo | None,
    files: Sequence[tuple[str, Path, Oid, bool]],
    link_types: Sequence[LinkType],
    fresh: Collection[str],
) -> None:
    """Replace workspace copies by links when the preferred link type shares storage.

    `fresh` objects were hashed as they were copied in by this command; others are verified
    first, and one found corrupt is replaced by the workspace copy (which hashes to its oid).
    """
    if not link_types or link_types[0] not in SHARING_TYPES:
        return
    placer = Placer(store, memo, link_types, trusted=fresh)
    # Executables stay copies (see Placer); files already linked to their object (adding a
    # linked directory again) need neither verifying nor linking.
    todo = [f for f in files if not f[3] and not _is_linked(f[1], store.path_of(f[2]))]
    checked = map_chunked(lambda f: (f, placer.verify(f[2])), todo)
    for (_, path, oid, _), intact in checked:
        if not intact:
            if store.exists(oid):
                store.quarantine(oid)
            store.put(oid, path)
    placed = placer.place_many([(os.fspath(path), oid, False) for _, path, oid, _ in todo])
    if memo is not None:
        memo.put_linked((rel, st, oid) for (rel, _, oid, _), st in zip(todo, placed) if st is not None)


def _is_linked(path: Path, obj: Path) -> bool:
    """True when `path` is a hardlink of `obj` or a symlink to it."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return os.readlink(path) == str(obj)
        obj_st = os.stat(obj)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (obj_st.st_dev, obj_st.st_ino)
