"""Where things live on disk: an object under a store root (`<first 2 hex>/<rest>`, the same locally and
remotely), and the working files under the control directory's `tmp/`."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline_engine.core.hashing import Oid

__all__ = ["is_valid_oid", "logs_dir", "oid_to_relpath", "relpath_to_oid", "running_dir", "tmp_dir"]

#: Under `.pipe/`: the project lock, the hash memo, stage logs and running-stage records, scratch files.
TMP_DIR = "tmp"

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


def tmp_dir(control_dir: Path) -> Path:
    """`.pipe/tmp`: the project lock, the hash memo, marks, logs and scratch files (never committed)."""
    return control_dir / TMP_DIR


def logs_dir(control_dir: Path) -> Path:
    """Where each stage's output log is kept (`<stage>.log`) when stages run in parallel."""
    return control_dir / TMP_DIR / "logs"


def running_dir(control_dir: Path) -> Path:
    """Where each running stage command leaves its record, so a later run can stop an orphan."""
    return control_dir / TMP_DIR / "running"
