"""The get-started example, driven by real `pipe` processes: all run, then nothing, then only what a param touches."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_engine.cli import COMMANDS
from tests.procutil import pipe_process

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "get-started"
STAGES = ("prepare", "featurize", "train", "evaluate")
# Every file a stage writes, by stage.
OUTPUTS = {
    "prepare": ("data/prepared/train.csv", "data/prepared/test.csv"),
    "featurize": ("data/features/train.csv", "data/features/test.csv"),
    "train": ("models/model.json",),
    "evaluate": ("metrics.json", "plots/roc.csv"),
}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif("repro" not in COMMANDS, reason="`pipe repro` is not registered yet (issue 3)"),
]


# Stage commands find this interpreter as `python`.
PYTHON_ON_PATH = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a command (not pipe) in the example project."""
    proc = subprocess.run(list(args), cwd=root, env={**os.environ, **PYTHON_ON_PATH}, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def lock_entries(root: Path) -> dict[str, Any]:
    lock = yaml.safe_load((root / "pipeline.lock").read_text())
    entries: dict[str, Any] = lock["stages"]
    return entries


def stamps(root: Path, stage: str) -> dict[str, int]:
    """mtime (ns) of every file the stage writes: a stage that ran rewrote them."""
    return {path: (root / path).stat().st_mtime_ns for path in OUTPUTS[stage]}


def set_lr(root: Path, value: str) -> None:
    path = root / "params.yaml"
    text, count = re.subn(r"(?m)^(  lr:)\s*\S+", rf"\g<1> {value}", path.read_text())
    assert count == 1
    path.write_text(text)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the example with git, pipe init, generated raw data and `pipe add`."""
    root = tmp_path / "get-started"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__"))
    run(root, "git", "init", "-q")
    pipe_process("init", cwd=root, env=PYTHON_ON_PATH, check=0)
    run(root, sys.executable, "src/generate.py")
    pipe_process("add", "data/raw.csv", cwd=root, env=PYTHON_ON_PATH, check=0)
    return root


def test_get_started_runs_all_then_nothing_then_only_what_a_param_touches(project: Path) -> None:
    pipe_process("repro", cwd=project, env=PYTHON_ON_PATH, check=0)
    assert sorted(lock_entries(project)) == sorted(STAGES)
    metrics = yaml.safe_load((project / "metrics.json").read_text())
    assert 0.5 < metrics["auc"] <= 1.0
    before = {stage: stamps(project, stage) for stage in STAGES}
    lock_before = (project / "pipeline.lock").read_bytes()

    pipe_process("repro", cwd=project, env=PYTHON_ON_PATH, check=0)
    assert (project / "pipeline.lock").read_bytes() == lock_before
    assert {stage: stamps(project, stage) for stage in STAGES} == before

    entries_before = lock_entries(project)
    model_before = (project / "models/model.json").read_text()
    set_lr(project, "0.3")
    pipe_process("repro", cwd=project, env=PYTHON_ON_PATH, check=0)
    entries_after = lock_entries(project)

    for stage in ("prepare", "featurize"):
        assert entries_after[stage] == entries_before[stage], f"{stage} should not have rerun"
        assert stamps(project, stage) == before[stage], f"{stage} should not have rerun"
    for stage in ("train", "evaluate"):
        assert entries_after[stage] != entries_before[stage], f"{stage} should have rerun"
        assert stamps(project, stage) != before[stage], f"{stage} should have rerun"
    assert (project / "models/model.json").read_text() != model_before
