"""Helpers for the repro tests: stage commands that count their runs in a file outside the project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class Counter:
    """Counts how often each stage's command really ran (one line per run, outside every out)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def cmd(self, name: str, command: str) -> str:
        """`command`, recording one run of `name` first."""
        return f"echo run >> {self.dir / name} && {command}"

    def runs(self, name: str) -> int:
        """How many times `name` ran so far."""
        path = self.dir / name
        return len(path.read_text().splitlines()) if path.exists() else 0

    def snapshot(self) -> dict[str, int]:
        """Runs per stage so far."""
        return {p.name: self.runs(p.name) for p in self.dir.iterdir()}


def lock_of(root: Path) -> dict[str, Any]:
    """pipeline.lock as plain data."""
    data: dict[str, Any] = yaml.safe_load((root / "pipeline.lock").read_text())
    return data
