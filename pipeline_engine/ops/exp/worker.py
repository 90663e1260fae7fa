"""`pipe queue start | kill | logs -f`: background workers, stopping one experiment, following its log.

A worker is `pipe exp run --run-all -j N` in a process of its own session (no controlling
terminal, so closing the terminal does not stop it), its output in `.pipe/tmp/exps/worker-<pid>.log`.
`kill` leaves a request that the process running the experiment carries out (it polls for them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

from pipeline_engine.errors import PipeError
from pipeline_engine.ops.exp.records import ExpState, entries, exps_dir, read_log, request_kill
from pipeline_engine.project import Project

__all__ = ["follow_log", "kill", "start_worker"]

_POLL = 0.2


def start_worker(project: Project, *, jobs: int = 1) -> int:
    """Start a background worker that runs the queue `jobs` at once; returns its pid.

    Raises:
        PipeError: nothing is queued.
    """
    if not entries(project, states=(ExpState.QUEUED,)):
        raise PipeError("no queued experiments", hint="queue some with 'pipe exp run --queue -S KEY=VALUE'")
    folder = exps_dir(project)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"worker-{time.time_ns()}.log"
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline_engine", "exp", "run", "--run-all", "-j", str(jobs)],
            cwd=project.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "NO_COLOR": "1"},
        )
    return proc.pid


def kill(project: Project, name: str) -> None:
    """Ask the process running experiment `name` to stop it; it is recorded as failed.

    Raises:
        PipeError: no running experiment has that name.
    """
    running = [e for e in entries(project, states=(ExpState.RUNNING,)) if e.name == name]
    if not running:
        raise PipeError(f"no running experiment '{name}'", hint="run 'pipe queue status' to list experiments")
    for entry in running:
        request_kill(project, entry)


def follow_log(project: Project, name: str, *, follow: bool = False) -> Iterator[str]:
    """The experiment's log; with `follow`, what it appends too, until it is no longer queued or running.

    Raises:
        PipeError: no log for that name.
    """
    entry, path = read_log(project, name)
    with path.open(encoding="utf-8", errors="replace") as f:
        while True:
            chunk = f.read()
            if chunk:
                yield chunk
            if not follow or entry is None:
                return
            current = {e.key: e for e in entries(project)}.get(entry.key)
            if current is None or current.state not in (ExpState.QUEUED, ExpState.RUNNING):
                rest = f.read()
                if rest:
                    yield rest
                return
            time.sleep(_POLL)
