"""examples/ci: the workflow's commands, run as written in a fresh clone of a real repository, make the report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Workspace

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
SKIPPED = ("pip install", "gh pr comment")  # the network steps: installing pipe and posting the comment

TRAIN = """\
import yaml
lr = yaml.safe_load(open("params.yaml"))["lr"]
open("metrics.json", "w").write('{"acc": %s, "loss": 0.5}' % round(lr * 2, 6))
with open("loss.csv", "w") as f:
    f.write("step,loss\\n" + "".join(f"{i},{1 / (i + 1 + lr):.4f}\\n" for i in range(5)))
"""


def _shell_env(tmp_path: Path) -> dict[str, str]:
    """PATH with `pipe` and `python` (this interpreter), as a CI job has after installing pipe."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "pipe").write_text(f'#!/bin/sh\nexec {sys.executable} -m pipeline_engine "$@"\n')
    (bindir / "pipe").chmod(0o755)
    (bindir / "python").symlink_to(sys.executable)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}


def _workflow_commands() -> list[str]:
    workflow = yaml.safe_load((CI / "pipe-report.yml").read_text())
    steps = workflow["jobs"]["report"]["steps"]
    return [s["run"] for s in steps if "run" in s and not any(skip in s["run"] for skip in SKIPPED)]


def test_workflow_runs_the_pipeline_and_reports_metrics_params_and_plots(workspace: Workspace,
                                                                          tmp_path: Path) -> None:
    commands = _workflow_commands()
    assert [c.split()[:2] for c in commands[:4]] == [["pipe", "pull"], ["pipe", "repro"], ["pipe", "push"],
                                                     ["pipe", "fetch"]]
    workspace.write({"train.py": TRAIN, "params.yaml": "lr: 0.1\n"})
    workspace.write_pipeline({"train": {"cmd": "python train.py", "deps": ["train.py"], "params": ["lr"],
                                        "metrics": ["metrics.json"], "plots": ["loss.csv"]}})
    workspace.add_remote(tmp_path / "store")
    env = _shell_env(tmp_path)
    for args in (["repro"], ["push"]):
        subprocess.run(["pipe", *args], cwd=workspace.root, env=env, check=True, capture_output=True)
    workspace.commit("baseline")
    workspace.git("checkout", "-q", "-b", "feature")
    workspace.write({"params.yaml": "lr: 0.3\n"})
    workspace.commit("a higher learning rate")  # the pull request: params changed, results not committed
    ci = workspace.clone("ci")  # what actions/checkout gives the job: no cache, no outputs
    shutil.copytree(CI, ci.root / "examples" / "ci")
    outputs = tmp_path / "github-output"
    job_env = {**env, "BASE": "origin/main", "GITHUB_OUTPUT": str(outputs)}

    for command in commands:
        proc = subprocess.run(["sh", "-ec", command], cwd=ci.root, env=job_env, capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"

    report = (ci.root / "report.md").read_text()
    assert report.split("\n## Plots")[0] == (
        "## Metrics: `origin/main` -> this branch\n\n"
        "| Path         | Metric | origin/main | workspace | Change | Change % |\n"
        "|--------------|--------|-------------|-----------|--------|----------|\n"
        "| metrics.json | acc    | 0.2         | 0.6       | 0.4    | +200.00% |\n"
        "\n## Params: `origin/main` -> this branch\n\n"
        "| Path        | Param | origin/main | workspace |\n"
        "|-------------|-------|-------------|-----------|\n"
        "| params.yaml | lr    | 0.1         | 0.3       |\n"
    )
    assert "rendered=true" in outputs.read_text()
    assert any(p.suffix == ".png" for p in (ci.root / "plots").rglob("*"))
