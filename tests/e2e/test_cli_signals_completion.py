"""`pipe` as a real process: Ctrl-C exits 130 in every command (prompts included); shell completion works."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli, Workspace
from tests.procutil import pipe_process, start_pipe

pytestmark = pytest.mark.e2e


def _read_until(stream: object, text: str, timeout: float = 30) -> str:
    """Read a child's stream byte by byte until `text` appears (a prompt has no newline)."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        assert time.monotonic() < deadline, f"never saw {text!r}; got {seen!r}"
        chunk = os.read(fd, 1)
        assert chunk, f"stream ended before {text!r}; got {seen!r}"
        seen += chunk
    return seen.decode()


def test_ctrl_c_at_a_confirmation_prompt_exits_130(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"junk.txt": "junk"})
    cli.run("add", "junk.txt")
    (workspace.root / "junk.txt.pipe").unlink()
    proc = start_pipe("gc", "-w", cwd=workspace.root, stdin=subprocess.PIPE)  # a stdin kept open for the prompt
    _read_until(proc.stderr, "[y/N]")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Aborted!" not in err and "Traceback" not in err
    assert any(p.is_file() for p in (workspace.root / ".pipe" / "cache" / "objects").rglob("*")), "gc removed data"


def _wait_until_reading(proc: subprocess.Popen[str], roots: list[Path], timeout: float = 60) -> None:
    """Wait until `proc` has a file under one of `roots` open (it is inside the command, past
    start-up), or has exited. Polling its open files, not sleeping: a loaded machine can take
    seconds to import the package."""
    deadline = time.monotonic() + timeout
    prefixes = tuple(str(r) + os.sep for r in roots)
    while proc.poll() is None and time.monotonic() < deadline:
        fd_dir = Path(f"/proc/{proc.pid}/fd")
        try:
            targets = [os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)]
        except OSError:
            targets = []
        if any(t.startswith(prefixes) for t in targets):
            return
        time.sleep(0.005)


@pytest.mark.parametrize("command", [("add", "data"), ("push",), ("status",)])
def test_ctrl_c_while_a_data_command_works_exits_130(
    workspace: Workspace, cli: Cli, command: tuple[str, ...]
) -> None:
    files = {f"f{i}": os.urandom(512) for i in range(2000)}
    workspace.write({"data": files})
    cli.run("remote", "add", "-d", "r", str(workspace.root.parent / "remote"))
    if command[0] != "add":
        cli.run("add", "data")
        workspace.write({"data": {"f0": b"changed"}})  # status hashes the directory again
    proc = start_pipe(*command, cwd=workspace.root)
    _wait_until_reading(proc, [workspace.root / "data", workspace.root / ".pipe" / "cache"])
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # A command that finished before the signal arrived exits 0; one that was interrupted, 130.
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err and "Aborted!" not in err, err
    if proc.returncode == 130:
        assert "interrupted" in err
    pipe_process(*command, cwd=workspace.root, check=0)


def test_bash_completion_script_is_produced_and_completes_commands(workspace: Workspace) -> None:
    script = pipe_process(cwd=workspace.root, env={"_PIPE_COMPLETE": "bash_source"}, check=0)
    assert "_pipe_completion" in script.stdout, script.stderr
    env = {"_PIPE_COMPLETE": "bash_complete", "COMP_WORDS": "pipe sta", "COMP_CWORD": "1"}
    done = pipe_process(cwd=workspace.root, env=env)
    assert "plain,status" in done.stdout.splitlines() and "plain,stage" in done.stdout.splitlines(), done.stdout


def _data(workspace: Workspace, dirs: int = 3, files: int = 200) -> None:
    workspace.write({f"d{i}": {f"f{j}": os.urandom(2048) for j in range(files)} for i in range(dirs)})


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux 'script' for a terminal")
def test_on_a_terminal_bars_show_bytes_and_every_display_ends(workspace: Workspace, tmp_path: Path) -> None:
    _data(workspace)
    log = tmp_path / "typescript"
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "pipeline_engine", "add", "d0", "d1", "d2"])
    env = {**os.environ, "PIPE_PROGRESS_DELAY": "0", "COLUMNS": "120"}
    proc = subprocess.run(["script", "-qec", command, str(log)], cwd=workspace.root, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=300)
    screen = log.read_bytes().decode(errors="replace")
    assert proc.returncode == 0, screen[-2000:]
    assert "hashing d0" in screen and "KiB" in screen and "/s" in screen, screen[-2000:]
    # rich hides the cursor when a display starts and shows it when it stops: a display nobody
    # stopped (the frozen bars) leaves more hides than shows.
    starts, stops = screen.count("\x1b[?25l"), screen.count("\x1b[?25h")
    assert starts >= 1 and starts == stops, (starts, stops)
    assert "added  d2" in screen.split("\x1b[?25h")[-1], "the summary comes after the last bar"


def test_off_a_terminal_only_the_summary_is_printed(workspace: Workspace) -> None:
    _data(workspace)
    proc = pipe_process("add", "d0", "d1", "d2", cwd=workspace.root, env={"PIPE_PROGRESS_DELAY": "0"}, check=0)
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr and "hashing" not in proc.stderr, proc.stderr
    assert [line.split()[:2] for line in proc.stderr.splitlines()[:3]] == [["added", f"d{i}"] for i in range(3)]
