"""Run records: a running command is recorded in its record directory and only runs once recorded;
records of earlier runs lead to the process groups still running, and only to those."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from pipeline_engine.runner.orphans import end_leftovers
from pipeline_engine.runner.process import find_leftovers, run_command
from tests.procutil import is_running, wait_for_file, wait_gone


def test_a_running_command_is_recorded_until_it_ends(tmp_path: Path) -> None:
    records = tmp_path / "running"
    seen: list[dict[str, object]] = []

    def watch() -> None:
        wait_for_file(tmp_path / "started")
        seen.extend(json.loads(p.read_text()) for p in records.glob("*.json"))
        (tmp_path / "go").touch()

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = run_command("echo $$ > started; while [ ! -e go ]; do sleep 0.01; done", cwd=tmp_path,
                         env=os.environ, record_dir=records, name="train")
    watcher.join(timeout=10)

    assert result.returncode == 0
    pid = int((tmp_path / "started").read_text())
    assert [(r["name"], r["pid"], r["pgid"]) for r in seen] == [("train", pid, pid)]
    assert list(records.iterdir()) == []


def test_a_command_whose_record_cannot_be_written_never_runs(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "running"
    not_a_dir.write_text("a file where the record directory should be")
    with pytest.raises(OSError):
        run_command("touch ran", cwd=tmp_path, env=os.environ, record_dir=not_a_dir, name="s")
    assert not (tmp_path / "ran").exists()


def write_record(records: Path, pid: int, create_time: float, **extra: object) -> Path:
    records.mkdir(parents=True, exist_ok=True)
    path = records / f"{pid}.json"
    path.write_text(json.dumps({"schema": 1, "name": "s", "pid": pid, "pgid": pid,
                                "create_time": create_time, "cmd": "x", **extra}))
    return path


def test_only_live_recorded_groups_are_leftovers_and_bad_records_are_dropped(tmp_path: Path) -> None:
    import psutil

    records = tmp_path / "running"
    orphan = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60 & wait"], start_new_session=True)
    try:
        ours = write_record(records, orphan.pid, psutil.Process(orphan.pid).create_time())
        reused = write_record(records, os.getppid(), 12.0)  # a live PID, but not the recorded process
        (records / "9.json").write_text("{not json")
        write_record(records, 2**22 + 7, 12.0)  # long gone

        found = find_leftovers(records)

        assert [(f.pid, f.record) for f in found] == [(orphan.pid, ours)]
        assert sorted(records.iterdir()) == [ours], "records of ended or reused processes are dropped"
        assert reused.exists() is False
        end_leftovers(found, wait=False, grace=0.3)  # the group ignores SIGTERM: SIGKILL after grace
        assert wait_gone(orphan.pid)
        assert list(records.iterdir()) == []
    finally:
        if is_running(orphan.pid):
            orphan.kill()
        orphan.wait()
