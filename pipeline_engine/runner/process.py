"""Runs one stage command as a shell script in its own process group, and stops them all on demand.

Every running command is registered in a module-level, thread-safe registry, so that
`terminate_all()` (called by the scheduler on Ctrl-C) can stop each command together with
every process it spawned: a stage runs in a new session, so the terminal's SIGINT reaches
only `pipe`, and we forward the stop to each whole group with `os.killpg`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pipeline_engine.errors import StageFailedError

__all__ = ["CommandResult", "run_command", "running_count", "shell_argv", "terminate_all"]

_POLL_SECONDS = 0.02
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class CommandResult:
    """How a command ended: its exit code (negative: killed by that signal), its log, whether we stopped it."""

    returncode: int
    log_path: Path | None
    interrupted: bool


@dataclass(slots=True)
class _Running:
    """A registry entry: the process and whether `terminate_all` has signalled it."""

    proc: subprocess.Popen[bytes]
    interrupted: bool = field(default=False)


_registry: dict[int, _Running] = {}
_registry_lock = threading.Lock()


def shell_argv(script: str) -> list[str]:
    """The argv running `script` as one script that stops at its first failing line."""
    bash = shutil.which("bash")
    if bash:
        # pipefail: `false | tee log` fails the stage like `false` alone would.
        return [bash, "-e", "-o", "pipefail", "-c", script]
    return [shutil.which("sh") or "/bin/sh", "-e", "-c", script]


def run_command(
    script: str, *, cwd: Path, env: Mapping[str, str], log_path: Path | None = None
) -> CommandResult:
    """Run `script` in `cwd` with exactly `env`, wait for it and return how it ended.

    With `log_path`, stdout and stderr both go to that file (parent directories are made);
    without it they are inherited. stdin is closed: a stage never reads the terminal.
    If the calling thread is interrupted while waiting, the command's group is stopped first.

    Raises:
        StageFailedError: the command could not be started (e.g. `cwd` is not a directory).
    """
    log: IO[bytes] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    proc: subprocess.Popen[bytes] | None = None
    try:
        try:
            proc = _start(script, cwd=cwd, env=env, log=log)
            entry = _register(proc)
            returncode = proc.wait()
        except BaseException:
            # Ctrl-C while this thread registers or waits: never leave the group running behind
            # us. (The try starts before registration: a Ctrl-C landing between the start and
            # the wait would otherwise orphan a running stage.)
            if proc is not None:
                _stop_groups([_Running(proc)], grace=3.0)
                proc.wait()
            raise
        finally:
            if proc is not None:
                _unregister(proc)
    except StageFailedError:
        if log_path is not None:
            log_path.unlink(missing_ok=True)
        raise
    finally:
        if log is not None:
            log.close()
    return CommandResult(returncode=returncode, log_path=log_path, interrupted=entry.interrupted)


def _start(script: str, *, cwd: Path, env: Mapping[str, str], log: IO[bytes] | None) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            shell_argv(script),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log is not None else None,
            start_new_session=True,
        )
    except OSError as exc:
        raise StageFailedError(
            f"cannot start the command in '{cwd}': {exc.strerror or exc}",
            returncode=127,
            hint="check the stage's 'wdir' and that the directory exists",
        ) from exc


def running_count() -> int:
    """How many commands are running right now (for tests and diagnostics)."""
    with _registry_lock:
        return len(_registry)


def terminate_all(grace: float = 3.0) -> None:
    """Send SIGTERM to every running command's process group; SIGKILL what is left after `grace` s."""
    with _registry_lock:
        entries = list(_registry.values())
    _stop_groups(entries, grace=grace)


def _register(proc: subprocess.Popen[bytes]) -> _Running:
    entry = _Running(proc)
    with _registry_lock:
        _registry[proc.pid] = entry
    return entry


def _unregister(proc: subprocess.Popen[bytes]) -> None:
    with _registry_lock:
        _registry.pop(proc.pid, None)


def _stop_groups(entries: list[_Running], *, grace: float) -> None:
    """SIGTERM each group, wait until every member is gone or `grace` passed, then SIGKILL."""
    # With start_new_session the leader's pid is the group id, even after the leader has exited.
    for entry in entries:
        entry.interrupted = True
        _signal_group(entry.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = _alive(entries)
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        alive = _alive(alive)
    for entry in alive:
        _signal_group(entry.proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # The group may have finished between the snapshot and now: that is what we wanted.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _alive(entries: list[_Running]) -> list[_Running]:
    """The entries whose process group still has a live (non-zombie) member."""
    for entry in entries:
        entry.proc.poll()  # reap an exited leader: a zombie still counts as a group member
    live = [entry for entry in entries if _group_exists(entry.proc.pid)]
    if not live or not _PROC.is_dir():
        return live
    # Orphaned grandchildren become zombies until init reaps them, which some container inits
    # do only every second or two; on Linux, look past zombies instead of waiting for that.
    running = _running_groups()
    return [entry for entry in live if entry.proc.pid in running]


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _running_groups() -> set[int]:
    """Process group ids of every non-zombie process, from /proc (Linux)."""
    groups: set[int] = set()
    for entry in os.scandir(_PROC):
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
