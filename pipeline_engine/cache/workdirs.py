"""Create the directories a tracked directory's files go into, never through a symlink that leads out."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from pathlib import Path

from pipeline_engine.core.fsutil import remove_path
from pipeline_engine.errors import CheckoutError, PathError

__all__ = ["make_dirs"]


def make_dirs(base: Path, relpath: str, dirs: Collection[str], *, force: bool) -> None:
    """Create the sub-directories of `base` that files go into, never through a symlink leading out.

    One lstat per distinct directory (and a realpath for a symlinked one): a committed symlink
    `data/sub -> /etc` must not let checkout write into /etc.
    """
    base.mkdir(parents=True, exist_ok=True)
    real_base = os.path.realpath(base)
    checked: set[str] = {""}

    def ensure(rel: str) -> None:
        # Parents first, in a loop: a manifest from a remote may nest thousands of levels deep.
        todo = []
        while rel not in checked:
            todo.append(rel)
            rel = os.path.dirname(rel)
        for rel in reversed(todo):
            ensure_one(rel)

    def ensure_one(rel: str) -> None:
        path = base / rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            path.mkdir()
        else:
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                if not real.startswith(real_base + os.sep) or not os.path.isdir(real):
                    raise PathError(
                        f"'{relpath}/{rel}' is a symlink leading outside '{relpath}' (to '{real}'); "
                        "checkout will not write through it",
                        hint=f"remove the link '{relpath}/{rel}', then run 'pipe checkout' again",
                    )
            elif not stat.S_ISDIR(st.st_mode):
                if not force:
                    raise CheckoutError(
                        f"'{relpath}/{rel}' is a file where the tracked directory has a directory",
                        hint="rerun with '--force' to replace it",
                    )
                remove_path(path)
                path.mkdir()
        checked.add(rel)

    for d in sorted(dirs):
        ensure(d)
