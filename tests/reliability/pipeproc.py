"""Starting `pipe` as a real process the way a user's shell does, for kill and concurrency tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A test suite started as a background job (`pytest ... &` in a script) inherits SIGINT ignored, and
# a process started with SIGINT ignored keeps ignoring it (Python installs no KeyboardInterrupt
# handler then), as `pipe` does for SIGTERM/SIGHUP under nohup. Restore what a terminal gives a
# foreground `pipe` before it starts (a bootstrap, not preexec_fn, which is unsafe with threads).
_BOOTSTRAP = (
    "import runpy, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "for s in (signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)\n"
    "sys.argv[0] = 'pipe'\n"
    "runpy.run_module('pipeline_engine', run_name='__main__', alter_sys=True)\n"
)


def start_pipe(cwd: Path, *args: str, new_session: bool = False) -> subprocess.Popen[str]:
    """`pipe ARGS` in `cwd`, with stop signals at their defaults; stdout/stderr captured as text."""
    return subprocess.Popen(
        [sys.executable, "-c", _BOOTSTRAP, *args], cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=new_session,
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
