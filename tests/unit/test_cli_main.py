"""The console-script entry point pauses the garbage collector only while the command loads: the
command itself runs with it on (its cycles are collected), the loaded modules frozen out of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROBE = """
import gc, sys
import pipeline_engine.ops.checkout as ops_checkout

def probe(*args, **kwargs):
    print("collector", "on" if gc.isenabled() else "off", "frozen", gc.get_freeze_count() > 1000)
    return []

ops_checkout.checkout = probe
sys.argv = ["pipe", "checkout"]
from pipeline_engine.cli import main
main()
"""


def test_the_command_runs_with_the_collector_on_and_the_loaded_modules_frozen(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pipeline_engine", "init", "--no-scm"], cwd=tmp_path, check=True,
                   capture_output=True)
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "collector on frozen True"
