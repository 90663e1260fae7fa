"""Process groups and the records that outlive a killed pipe: find and stop the stage commands it left running.

Each running stage command is recorded in `<record_dir>/<pid>.json` (its process group, the
leader's create time, the stage and command). A later `pipe repro` finds the groups that still
run (`runner.process.find_leftovers`) and stops or waits for them (`end_leftovers`) before it
decides anything, since an orphan still writes its outs. The group helpers (`signal_group`,
`live_groups`, ...) look past zombies on Linux through /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from pipeline_engine.core.fsutil import temp_name

__all__ = [
    "PROC", "Leftover", "end_leftovers", "group_exists", "is_recorded_process", "live_groups", "read_record",
    "running_groups", "signal_group", "write_record",
]

PROC = Path("/proc")
# How often end_leftovers looks again whether the groups ended.
_WAIT_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class Leftover:
    """A command an earlier pipe started and left running (its process group is `pid`)."""

    name: str
    pid: int
    command: str
    record: Path


def signal_group(pgid: int, sig: signal.Signals) -> None:
    # The group may have finished between the snapshot and now: that is what we wanted.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def running_groups() -> set[int]:
    """Process group ids of every non-zombie process, from /proc (Linux)."""
    groups: set[int] = set()
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as f:
                stat = f.read()
        except OSError:
            continue  # the process ended while we looked
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = stat.rsplit(b")", 1)[1].split()
        if fields[0] not in (b"Z", b"X"):
            groups.add(int(fields[2]))
    return groups


def write_record(record_dir: Path, pid: int, *, name: str, command: str) -> Path | None:
    """Record a running command's group in `record_dir/<pid>.json` (atomically); None if it already ended."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None
    record_dir.mkdir(parents=True, exist_ok=True)
    path = record_dir / f"{pid}.json"
    data = {"schema": 1, "name": name, "pid": pid, "pgid": pid, "create_time": created, "cmd": command}
    tmp = record_dir / temp_name()
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)
    return path


def end_leftovers(leftovers: list[Leftover], *, wait: bool, grace: float = 3.0) -> None:
    """Stop the leftovers' process groups (SIGTERM, SIGKILL after `grace` s), or with `wait` wait for them."""
    pgids = {left.pid for left in leftovers}
    if not wait:
        for pgid in pgids:
            signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pgids:
        pgids = live_groups(pgids)
        if pgids and not wait and time.monotonic() > deadline:
            for pgid in pgids:
                signal_group(pgid, signal.SIGKILL)
            deadline = float("inf")
        if pgids:
            time.sleep(_WAIT_SECONDS)
    for left in leftovers:
        left.record.unlink(missing_ok=True)


def read_record(path: Path) -> dict[str, Any] | None:
    """A record's fields, or None when it is unreadable or malformed (it is then ignored)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid, created = data.get("pid"), data.get("create_time")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1 or not isinstance(created, (int, float)):
        return None
    if data.get("pgid") != pid:
        return None
    return {"pid": pid, "create_time": float(created), "name": str(data.get("name", "")),
            "cmd": str(data.get("cmd", ""))}


def is_recorded_process(pid: int, created: float) -> bool:
    """True when `pid` is still the process that was recorded (a zombie counts), not a reuse of its PID."""
    try:
        return abs(psutil.Process(pid).create_time() - created) < 0.01
    except psutil.Error:
        return False


def live_groups(pgids: set[int]) -> set[int]:
    """The subset of `pgids` that still have a running (non-zombie) member."""
    if not pgids:
        return set()
    if PROC.is_dir():
        return pgids & running_groups()
    return {pgid for pgid in pgids if group_exists(pgid)}
