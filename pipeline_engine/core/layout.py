"""Where an object lives under a store root: `<first 2 hex>/<rest>`, the same locally and remotely."""

from __future__ import annotations

import re

from pipeline_engine.core.hashing import Oid

__all__ = ["is_valid_oid", "oid_to_relpath", "relpath_to_oid"]

_OID_RE = re.compile(r"^[0-9a-f]{32}(\.dir)?$")


def is_valid_oid(oid: str) -> bool:
    """True when `oid` is 32 lowercase hex digits, optionally followed by `.dir`."""
    return bool(_OID_RE.match(oid))


def oid_to_relpath(oid: str) -> str:
    """Return the POSIX path of `oid` relative to a store root."""
    return f"{oid[:2]}/{oid[2:]}"


def relpath_to_oid(relpath: str) -> Oid | None:
    """Return the oid stored at `relpath`, or None for a path that is not an object."""
    head, sep, tail = relpath.rpartition("/")
    fanout = head.rpartition("/")[2]
    if not sep or len(fanout) != 2:
        return None
    oid = fanout + tail
    return Oid(oid) if is_valid_oid(oid) else None
