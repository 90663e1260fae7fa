"""pipe get: download a tracked file or directory (or a git file) from another pipe repository; nothing is tracked here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.cache.checkout import checkout
from pipeline_engine.cache.link import LinkType
from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.progress import Progress
from pipeline_engine.errors import PathError
from pipeline_engine.index.external import External, download_source, into_dir, open_external, source_path

__all__ = ["GetResult", "get", "write_git_files"]


@dataclass(frozen=True, slots=True)
class GetResult:
    """What was written: `out` (as given, or the source path's name), the source commit, and whether it was tracked data."""

    out: str
    sha: str
    tracked: bool
    nfiles: int


def get(url: str, path: str, *, out: str | None = None, rev: str | None = None, jobs: int | None = None,
        progress: Progress | None = None) -> GetResult:
    """Write `path` of the repository at `url` (at `rev`) to `out` (default: its name, in the current directory;
    inside `out` when that is a directory, as DVC).

    Tracked data comes from a local source's cache or the source's default remote (verified by oid) and is copied, never
    linked: nothing here refers to a cache. A git file or directory is written from git.

    Raises:
        PathError: `out` exists, or `path` names nothing in the source.
        ScmError, ConfigError, RemoteError: as `open_external` and `download_source`.
    """
    path = source_path(path)
    shown = str(into_dir(Path(out) if out else None, path))
    dest = Path(shown).absolute()
    if dest.exists() or dest.is_symlink():
        raise PathError(f"'{shown}' already exists", hint="remove it, or choose another name with '-o'")
    with open_external(None, url, rev) as ext:
        project = ext.index.project
        record = download_source(ext, path, project.store, jobs=jobs, progress=progress)
        if record is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            checkout(project.store, dest.parent, dest.name, record.oid, project.memo,
                     link_types=(LinkType.COPY,), isexec=record.isexec)
            return GetResult(shown, ext.sha, True, record.nfiles or 1)
        written = write_git_files(ext, path, dest)
        return GetResult(shown, ext.sha, False, written)


def write_git_files(ext: External, path: str, dest: Path) -> int:
    """Write git file `path` of the source (or every file under git directory `path`) to `dest`; returns how many.

    Raises:
        PathError: the source has nothing at `path`.
    """
    files = ext.index.files
    found = files.list_files(under=path)
    if not found:
        raise PathError(f"'{path}' does not exist in '{ext.url}' at '{ext.rev or 'HEAD'}'",
                        hint=f"run 'pipe ls {ext.url}' to list what it holds")
    for rel in found:
        target = dest if rel == path else dest / rel[len(path) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, files.read_bytes(rel) or b"")
        os.chmod(target, 0o644)
    return len(found)
