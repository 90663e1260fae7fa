"""An edit made in place through a hardlink or symlink into the cache changes the object itself.

Objects are read-only, but root ignores that, and so does a user who chmods the file. Such an
edit is noticed when the file is hashed again (`cache.scan`: it held another oid with the same
inode, or it is a symlink into the store that no longer hashes to its target's name) or checked
out (`cache.checkout`: it shares the inode of the object it should hold). The edit is kept as the
workspace's own file and the damaged object is moved to the quarantine, so it is never served
under its name again; other outs that shared it are then "not in cache" until `pipe pull`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from pipeline_engine.cache.link import copy_file, file_mode
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.fsutil import is_exec, temp_name
from pipeline_engine.core.hashing import Oid, is_dir_oid
from pipeline_engine.core.layout import is_valid_oid

__all__ = ["separate_edit", "separate_if_shared"]


def separate_edit(
    store: ObjectStore,
    path: Path,
    st: os.stat_result,
    actual: Oid,
    *,
    linked: Oid | None = None,
    previous: Oid | None = None,
) -> Oid:
    """Undo the sharing of a workspace file whose edit went through a link into its cache object.

    `path` (stat data `st`, following links) now hashes to `actual`. When it is a symlink into
    the store to object `linked`, or a hardlink of object `previous` (the oid it held before:
    same device and inode), and `actual` differs, the edit changed the object itself. The
    edited bytes become the workspace's own file (a copy, renamed over the link) and the damaged
    object is moved to the quarantine, so it is never served as that oid again; other paths that
    shared it are then reported as not in the cache ('pipe pull' fetches a good copy). Anything
    else is left alone. Returns the oid of what `path` holds afterwards.
    """
    damaged = linked if linked is not None else previous
    if damaged is None or damaged == actual or is_dir_oid(damaged) or not is_valid_oid(damaged):
        return actual
    obj = store.path_of(damaged)
    if linked is None:
        try:
            ost = os.stat(obj)
        except FileNotFoundError:
            return actual
        if st.st_nlink < 2 or (ost.st_dev, ost.st_ino) != (st.st_dev, st.st_ino):
            return actual  # not sharing the object: an ordinary edit
    tmp = path.with_name(temp_name())
    try:
        copied, _ = copy_file(os.fspath(path), os.fspath(tmp), file_mode(is_exec(st.st_mode)))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if linked is not None:
            return actual  # the object holds the only copy of the edit: leave it (checkout verifies)
        copied = actual  # the workspace inode keeps the edit whatever happens to the object's name
    with contextlib.suppress(FileNotFoundError):
        store.quarantine(damaged)
    return copied


def separate_if_shared(store: ObjectStore, path: Path, current: Oid, wanted: Oid) -> Oid:
    """`separate_edit` for a path that should hold `wanted` but hashes to `current` (checkout:
    works without the hash memo's record of what the file held)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return current
    if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
        return current
    return separate_edit(store, path, st, current, previous=wanted)
