"""`pipe plots diff`'s page opened in a real headless browser (Debian's chromium) with no network: the charts render.

The browser runs in a network namespace of its own when `unshare -n` is allowed (as root in CI),
else with every host name unresolvable and a proxy that goes nowhere: either way a page that
needed a CDN would draw nothing. vega-embed draws each chart as an `<svg class="marks">`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Workspace
from tests.procutil import pipe_process

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EVIL = "</script><script>document.body.setAttribute('data-pwned','1')</script><img src=x onerror=alert(1)>"


def _offline_prefix() -> list[str]:
    """`unshare -n` when this process may create a network namespace, else nothing (flags cut the network)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "-n"]
    return []


def _dump_dom(page: Path, profile: Path) -> str:
    assert CHROMIUM is not None
    args = [
        *_offline_prefix(), CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", f"--user-data-dir={profile}",
        "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it with apt-get)")
def test_plots_diff_page_renders_every_chart_offline_in_chromium(workspace: Workspace, tmp_path: Path) -> None:
    plots = [
        {"loss.csv": {"x": "epoch", "y": "loss", "title": EVIL}},
        {"Confusion": {"template": "confusion", "x": "actual", "y": {"cm.json": "predicted"}}},
    ]
    workspace.write({"pipeline.yaml": yaml.safe_dump({"plots": plots})})
    cm = json.dumps([{"actual": a, "predicted": p} for a, p in ((0, 0), (0, 1), (1, 1))])
    workspace.history([{"loss.csv": "epoch,loss\n0,1.0\n1,0.5\n", "cm.json": cm}])
    workspace.write({"loss.csv": "epoch,loss\n0,0.9\n1,0.3\n"})
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    proc = pipe_process("plots", "diff", "-o", "out", cwd=workspace.root, env=env, check=0)

    page = workspace.root / "out" / "index.html"
    assert proc.stdout.strip() == page.as_uri()
    dom = _dump_dom(page, tmp_path / "profile")
    charts = re.findall(r'<div id="(plot-\d+)" class="vega[^"]*"[^>]*>.*?<svg[^>]*class="marks"', dom, flags=re.DOTALL)
    assert charts == ["plot-0", "plot-1"], dom[-3000:]
    assert "HEAD" in dom and "workspace" in dom  # the legend (and the confusion panels) name the revisions
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "Error" not in re.sub(r"<script.*?</script>", "", dom, flags=re.DOTALL)
