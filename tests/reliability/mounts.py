"""Small filesystems for full-disk tests: a tmpfs mounted under the test's tmp_path (root only)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def mount(*args: str) -> None:
    """`mount ARGS`; the test is skipped where mounting is not allowed (not root, no permission)."""
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here (needs root and mount permission): {proc.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """An empty tmpfs of `size` (mount's syntax: `4194304`, `64m`) at the new directory `where`."""
    if shutil.which("mount") is None:
        pytest.skip("no 'mount' command")
    where.mkdir()
    mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
