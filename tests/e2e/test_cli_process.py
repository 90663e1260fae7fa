"""`pipe` as a real subprocess: entry point, exit codes, stderr, colour, start-up imports, the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.procutil import pipe_process

pytestmark = pytest.mark.e2e

HEAVY = ("pandas", "networkx", "fsspec", "git", "jsonschema", "psutil", "ruamel", "pathspec")


def _modules_after(args: list[str], cwd: Path) -> set[str]:
    code = textwrap.dedent(
        f"""
        import sys
        from pipeline_engine.cli import cli
        try:
            cli.main({args!r}, prog_name="pipe", standalone_mode=False)
        finally:
            heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})
            print()
            print("HEAVY:" + " ".join(heavy))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.rpartition("HEAVY:")[2].split())


def test_help_and_data_only_status_do_not_import_heavy_libraries(workspace: Workspace) -> None:
    assert _modules_after(["--help"], workspace.root) == set()
    workspace.write({"d": {"a": "1"}})
    pipe_process("add", "d", cwd=workspace.root, check=0)
    assert _modules_after(["status"], workspace.root) == set()


def test_user_error_exits_1_with_message_and_no_traceback(workspace: Workspace) -> None:
    proc = pipe_process("add", "missing.csv", cwd=workspace.root)
    assert proc.returncode == 1
    assert "error: 'missing.csv' does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_verbose_user_error_shows_traceback(workspace: Workspace) -> None:
    proc = pipe_process("-v", "add", "missing.csv", cwd=workspace.root)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_usage_error_exits_2(workspace: Workspace) -> None:
    proc = pipe_process("add", cwd=workspace.root)
    assert proc.returncode == 2 and "Missing argument" in proc.stderr


def test_output_has_no_colour_codes_when_not_a_tty(workspace: Workspace) -> None:
    workspace.write({"d": {"a": "1"}})
    pipe_process("add", "d", cwd=workspace.root)
    workspace.write({"d": {"a": "2"}})
    proc = pipe_process("status", cwd=workspace.root)
    assert "d  modified" in proc.stdout and "\x1b[" not in proc.stdout + proc.stderr


def test_second_process_is_refused_with_holder_pid(workspace: Workspace) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sys
            from pipeline_engine.project import Project
            with Project.find().mutex("pipe repro (test holder)"):
                print("locked", flush=True)
                sys.stdin.read()
            """
        )],
        cwd=workspace.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        workspace.write({"f": "x"})
        proc = pipe_process("add", "f", cwd=workspace.root)
        assert proc.returncode == 1
        assert f"pid {holder.pid}: pipe repro (test holder)" in proc.stderr
        assert "--wait" not in proc.stderr  # 'pipe add' has no --wait: the hint must not offer it
    finally:
        holder.kill()
        holder.communicate()
    # The kernel released the lock of the killed process: no stale lock to clean up.
    pipe_process("add", "f", cwd=workspace.root, check=0)


def test_internal_error_exits_70_with_bug_report(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                 workspace: Workspace) -> None:
    from pipeline_engine.cli import main
    from pipeline_engine.ops import status as status_ops

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(status_ops, "data_status", broken)
    monkeypatch.setattr(sys, "argv", ["pipe", "status"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 70
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and "this is a bug" in err


def test_data_round_trip_through_real_processes(workspace: Workspace) -> None:
    data = os.urandom(200_000)
    workspace.write({"data": {"model.bin": data, "imgs": {f"{i}.png": str(i) for i in range(50)}}})
    pipe_process("add", "data/model.bin", "data/imgs", cwd=workspace.root, check=0)
    workspace.commit("data")
    import shutil

    shutil.rmtree(workspace.root / "data/imgs")  # the data, not its pointers (never resurrected)
    (workspace.root / "data/model.bin").unlink()
    pipe_process("checkout", cwd=workspace.root, check=0)
    assert (workspace.root / "data/model.bin").read_bytes() == data
    status = pipe_process("status", "--exit-code", cwd=workspace.root)
    assert status.returncode == 0, status.stdout + status.stderr
