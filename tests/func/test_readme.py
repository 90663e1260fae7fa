"""The README quickstart works exactly as written, run line by line in a real shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _quickstart() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart\n\n```sh\n(.*?)```", text, re.DOTALL)
    assert block, "README has no Quickstart sh block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_quickstart_works_as_written(tmp_path: Path) -> None:
    lines = [ln for ln in _quickstart() if not ln.startswith("pip install")]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "pipe").write_text(f"#!/bin/sh\nexec {sys.executable} -m pipeline_engine \"$@\"\n")
    (bindir / "pipe").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    script = "set -ex\n" + "\n".join(lines) + "\n"
    proc = subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"quickstart failed:\n{proc.stdout}\n{proc.stderr}"
    # After rm + checkout: the files are back, and the image is the one of the last 'pipe add'.
    assert (tmp_path / "demo/data/images/0001.jpg").read_text() == "img\nx\n"
    assert (tmp_path / "demo/data/big.bin").stat().st_size == 1_000_000
