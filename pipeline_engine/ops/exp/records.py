"""What pipe keeps about experiments besides their refs: queued, running and failed ones, their logs.

```
.pipe/tmp/exps/
    queue/<baseline[:12]>-<name>.json   one entry per experiment not (yet) recorded as a ref
    logs/<baseline[:12]>-<name>.log     what its stages printed, and the error of a failed one
    run/<name>-<hex>/                   the worktree of a running experiment (removed after)
```
An entry's snapshot commit (the workspace as it was when the experiment was queued, without the
overrides) is kept reachable by `refs/pipe/queue/<baseline[:12]>-<name>`, so `git gc` keeps it.
A successful run deletes the entry: from then on the ref under `refs/exps/` is the record.
"""

from __future__ import annotations

import enum
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.layout import tmp_dir
from pipeline_engine.core.mutex import ProjectMutex
from pipeline_engine.core.yamlio import parse_json
from pipeline_engine.errors import PipeError, SpecError
from pipeline_engine.pipeline.overrides import Override, from_records, to_records
from pipeline_engine.project import Project
from pipeline_engine.scm.exps import QUEUE_NAMESPACE, is_valid_name, list_exp_refs

__all__ = ["ExpEntry", "ExpState", "claim", "clear_kill", "entries", "exps_dir", "kill_requests", "log_path",
           "new_name", "now", "queue_ref", "read_log", "release", "remove_entry", "request_kill", "save_entry",
           "start_guard", "taken_names"]


class ExpState(enum.Enum):
    """Where an experiment is in its life (DVC's states)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ExpEntry:
    """One experiment that has no ref yet (queued, running) or never will (failed)."""

    name: str
    baseline: str
    snapshot: str
    overrides: tuple[Override, ...]
    targets: tuple[str, ...]
    state: ExpState
    created: float
    error: str = ""

    @property
    def key(self) -> str:
        """`<baseline[:12]>-<name>`: the entry's file and log name."""
        return f"{self.baseline[:12]}-{self.name}"


def exps_dir(project: Project) -> Path:
    """`.pipe/tmp/exps`."""
    return tmp_dir(project.control_dir) / "exps"


def start_guard(project: Project, command: str, *, timeout: float | None = None) -> ProjectMutex:
    """The lock an experiment holds while it becomes RUNNING, and gc for its whole run.

    gc refuses while an experiment runs (its outs are in no ref yet); without this lock one could
    start between gc's check and its deletions. An experiment waits for gc; gc waits `timeout`.
    """
    exps_dir(project).mkdir(parents=True, exist_ok=True)
    return ProjectMutex(exps_dir(project) / "start.lock", command=command, wait=True, timeout=timeout)


def queue_ref(entry: ExpEntry) -> str:
    """The ref that keeps a queued entry's snapshot commit alive."""
    return f"{QUEUE_NAMESPACE}/{entry.key}"


def log_path(project: Project, entry: ExpEntry) -> Path:
    """The entry's log file."""
    return exps_dir(project) / "logs" / f"{entry.key}.log"


def save_entry(project: Project, entry: ExpEntry) -> None:
    """Write (or rewrite) the entry's file atomically."""
    path = exps_dir(project) / "queue" / f"{entry.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "schema": 1, "name": entry.name, "baseline": entry.baseline, "snapshot": entry.snapshot,
        "overrides": to_records(entry.overrides), "targets": list(entry.targets), "state": entry.state.value,
        "created": entry.created, "error": entry.error, "pid": os.getpid(),
    }
    atomic_write(path, json.dumps(record, indent=1) + "\n")


def remove_entry(project: Project, entry: ExpEntry) -> None:
    """Delete the entry's file (its log stays until `pipe exp clean`)."""
    (exps_dir(project) / "queue" / f"{entry.key}.json").unlink(missing_ok=True)


def entries(project: Project, *, states: Sequence[ExpState] = ()) -> list[ExpEntry]:
    """Every entry (or those in `states`), oldest first; a running one whose process is gone is failed.

    Raises:
        SpecError: an entry file is not one pipe wrote (naming it).
    """
    folder = exps_dir(project) / "queue"
    found: list[ExpEntry] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        entry, pid = _read(path)
        if entry.state is ExpState.RUNNING and pid != os.getpid() and not _alive(pid):
            entry = replace(entry, state=ExpState.FAILED, error="its pipe process ended while it ran")
        if not states or entry.state in states:
            found.append(entry)
    return sorted(found, key=lambda e: (e.created, e.name))


def _read(path: Path) -> tuple[ExpEntry, int]:
    source = f".pipe/tmp/exps/queue/{path.name}"
    raw: Any = parse_json(path.read_text(encoding="utf-8"), source=source)
    try:
        entry = ExpEntry(
            name=str(raw["name"]), baseline=str(raw["baseline"]), snapshot=str(raw["snapshot"]),
            overrides=from_records(raw["overrides"], source=source),
            targets=tuple(str(t) for t in raw["targets"]), state=ExpState(raw["state"]),
            created=float(raw["created"]), error=str(raw.get("error", "")),
        )
        return entry, int(raw.get("pid", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{source}: not an experiment entry ({exc})", hint="run 'pipe exp remove --queue'") from None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def taken_names(project: Project, baseline: str) -> set[str]:
    """Names of the baseline's experiments: refs and entries."""
    root = project.git.root if project.git is not None else project.root
    names = {ref.name for ref, _, _ in list_exp_refs(root, baseline, commits_only=False)}
    return names | {e.name for e in entries(project) if e.baseline == baseline}


_ADJECTIVES = (
    "amber", "bold", "brisk", "calm", "clear", "cool", "crisp", "dense", "eager", "early", "fair", "fast",
    "fine", "firm", "fresh", "glad", "grand", "green", "happy", "keen", "kind", "late", "light", "lucky",
    "merry", "mild", "neat", "noble", "plain", "prime", "proud", "quick", "quiet", "rapid", "ready", "rich",
    "sharp", "shy", "silky", "slim", "smart", "solid", "spare", "stark", "steady", "sunny", "swift", "tidy",
    "vivid", "warm", "wise", "young",
)
_NOUNS = (
    "acorn", "alder", "aspen", "basin", "birch", "brook", "cedar", "cliff", "cloud", "comet", "coral",
    "creek", "delta", "dune", "ember", "fern", "field", "fjord", "flint", "grove", "harbor", "hazel", "heron",
    "inlet", "iris", "lake", "larch", "lotus", "maple", "marsh", "meadow", "moss", "oak", "orbit", "otter",
    "pine", "plain", "pond", "quartz", "raven", "reef", "ridge", "river", "sage", "shore", "spruce",
    "stone", "thorn", "tide", "vale", "willow", "wren",
)


def new_name(taken: set[str]) -> str:
    """A readable adjective-noun name not in `taken` (a digit suffix once the pairs run out).

    Raises:
        PipeError: never in practice (more than a million names taken).
    """
    for attempt in range(1000):
        name = f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}"
        name = name if attempt < 100 else f"{name}-{secrets.randbelow(10_000)}"
        if name not in taken and is_valid_name(name):
            return name
    raise PipeError("could not find a free experiment name", hint="give one with -n NAME")


def claim(project: Project, entry: ExpEntry) -> bool:
    """Make this process the one that runs `entry` (False: a live process already does).

    Two `pipe exp run --run-all` (or a `pipe queue start` worker beside one) share the queue:
    the claim file, created exclusively, lets only one of them run each experiment.
    """
    path = exps_dir(project) / "claims" / entry.key
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(path.read_text(encoding="utf-8").strip() or 0)
            except (OSError, ValueError):
                holder = 0
            if _alive(holder):
                return False
            path.unlink(missing_ok=True)  # its process is gone
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
        return True
    return False


def release(project: Project, entry: ExpEntry) -> None:
    """Give up the claim on `entry` (it ended, one way or another)."""
    (exps_dir(project) / "claims" / entry.key).unlink(missing_ok=True)


def request_kill(project: Project, entry: ExpEntry) -> None:
    """Ask the pipe process running `entry` to stop it (it polls `kill_requests`)."""
    path = exps_dir(project) / "kill" / entry.key
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, f"{os.getpid()}\n")


def kill_requests(project: Project) -> list[str]:
    """Keys of the entries someone asked to stop."""
    folder = exps_dir(project) / "kill"
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def clear_kill(project: Project, key: str) -> None:
    """The request for `key` was carried out."""
    (exps_dir(project) / "kill" / key).unlink(missing_ok=True)


def read_log(project: Project, name: str) -> tuple[ExpEntry | None, Path]:
    """The newest log of the experiment called `name` and its entry (None once it is recorded).

    Raises:
        PipeError: no log for that name.
    """
    found = sorted((exps_dir(project) / "logs").glob(f"*-{name}.log"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise PipeError(f"no log for experiment '{name}'", hint="run 'pipe queue status' to list experiments")
    key = found[-1].stem
    entry = next((e for e in entries(project) if e.key == key), None)
    return entry, found[-1]


def now() -> float:
    """The time an entry is created (seconds since the epoch)."""
    return time.time()
