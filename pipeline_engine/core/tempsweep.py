"""Removes the temporary files of pipe processes that were killed before they could remove them.

Every temporary file pipe creates is named by `fsutil.temp_name()`: `.pipetmp-<pid>-<random>`.
A file with that name whose PID no longer runs is a leftover; one whose PID runs belongs to a
live pipe (perhaps of another project sharing the cache) and is left alone. Inside the cache,
the names earlier versions used are recognised too: `.<oid rest>.<pid>-<n>.tmp` (objects being
added) and `<oid>.<pid>-<hex>.part` (downloads); outside the cache only `.pipetmp-` names are
touched, so a user's own `*.tmp` file is never deleted.

A sweep walks the whole project (not `.git`, not symlinked directories) and the cache, so it
runs only when it can find something: when the project lock shows that its previous holder did
not exit cleanly (`core.mutex`), and in `pipe gc`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import TEMP_PREFIX, remove_path, temp_owner

__all__ = ["sweep_pid", "sweep_temps"]

# Temporary names of earlier versions, recognised inside the cache only.
_LEGACY_CACHE_TEMP = re.compile(r"^(?:\..+\.(\d+)-\d+\.tmp|.+\.(\d+)-[0-9a-f]+\.part)$")
_SKIP_DIRS = frozenset({".git"})


def sweep_temps(root: Path, cache_root: Path) -> int:
    """Remove the leftover temporary files under the project `root` and the cache at `cache_root`.

    Returns how many were removed. Files that vanish meanwhile, or cannot be removed, are skipped:
    a sweep is a best effort and never fails the command that runs it.
    """
    # Imported here: every command imports this module (the project lock), few ever sweep.
    import psutil

    removed = 0
    cache = os.path.normpath(os.path.realpath(cache_root))
    real_root = os.path.realpath(root)
    tops = [(real_root, False)]
    if not _is_within(cache, real_root):
        tops.append((cache, True))
    alive: dict[int, bool] = {}
    for top, in_cache in tops:
        for path, name, within_cache in _walk(top, in_cache, cache):
            pid = _owner(name, in_cache=within_cache)
            if pid is None or pid == os.getpid():
                continue
            if pid not in alive:
                alive[pid] = _running(psutil, pid)
            if alive[pid]:
                continue
            try:
                remove_path(Path(path))
                removed += 1
            except OSError:
                continue
    return removed


def sweep_pid(pid: int, directories: Iterable[str]) -> int:
    """Remove the temporary files process `pid` (which has exited) left directly in `directories`.

    For a process pipe forked itself (`core.forked`): its parent knows where its share wrote, so
    this looks only there, and at once, not at the next command. Returns how many were removed;
    a directory that is gone or unreadable is skipped.
    """
    prefix = f"{TEMP_PREFIX}{pid}-"
    removed = 0
    for directory in directories:
        try:
            with os.scandir(directory) as entries:
                names = [e.name for e in entries if e.name.startswith(prefix)]
        except OSError:
            continue
        for name in names:
            with contextlib.suppress(OSError):
                remove_path(Path(directory, name))
                removed += 1
    return removed


def _owner(name: str, *, in_cache: bool) -> int | None:
    pid = temp_owner(name)
    if pid is not None or not in_cache:
        return pid
    m = _LEGACY_CACHE_TEMP.match(name)
    if m is None:
        return None
    return int(m.group(1) or m.group(2))


def _walk(top: str, in_cache: bool, cache: str) -> Iterator[tuple[str, str, bool]]:
    """(path, name, inside the cache) of every entry under `top`; `.git` and symlinked directories are not entered.

    A temporary directory is yielded and not entered: it is removed as a whole.
    """
    stack = [(top, in_cache)]
    while stack:
        directory, within = stack.pop()
        try:
            it = os.scandir(directory)
        except OSError:
            continue  # vanished or unreadable: nothing of ours to find there
        with it:
            for entry in it:
                yield entry.path, entry.name, within
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir and entry.name not in _SKIP_DIRS and temp_owner(entry.name) is None:
                    stack.append((entry.path, within or entry.path == cache))


def _is_within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def _running(psutil: Any, pid: int) -> bool:
    """True while `pid` runs: a zombie (dead, not yet reaped: an orphaned worker whose reaper is
    slow) has left its temporary files for good."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # not ours to inspect (another user's process): it runs
        return True
