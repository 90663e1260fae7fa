"""The run cache in `.pipe/cache/runs/`: outs recorded per (cmd, dep oids, params, env, out paths).

Before running a changed stage, `pipe repro` looks its inputs up here; when the same inputs
ran before and their outs are still in the object store, the outs are checked out instead of
running the command (DESIGN.md §3). Entries are small JSON files named by the hash of the key.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from pipeline_engine.core.layout import runs_dir as cache_runs_dir
from pipeline_engine.core.record import PathRecord
from pipeline_engine.core.yamlio import parse_json
from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.lock import StageLock
from pipeline_engine.pipeline.plan import StageState
from pipeline_engine.pipeline.spec import StageSpec
from pipeline_engine.project import Project

__all__ = ["is_cacheable", "lookup", "read_entry", "run_key", "runs_dir", "store_run"]

SCHEMA_VERSION = 1


def runs_dir(project: Project) -> Path:
    """`<cache>/runs`, beside the objects directory."""
    return cache_runs_dir(project.store.root.parent)


def is_cacheable(stage: StageSpec) -> bool:
    """Stages whose outs can stand in for a run: with outs, none persistent, not always_changed.

    `cache: false` outs (metrics) do not prevent it: their content is kept in the store for the
    run cache (`save_outs(keep_uncached=True)`), as DVC keeps it (DESIGN.md §3).
    """
    return bool(stage.outs) and not stage.always_changed and not any(o.persist for o in stage.outs)


def run_key(stage: StageSpec, state: StageState) -> str | None:
    """The key of this stage's inputs, or None when a dep is missing."""
    if any(r is None for r in state.deps.values()):
        return None
    key = {
        "cmd": stage.cmd,
        "deps": {p: r.oid for p, r in state.deps.items() if r is not None},
        "params": state.params,
        "env": state.env,
        "outs": sorted(o.path for o in stage.outs),
    }
    text = json.dumps(key, sort_keys=True, default=repr, separators=(",", ":"))
    return hash_bytes(text.encode("utf-8"))


def lookup(project: Project, key: str) -> tuple[PathRecord, ...] | None:
    """The outs recorded for `key`, or None when there is no (readable) entry."""
    return read_entry(runs_dir(project) / oid_to_relpath(key))


def read_entry(path: Path) -> tuple[PathRecord, ...] | None:
    """The outs of the entry file at `path`, or None when it is missing or not a valid entry."""
    try:
        raw = parse_json(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, ValueError, SpecError):  # unreadable, not UTF-8, not bounded JSON
        return None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA_VERSION or isinstance(raw.get("schema"), bool):
        return None
    outs = raw.get("outs", [])
    if not isinstance(outs, list) or not outs:
        return None
    try:
        return tuple(PathRecord.from_dict(r, source=str(path)) for r in outs)
    except SpecError:
        return None


def store_run(project: Project, key: str, entry: StageLock) -> None:
    """Remember the outs `entry` produced for `key` (the newest run wins)."""
    path = runs_dir(project) / oid_to_relpath(key)
    data: dict[str, Any] = {"schema": SCHEMA_VERSION, **entry.to_dict()}
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, sort_keys=True, indent=1, default=repr), fsync=False)
