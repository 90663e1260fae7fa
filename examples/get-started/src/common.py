"""Small helpers shared by the example's stage scripts: read params, write files whole."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load_params(section: str) -> dict[str, Any]:
    """One section of params.yaml (the scripts read it themselves, like DVC stages do)."""
    with open(ROOT / "params.yaml", encoding="utf-8") as f:
        params: dict[str, Any] = yaml.safe_load(f)
    return params[section]


def write_json(path: Path, data: Any) -> None:
    """Write JSON to a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_csv(frame: Any, path: Path) -> None:
    """Write a pandas DataFrame as CSV to a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    os.replace(tmp, path)
