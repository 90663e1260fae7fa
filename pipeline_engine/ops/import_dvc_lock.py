"""For `pipe import-dvc`: which dvc.lock stages DVC itself would call up to date in the workspace.

Only those are recorded in pipeline.lock (`pipe commit` of them); a stage DVC would rerun (its cmd,
a param, a dep or an out changed since dvc.lock) stays unrecorded, so `pipe repro` reruns it as
`dvc repro` would, instead of the import silently blessing the change. DVC's md5s are compared
with the workspace: a file's md5 (DVC 2's entries without `hash: md5` hash text files with CRLF
turned into LF, as DVC 2 did), a directory's files against DVC's manifest when its object is at
hand (else the directory is trusted), params by value.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline_engine.core.pathgate import check_relpath, resolve_in_project
from pipeline_engine.core.yamlio import parse_yaml
from pipeline_engine.errors import PipeError

__all__ = ["stale_reason"]

#: `read_manifest(md5, path)`: DVC's directory manifest, or None when its object is not at hand.
ReadManifest = Callable[[str, str], "list[dict[str, Any]] | None"]


def stale_reason(root: Path, name: str, entry: Mapping[str, Any], cmd: str | Sequence[str] | None,
                 read_manifest: ReadManifest) -> str | None:
    """Why DVC would rerun stage `name` (its dvc.lock `entry`), or None when it is up to date.

    `cmd` is the stage's command as pipeline.yaml resolves it now.

    Raises:
        UnsafePathError: a path in the entry fails the path gate.
    """
    locked = entry.get("cmd")
    as_list = [cmd] if isinstance(cmd, str) else list(cmd or ())
    if cmd is not None and ([locked] if isinstance(locked, str) else locked) != as_list:
        return "its command changed"
    for kind in ("deps", "outs"):
        for item in entry.get(kind) or []:
            if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
                continue
            path = check_relpath(item["path"], source=f"dvc.lock: stage '{name}'")
            why = _changed(root, path, item, read_manifest)
            if why:
                return f"{kind[:-1]} '{path}' {why}"
    for file, values in (entry.get("params") or {}).items():
        why = _params_changed(root, str(file), values if isinstance(values, Mapping) else {})
        if why:
            return why
    return None


def _md5(path: Path, dos2unix: bool) -> str:
    data = path.read_bytes()
    if dos2unix and b"\0" not in data[:8192]:
        data = data.replace(b"\r\n", b"\n")
    return hashlib.md5(data).hexdigest()


def _changed(root: Path, path: str, item: Mapping[str, Any], read_manifest: ReadManifest) -> str | None:
    md5 = item.get("md5")
    if not isinstance(md5, str):
        return None  # an uncached or non-md5 entry (a URL dep): nothing to compare
    full = resolve_in_project(root, path, source=path)
    dos2unix = item.get("hash") != "md5"
    if not md5.endswith(".dir"):
        if not full.is_file():
            return "is missing"
        return None if _md5(full, dos2unix) == md5 else "changed"
    if not full.is_dir():
        return "is missing"
    manifest = read_manifest(md5, path)
    if manifest is None:
        return None
    expected = {str(e.get("relpath")): str(e.get("md5")) for e in manifest}
    found: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(full):
        for f in files:
            p = Path(dirpath, f)
            found[p.relative_to(full).as_posix()] = _md5(p, dos2unix) if p.relative_to(full).as_posix() in expected else ""
    return None if found == expected else "changed"


def _params_changed(root: Path, file: str, values: Mapping[str, Any]) -> str | None:
    rel = check_relpath(file, source="dvc.lock: params")
    path = resolve_in_project(root, rel, source=rel, follow=True)
    if not path.is_file():
        return f"params file '{file}' is missing"
    if file.endswith((".toml", ".py")):
        return None  # not compared here: pipe's own params reader records them in `pipe commit`
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if file.endswith(".json") else parse_yaml(text, source=file)
    except (PipeError, ValueError) as exc:
        return f"params file '{file}' cannot be read ({str(exc)[:80]})"
    for key, value in values.items():
        node: Any = data
        for part in str(key).split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node != value:
            return f"param '{key}' changed"
    return None
