"""Benchmark data and repositories: deterministic trees of small files, big files, git repos per tool.

`make_files` writes 1,000,000 files in well under a minute: contents are slices of one random
pool, each prefixed by the file's index so no two files are equal (deduplication would flatter
the tools). The same `count` and `seed` always give the same tree.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

from common import run

__all__ = ["commit_all", "first_file", "make_big", "make_files", "new_repo"]

_POOL = 1 << 20


def _dirs(count: int) -> int:
    """Subdirectories of a tree: 100, or one per 1,000 files for big trees."""
    return max(100, count // 1000)


def _name(count: int, i: int) -> str:
    dirs = _dirs(count)
    return os.path.join(f"{i % dirs:0{len(str(dirs - 1))}}", f"{i:07}.bin")


def make_files(root: Path, count: int, *, seed: int = 7) -> None:
    """`count` distinct files of 1-4 KiB in `_dirs(count)` subdirectories of `root`."""
    rnd = random.Random(seed)
    pool = rnd.randbytes(_POOL)
    for d in {os.path.dirname(_name(count, i)) for i in range(min(count, _dirs(count)))}:
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        size = rnd.randint(1024, 4096)
        start = rnd.randrange(_POOL - size)
        fd = os.open(root / _name(count, i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"%07d\n" % i + pool[start : start + size - 8])
        finally:
            os.close(fd)


def first_file(root: Path, count: int) -> Path:
    """The path of file 0 of a tree made by `make_files(root, count)` (the one a change edits)."""
    return root / _name(count, 0)


def make_big(path: Path, mib: int) -> None:
    """One file of `mib` MiB of random data, written in 16 MiB blocks."""
    block = os.urandom(16 << 20)
    with open(path, "wb") as f:
        f.writelines(block for _ in range(max(1, mib // 16)))


def new_repo(base: Path, tool: str, exe: str) -> Path:
    """A new git repository under `base` with `tool init` done (dvc: no autostage)."""
    root = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=base))
    run(["git", "init", "-q"], root)
    run([exe, "init"], root)
    if tool == "dvc":
        run([exe, "config", "core.autostage", "false"], root)
    return root


def commit_all(root: Path, message: str = "bench") -> None:
    """Commit everything git does not ignore (pointers, config), so the repository can be cloned."""
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", message],
        root)
