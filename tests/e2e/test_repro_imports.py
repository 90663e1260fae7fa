"""Start-up cost guard: status and a no-op repro of a pipeline do not import networkx or pandas."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Workspace

pytestmark = pytest.mark.e2e

PROBE = """
import sys
from pipeline_engine.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="pipe", standalone_mode=False)
finally:
    heavy = sorted(m for m in ("networkx", "pandas", "fsspec", "git") if m in sys.modules)
    print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


def heavy_modules(workspace: Workspace, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=workspace.root, capture_output=True,
                          text=True, check=True)
    return proc.stderr.rpartition("HEAVY:")[2].strip()


def test_status_and_noop_repro_stay_light(workspace: Workspace) -> None:
    workspace.write({"in.txt": "x"})
    workspace.write_pipeline({"s": {"cmd": "cp in.txt out.txt", "deps": ["in.txt"], "outs": ["out.txt"]}})
    assert heavy_modules(workspace, "repro") == ""
    assert heavy_modules(workspace, "repro") == ""
    assert heavy_modules(workspace, "status") == ""
