"""How stage commands run and what `pipe repro` shows while they run.

A `cmd` list runs each item in its own shell, in order, stopping at the first failure (DVC); the
lock keeps the list. `repro` prints `Running stage 'x'` and `> cmd` before each command, and the
output of a stage whose output is logged (-j > 1) streams live, with a `stage | ` prefix on every
line while several stages run at once.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import Cli, Workspace
from tests.procutil import pipe_process, start_pipe

pytestmark = pytest.mark.e2e


# ---- cmd lists ---------------------------------------------------------------------------------------


def test_cmd_list_items_run_each_in_its_own_shell_in_wdir(workspace: Workspace, cli: Cli) -> None:
    # The reproduction: the `cd` of the first item must not carry over to the second.
    workspace.write({"w": {"keep": ""}})
    workspace.write_pipeline({"s": {
        "cmd": ["mkdir -p sub && cd sub && X=1", 'pwd > where.txt && echo "x=[$X]" >> where.txt'],
        "wdir": "w", "outs": ["where.txt"],
    }})
    cli.run("repro")
    where, x = workspace.read("w/where.txt").splitlines()
    assert Path(where).resolve() == (workspace.root / "w").resolve()
    assert x == "x=[]"
    assert not (workspace.root / "w" / "sub" / "where.txt").exists()


def test_cmd_list_stops_at_the_first_failing_item_and_names_it(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"s": {
        "cmd": ["echo one > one.txt", "exit 4", "echo three > three.txt"], "outs": ["one.txt"],
    }})
    result = cli.run("repro", exit_code=3)
    assert (workspace.root / "one.txt").exists() and not (workspace.root / "three.txt").exists()
    assert "'exit 4'" in result.stderr and "code 4" in result.stderr
    assert not (workspace.root / "pipeline.lock").exists()


def test_multiline_string_is_still_one_script_that_stops_at_its_first_failing_line(
    workspace: Workspace, cli: Cli
) -> None:
    workspace.write_pipeline({"s": {"cmd": "mkdir -p sub\ncd sub\npwd > where.txt\n", "outs": ["sub/where.txt"]}})
    cli.run("repro")
    assert Path(workspace.read("sub/where.txt").strip()).resolve() == (workspace.root / "sub").resolve()
    workspace.write_pipeline({"t": {"cmd": "echo a > a.txt\nfalse\necho b > b.txt\n", "outs": ["a.txt"]}})
    cli.run("repro", "t", exit_code=3)
    assert (workspace.root / "a.txt").exists() and not (workspace.root / "b.txt").exists()


def test_the_lock_keeps_a_cmd_list_as_a_list_and_a_changed_item_reruns(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"s": {"cmd": ["echo 1 > o.txt", "echo 2 >> o.txt"], "outs": ["o.txt"]}})
    cli.run("repro")
    lock = yaml.safe_load(workspace.read("pipeline.lock"))
    assert lock["stages"]["s"]["cmd"] == ["echo 1 > o.txt", "echo 2 >> o.txt"]  # DVC's dvc.lock shape
    assert "nothing to do" in cli.run("repro").stderr
    # The same text as one multi-line script is another command (DVC compares the lists too).
    workspace.write_pipeline({"s": {"cmd": "echo 1 > o.txt\necho 2 >> o.txt", "outs": ["o.txt"]}})
    assert "cmd changed" in cli.run("status").stdout
    workspace.write_pipeline({"s": {"cmd": ["echo 1 > o.txt", "echo 3 >> o.txt"], "outs": ["o.txt"]}})
    cli.run("repro")
    assert workspace.read("o.txt") == "1\n3\n"
    assert yaml.safe_load(workspace.read("pipeline.lock"))["stages"]["s"]["cmd"][1] == "echo 3 >> o.txt"


def test_a_dvc_lock_with_a_cmd_list_is_read_and_up_to_date(workspace: Workspace, cli: Cli) -> None:
    # A dvc.lock written by DVC (cmd as a YAML list, flow style) taken over as pipeline.lock: nothing reruns.
    cmd = ["echo a > o.txt", "echo b >> o.txt"]
    workspace.write_pipeline({"s": {"cmd": cmd, "outs": ["o.txt"]}})
    cli.run("repro")
    lock = yaml.safe_load(workspace.read("pipeline.lock"))
    lock["stages"]["s"]["cmd"] = list(cmd)
    (workspace.root / "pipeline.lock").write_text(yaml.safe_dump(lock, default_flow_style=True))
    assert "nothing to do" in cli.run("repro").stderr
    assert "up to date" in cli.run("status").stdout + cli.run("status").stderr


@pytest.mark.parametrize("cmd", [[], ["echo a", ""], ["echo a", 3]])
def test_an_empty_or_malformed_cmd_list_is_refused(workspace: Workspace, cli: Cli, cmd: list[object]) -> None:
    workspace.write_pipeline({"s": {"cmd": cmd}})
    result = cli.run("repro", exit_code=None)
    assert result.exit_code not in (0, 70), result.stderr
    assert "stage 's'" in result.stderr and "'cmd'" in result.stderr


# ---- what repro prints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_repro_prints_each_command_under_the_stage_header_before_it_runs(workspace: Workspace, jobs: str) -> None:
    workspace.write_pipeline({"s": {"cmd": ["echo first-output", "echo second-output > o.txt"], "outs": ["o.txt"]}})
    result = pipe_process("repro", "-j", jobs, cwd=workspace.root)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    header = err.index("Running stage 's'")
    assert header < err.index("> echo first-output") < err.index("> echo second-output > o.txt")
    if jobs == "2":  # with -j 1 the command writes to pipe's stdout directly
        assert err.index("> echo first-output") < err.index("\nfirst-output\n") < err.index("> echo second-output")
    assert "> echo" not in result.stdout


def test_quiet_repro_prints_no_header_and_no_command(workspace: Workspace) -> None:
    workspace.write_pipeline({"s": {"cmd": "echo hi > o.txt", "outs": ["o.txt"]}})
    result = pipe_process("repro", "-q", cwd=workspace.root)
    assert result.returncode == 0, result.stderr
    assert "Running stage" not in result.stderr and "> echo" not in result.stderr


class _Lines:
    """Reads a pipe line by line in a thread, so that a test can wait for a line with a deadline."""

    def __init__(self, stream: object) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """The first line (from now on) matching `pattern`; fails if the stream ends or the time runs out."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r}; got:\n{''.join(self.seen)}")


def _finish(proc: subprocess.Popen[str], lines: _Lines) -> str:
    """Wait for `pipe` to end (kill it after 60 s); its stdout."""
    try:
        stdout, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, _ = proc.communicate()
    lines.thread.join(timeout=10)
    assert proc.stderr is not None
    proc.stderr.close()
    assert proc.returncode == 0, "".join(lines.seen)
    return stdout


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the default -j is the CPU count; -j 1 is not logged")
def test_a_single_stage_streams_its_output_live_with_the_default_jobs(workspace: Workspace) -> None:
    # The stage prints a line, then waits until the test has seen that line (or gives up after 60 s).
    workspace.write_pipeline({"s": {
        "cmd": "echo first line; i=0; while [ ! -e go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; "
               "[ -e go ] && echo second line && echo done > o.txt",
        "outs": ["o.txt"],
    }})
    proc = start_pipe("repro", cwd=workspace.root)
    lines = _Lines(proc.stderr)
    stdout = ""
    try:
        assert lines.wait_for(r"first line$").strip() == "first line", "unprefixed while it runs alone"
        assert proc.poll() is None and not (workspace.root / "o.txt").exists(), "the stage had already ended"
        (workspace.root / "go").touch()
        lines.wait_for(r"second line$")
    finally:
        (workspace.root / "go").touch()
        stdout = _finish(proc, lines)
    assert workspace.read(".pipe/tmp/logs/s.log") == "first line\nsecond line\n", "the log is kept"
    assert "first line" not in stdout


def test_stages_running_together_stream_whole_prefixed_lines(workspace: Workspace) -> None:
    # Each stage prints a line, then waits for the other stage's first line (so they surely overlap),
    # then prints many lines; a long line written in pieces must still come out whole.
    def stage(me: str, other: str) -> str:
        return (f"touch started_{me}; i=0; while [ ! -e started_{other} ] && [ $i -lt 1200 ]; do sleep 0.05; "
                f"i=$((i+1)); done; [ -e started_{other} ]; for n in $(seq 1 200); do "
                f"printf '{me}-%s-' $n; printf '%0200d' 0; echo ' end'; done; echo {me} > {me}.txt")

    workspace.write_pipeline({
        "a": {"cmd": stage("a", "b"), "outs": ["a.txt"]},
        "b": {"cmd": stage("b", "a"), "outs": ["b.txt"]},
    })
    result = pipe_process("repro", "-j", "2", cwd=workspace.root)
    assert result.returncode == 0, result.stderr
    body = "0" * 200 + " end"
    for me in ("a", "b"):
        shown = [line for line in result.stderr.splitlines() if re.search(rf"\b{me}-\d+-", line)]
        assert shown == [f"{me} | {me}-{n}-{body}" for n in range(1, 201)], "\n".join(shown[:5])
        log = workspace.read(f".pipe/tmp/logs/{me}.log").splitlines()
        assert log == [f"{me}-{n}-{body}" for n in range(1, 201)], "the log keeps the unprefixed lines"
