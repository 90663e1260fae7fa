"""Helpers for tests that look into the cache: its configuration, its objects, and who reads what.

`count_opens` counts files opened under a directory; `counting_hashes` records the workspace files
pipe reads to hash them, whichever pipe module holds the hashing functions.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from pipeline_engine.core import hashing
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath

# Every function that reads a file's bytes to hash them (read_small: small files read whole).
_HASHING = ("hash_file", "copy_hashed", "read_small")


def set_cache_type(root: Path, cache_type: str) -> None:
    """Write `cache.type` into the project's config at `root`."""
    config = root / ".pipe/config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data.setdefault("cache", {})["type"] = cache_type
    config.write_text(yaml.safe_dump(data))


def object_path(root: Path, data: bytes) -> Path:
    """Where the object holding `data` lives in the cache of the project at `root`."""
    return root / ".pipe/cache/objects" / oid_to_relpath(hash_bytes(data))


def age_objects(root: Path) -> None:
    """Objects older than the hash memo's racy window, as any object a minute old."""
    for obj in (root / ".pipe/cache/objects").rglob("*"):
        if obj.is_file():
            old = obj.stat().st_mtime - 60
            os.utime(obj, (old, old))


def count_opens(monkeypatch: pytest.MonkeyPatch, under: Path, match: Callable[[str], bool]) -> Counter[str]:
    """Count every open (builtin `open` and `os.open`) of a file under `under` whose path `match`es."""
    counts: Counter[str] = Counter()
    prefix = os.fspath(under)
    real_open, real_os_open = builtins.open, os.open

    def note(path: Any) -> None:
        if isinstance(path, (str, os.PathLike)):
            text = os.fspath(path)
            if isinstance(text, str) and text.startswith(prefix) and match(text):
                counts[text] += 1

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        note(file)
        return real_open(file, *args, **kwargs)

    def counting_os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        note(path)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(os, "open", counting_os_open)
    return counts


class Hashed:
    """Workspace files read to be hashed, in call order (cache objects are not counted)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: list[str] = []

    def wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def counted(src: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
            path = Path(os.path.abspath(src))
            if path.is_relative_to(self.root) and not path.is_relative_to(self.root / ".pipe"):
                self.paths.append(path.relative_to(self.root).as_posix())
            return func(src, *args, **kwargs)

        return counted

    def take(self) -> list[str]:
        """The files hashed since the last call."""
        taken, self.paths = self.paths, []
        return taken


@contextlib.contextmanager
def counting_hashes(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hashed]:
    """Within the block, count the workspace files under `root` that pipe hashes, whichever pipe
    module calls the hashing functions (modules first imported in the block get the wrapper too,
    and the original back at its end)."""
    counter = Hashed(root)
    wrappers = {}
    for name in _HASHING:
        original = getattr(hashing, name)
        wrappers[name] = (original, counter.wrap(original))
        monkeypatch.setattr(hashing, name, wrappers[name][1])  # modules imported from now on get the wrapper
        for module in _pipe_modules():
            if getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, wrappers[name][1])
    try:
        yield counter
    finally:
        for name, (original, wrapper) in wrappers.items():
            for module in _pipe_modules():
                if getattr(module, name, None) is wrapper:
                    setattr(module, name, original)


def _pipe_modules() -> list[ModuleType]:
    return [m for n, m in list(sys.modules.items()) if n.startswith("pipeline_engine.") and m is not None]
