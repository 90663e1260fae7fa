"""Runs stage commands (a shell script, or a list of them) in their own process groups; stops them on demand.

Every running command is registered in a module-level, thread-safe registry, so that
`terminate_all()` can stop each command together with every process it spawned: a stage runs
in a new session, so the terminal's SIGINT reaches only `pipe`, and we forward the stop to each
whole group with `os.killpg`. A command run with a `CommandGroup` is also registered there, so
that its owner (a `LocalExecutor`, on Ctrl-C) stops its own commands, and every command that
registers after the stop is stopped at once (no command slips past a stop while starting).

A command can outlive a `pipe` that is killed with SIGKILL. So, given a `record_dir`, each
running command leaves a small JSON record there (name, pid = pgid, the process's create time,
command), removed when the command ends; `find_leftovers` reads the records an earlier run
left and tells which of those process groups still run, and `end_leftovers` stops them or
waits for them. The create time (psutil) tells a recorded process from a later one that reused its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from pipeline_engine.errors import StageFailedError
from pipeline_engine.runner.orphans import (
    PROC,
    Leftover,
    group_exists,
    is_recorded_process,
    live_groups,
    read_record,
    running_groups,
    signal_group,
    write_record,
)

__all__ = [
    "CommandGroup", "CommandResult", "find_leftovers", "run_command", "running_count", "shell_argv", "terminate_all",
]

_POLL_SECONDS = 0.02
# How often a running command's log is read for new lines to show.
_TAIL_SECONDS = 0.05


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


class CommandGroup:
    """The commands of one owner: `stop()` ends those running and every one that starts after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._stopped = False

    @property
    def is_stopped(self) -> bool:
        """True once `stop()` was called: the group's commands do not start any more."""
        return self._stopped

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM every running command's process group; SIGKILL what is left after `grace` s."""
        with self._lock:
            self._stopped = True
            entries = list(self._running.values())
        _stop_groups(entries, grace=grace)

    def _add(self, entry: _Running) -> bool:
        """Register a started command; False (not registered) when the group was stopped."""
        with self._lock:
            if self._stopped:
                return False
            self._running[entry.proc.pid] = entry
            return True

    def _discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.pop(proc.pid, None)


def shell_argv(script: str) -> list[str]:
    """The argv running `script` as one script that stops at its first failing line."""
    bash = shutil.which("bash")
    if bash:
        # pipefail: `false | tee log` fails the stage like `false` alone would.
        return [bash, "-e", "-o", "pipefail", "-c", script]
    return [shutil.which("sh") or "/bin/sh", "-e", "-c", script]


def run_command(
    script: str | Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path | None = None,
    record_dir: Path | None = None, name: str = "",
    on_start: Callable[[str], None] | None = None, on_output: Callable[[str], None] | None = None,
    group: CommandGroup | None = None,
) -> CommandResult:
    """Run `script` in `cwd` with exactly `env`, wait for it and return how it ended.

    A string runs as one shell script that stops at its first failing line. A sequence runs each
    item as its own script, in its own shell (a `cd` or a variable does not carry over), in order,
    stopping after the first item that fails or is stopped (DVC's `cmd` list); the result is that
    item's. `on_start(item)` is called just before each item starts.

    With `log_path`, stdout and stderr both go to that file (parent directories are made), and
    `on_output` (if given) receives each line of it (with its newline) while the command runs;
    without `log_path` they are inherited. stdin is closed: a stage never reads the terminal.
    If the calling thread is interrupted while waiting, the command's group is stopped first.
    With `record_dir`, a record of the running command (named `name`) stays there while it runs.
    With `group`, `group.stop()` stops it; once the group is stopped, no item starts (the result
    is then interrupted).

    Raises:
        StageFailedError: the command could not be started (e.g. `cwd` is not a directory).
    """
    scripts = [script] if isinstance(script, str) else list(script)
    log: IO[bytes] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    tail = _Tail(log_path, on_output) if log_path is not None and on_output is not None else None
    try:
        result = CommandResult(returncode=0, log_path=log_path, interrupted=False)
        for item in scripts:
            if group is not None and group.is_stopped:
                result = CommandResult(returncode=-int(signal.SIGTERM), log_path=log_path, interrupted=True)
                break
            if on_start is not None:
                on_start(item)
            result = _run_one(item, cwd=cwd, env=env, log=log, log_path=log_path, record_dir=record_dir,
                              name=name, tail=tail, group=group)
            if result.returncode != 0 or result.interrupted:
                break
        if tail is not None:
            tail.pump(final=True)
    except StageFailedError:
        if log_path is not None:
            log_path.unlink(missing_ok=True)
        raise
    finally:
        if tail is not None:
            tail.close()
        if log is not None:
            log.close()
    return result


def _run_one(
    script: str, *, cwd: Path, env: Mapping[str, str], log: IO[bytes] | None, log_path: Path | None,
    record_dir: Path | None, name: str, tail: _Tail | None, group: CommandGroup | None = None,
) -> CommandResult:
    """Run one script to its end (see `run_command`)."""
    proc: subprocess.Popen[bytes] | None = None
    record: Path | None = None
    try:
        proc = _start(script, cwd=cwd, env=env, log=log, gated=record_dir is not None)
        entry = _register(proc, group)
        if record_dir is not None and not entry.interrupted:
            record = write_record(record_dir, proc.pid, name=name, command=script)
            _open_gate(proc)
        returncode = _wait(proc, tail)
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
            _unregister(proc, group)
            _close_stdin(proc)  # a gate never opened (the record failed) must not leak its pipe
        if record is not None:
            record.unlink(missing_ok=True)
    return CommandResult(returncode=returncode, log_path=log_path, interrupted=entry.interrupted)


def _wait(proc: subprocess.Popen[bytes], tail: _Tail | None) -> int:
    """Wait for the command's leader to end, passing its log's new lines on meanwhile."""
    if tail is None:
        return proc.wait()
    while True:
        try:
            returncode = proc.wait(timeout=_TAIL_SECONDS)
        except subprocess.TimeoutExpired:
            tail.pump()
            continue
        tail.pump()
        return returncode


class _Tail:
    """Follows a log file that a command writes, handing each complete line to `emit`.

    The command writes to a regular file, as it always did (so the log is kept, and a background
    process that outlives the command can never block `pipe` on a pipe it holds open); this reads
    what was added since the last call.
    """

    def __init__(self, path: Path, emit: Callable[[str], None]) -> None:
        self._path = path
        self._emit = emit
        self._file: IO[bytes] | None = None
        self._partial = b""

    def pump(self, *, final: bool = False) -> None:
        """Emit the complete lines written since the last call; with `final`, the last partial line too."""
        if self._file is None:
            try:
                self._file = open(self._path, "rb")  # noqa: SIM115 - closed by close()
            except OSError:
                return
        data = self._partial + self._file.read()
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            self._emit(line.decode("utf-8", errors="replace") + "\n")
        if final and self._partial:
            self._emit(self._partial.decode("utf-8", errors="replace") + "\n")
            self._partial = b""

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# A recorded command first waits at this gate until its record is written: killed before that,
# `pipe` closes the pipe unwritten, `read` fails, and the command never runs unrecorded.
_GATE = 'IFS= read -r go || exit 125; exec </dev/null; exec "$@"'


def _start(
    script: str, *, cwd: Path, env: Mapping[str, str], log: IO[bytes] | None, gated: bool = False
) -> subprocess.Popen[bytes]:
    argv = shell_argv(script)
    if gated:
        argv = [shutil.which("sh") or "/bin/sh", "-c", _GATE, "pipe-stage", *argv]
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if gated else subprocess.DEVNULL,
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


def _register(proc: subprocess.Popen[bytes], group: CommandGroup | None) -> _Running:
    entry = _Running(proc)
    with _registry_lock:
        _registry[proc.pid] = entry
    if group is not None and not group._add(entry):
        # Its group was stopped while it started: stop it now (a gated command never runs).
        _stop_groups([entry], grace=3.0)
    return entry


def _unregister(proc: subprocess.Popen[bytes], group: CommandGroup | None) -> None:
    with _registry_lock:
        _registry.pop(proc.pid, None)
    if group is not None:
        group._discard(proc)


def _stop_groups(entries: list[_Running], *, grace: float) -> None:
    """SIGTERM each group, wait until every member is gone or `grace` passed, then SIGKILL."""
    # With start_new_session the leader's pid is the group id, even after the leader has exited.
    for entry in entries:
        entry.interrupted = True
        signal_group(entry.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = _alive(entries)
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        alive = _alive(alive)
    for entry in alive:
        signal_group(entry.proc.pid, signal.SIGKILL)


def _alive(entries: list[_Running]) -> list[_Running]:
    """The entries whose process group still has a live (non-zombie) member."""
    for entry in entries:
        entry.proc.poll()  # reap an exited leader: a zombie still counts as a group member
    live = [entry for entry in entries if group_exists(entry.proc.pid)]
    if not live or not PROC.is_dir():
        return live
    # Orphaned grandchildren become zombies until init reaps them, which some container inits
    # do only every second or two; on Linux, look past zombies instead of waiting for that.
    running = running_groups()
    return [entry for entry in live if entry.proc.pid in running]


def _open_gate(proc: subprocess.Popen[bytes]) -> None:
    """Let a gated command run (it is recorded now)."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass  # it ended already (e.g. killed): nothing to let through
    finally:
        _close_stdin(proc)


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def find_leftovers(record_dir: Path) -> list[Leftover]:
    """The recorded commands of earlier runs whose process group still runs (records of ended ones are removed).

    The group is ours when its leader is alive with the recorded create time, or, once the
    leader has ended, while members of the group remain (a group id is not reused while the
    group has members, and no live process has taken the leader's PID).
    """
    if not record_dir.is_dir():
        return []
    found: list[Leftover] = []
    for path in sorted(record_dir.glob("*.json")):
        record = read_record(path)
        if record is None:
            path.unlink(missing_ok=True)
            continue
        pid, created = record["pid"], record["create_time"]
        if pid == os.getpid() or pid in _registry:
            continue  # a command of this process, running now
        ours = is_recorded_process(pid, created) or not psutil.pid_exists(pid)
        if ours and live_groups({pid}):
            found.append(Leftover(record["name"], pid, record["cmd"], path))
        else:
            path.unlink(missing_ok=True)
    return found

