"""Real `pipe` processes in tests: start or run one as a user's shell does, wait for files and exits.

Every e2e and reliability test starts `pipe` through `start_pipe` / `pipe_process`, so what a
terminal gives a foreground command (stop signals at their defaults, no stdin) is set up in one place.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# A test suite started as a background job (`pytest ... &` in a script) inherits SIGINT ignored, and
# a process started with SIGINT ignored keeps ignoring it (Python installs no KeyboardInterrupt
# handler then), as `pipe` does for SIGTERM/SIGHUP under nohup. Restore what a terminal gives a
# foreground `pipe` before it starts (a bootstrap, not preexec_fn, which is unsafe with threads).
BOOTSTRAP = (
    "import runpy, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "for s in (signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)\n"
    "sys.argv[0] = 'pipe'\n"
    "runpy.run_module('pipeline_engine', run_name='__main__', alter_sys=True)\n"
)


def start_pipe(*args: str, cwd: Path, env: Mapping[str, str] | None = None, new_session: bool = False,
               stdin: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """`pipe ARGS` in `cwd` with stop signals at their defaults; stdout/stderr captured as text.

    `env` is added to this process's environment; `new_session` is `setsid pipe ... &`.
    """
    return subprocess.Popen(
        [sys.executable, "-c", BOOTSTRAP, *args], cwd=cwd, env={**os.environ, **(env or {})}, stdin=stdin,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=new_session,
    )


def pipe_process(*args: str, cwd: Path, env: Mapping[str, str] | None = None, check: int | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `pipe ARGS` to completion as a real process; `check` is the exit code to assert (None: any).

    A run longer than `timeout` seconds is killed and fails the test with its stderr.
    """
    proc = start_pipe(*args, cwd=cwd, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"pipe {' '.join(args)} did not finish in {timeout} s\n{err}") from None
    if check is not None:
        assert proc.returncode == check, (
            f"pipe {' '.join(args)} exited {proc.returncode}, expected {check}\n--- stdout\n{out}\n--- stderr\n{err}"
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    """Wait for a real process to write `path` (non-empty) and return its text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} was never written")


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting for a reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """Wait for a killed process to disappear (the kernel may take a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.01)
    return False


def forked_children(proc: subprocess.Popen[str], timeout: float = 30.0) -> list[Any]:
    """`proc`'s forked python children (psutil Processes; not git or other programs it runs),
    polled until there are some; empty when `proc` ended first."""
    import psutil

    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            kids = [c for c in parent.children() if "python" in c.name().lower()]
        except psutil.NoSuchProcess:
            return []
        if kids:
            return kids
        time.sleep(0.002)
    return []
