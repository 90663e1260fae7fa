"""Partial uploads on backends without an atomic write: their names, and which ones are leftovers.

Such a backend receives an object under `<root>/tmp/<temp name>.<host>` and renames it into
place once complete. A killed push leaves the file behind; the next push removes it when its
process is gone (same host), or when it is older than a day (another host, or an older
version's `<oid>.<hex>` name), as that process cannot be asked.
"""

from __future__ import annotations

import datetime
import os
import posixpath
import re
import socket
from collections.abc import Mapping
from typing import Any

import psutil

from pipeline_engine.core.fsutil import temp_name, temp_owner
from pipeline_engine.core.layout import remote_tmp_dir

__all__ = ["HOST", "STALE_AFTER", "entry_mtime", "is_leftover", "partial_path"]

#: Partial uploads of other hosts (whose processes cannot be asked) are removed after this many seconds.
STALE_AFTER = 24 * 3600.0
#: This host, as the suffix of its partial uploads: a push can ask only its own host whether a writer still runs.
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def partial_path(root: str) -> str:
    """A fresh name for one upload in progress under the remote `root`, tied to this host and process."""
    return f"{remote_tmp_dir(root)}/{temp_name(f'.{HOST}')}"


def is_leftover(entry: Mapping[str, Any], *, now: float, max_age: float = STALE_AFTER) -> bool:
    """True when the listing `entry` of `<root>/tmp/` is an upload no running push is writing."""
    name = posixpath.basename(str(entry["name"]).rstrip("/"))
    pid = temp_owner(name)
    if pid is not None and name.endswith(f".{HOST}"):
        return pid != os.getpid() and not psutil.pid_exists(pid)
    mtime = entry_mtime(entry)
    return mtime is not None and now - mtime > max_age


def entry_mtime(entry: Mapping[str, Any]) -> float | None:
    """A listing entry's modification time in seconds (backends give a float, an int or a datetime)."""
    value = entry.get("mtime", entry.get("LastModified", entry.get("last_modified", entry.get("created"))))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return None
