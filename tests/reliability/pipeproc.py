"""Starting `pipe` as a real process the way a user's shell does, for kill and concurrency tests."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def _default_stop_signals() -> None:
    # A test suite started as a background job (`pytest ... &` in a script) inherits SIGINT
    # ignored, and a process started with SIGINT ignored keeps ignoring it (Python then installs
    # no KeyboardInterrupt handler): restore what a foreground terminal gives `pipe`.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def start_pipe(cwd: Path, *args: str, new_session: bool = False) -> subprocess.Popen[str]:
    """`pipe ARGS` in `cwd`, with stop signals at their defaults; stdout/stderr captured as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline_engine", *args], cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_stop_signals, start_new_session=new_session,
    )


def run_pipe(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `pipe ARGS` to completion (not checked)."""
    proc = start_pipe(cwd, *args)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"pipe {' '.join(args)} did not finish in {timeout} s\n{err}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
