"""pipe import | update: data from another pipe repository, tracked here by a pointer that records its source.

An import is pointer-tracked data like any other (`pipe push` sends it to our remote, `pipe
status` and `pipe repro` see it as a dep); its pointer also carries `repo: {url, path, rev,
rev_lock}`. Nothing moves it but `pipe update`, which clones the source again, fetches the data
of the new commit from the source's default remote and rewrites the pointer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline_engine.cache.checkout import checkout
from pipeline_engine.cache.link import parse_link_types
from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, SourceRepo, read_pointer, write_pointer
from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.core.progress import Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PathError
from pipeline_engine.index.external import download_source, into_dir, open_external, source_path
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.sync import TransferResult
from pipeline_engine.project import Project

__all__ = ["ImportResult", "fetch_import", "import_path", "recover_imports", "update"]


@dataclass(frozen=True, slots=True)
class ImportResult:
    """An import written or updated: the data path and its pointer (project-relative), the source commit, whether it moved."""

    path: str
    pointer: str
    sha: str
    changed: bool = True


def _out_relpath(project: Project, out: Path | None, path: str) -> str:
    dest = into_dir(out, path).absolute()
    rel = os.path.relpath(dest, project.root)
    if rel.startswith(".."):
        raise PathError(f"'{out}' is outside the project '{project.root}'")
    return check_relpath(Path(rel).as_posix(), source="OUT")


def import_path(project: Project, url: str, path: str, *, out: Path | None = None, rev: str | None = None,
                jobs: int | None = None, progress: Progress | None = None) -> ImportResult:
    """Import tracked `path` of the repository at `url` (at `rev`) to `out`, recording the source in `out.pipe`.

    Raises:
        PathError: `out` (or its pointer) exists, is outside the project, or `path` is not data the source tracks.
        ScmError, ConfigError, RemoteError: the source cannot be cloned, its remote is refused or objects failed.
    """
    path = source_path(path)
    rel = _out_relpath(project, out, path)
    with project.mutex(f"pipe import {url} {path}"):
        for taken in (rel, rel + POINTER_SUFFIX):
            if (project.root / taken).exists() or (project.root / taken).is_symlink():
                raise PathError(f"'{taken}' already exists",
                                hint="remove it, or choose another name with '-o'; 'pipe update' moves an import")
        return _write(project, rel, SourceRepo(url, path, "0" * 40, rev), jobs=jobs, progress=progress)


def _write(project: Project, rel: str, source: SourceRepo, *, jobs: int | None,
           progress: Progress | None, old: Pointer | None = None) -> ImportResult:
    with open_external(project, source.url, source.rev) as ext:
        if old is not None and old.repo is not None and old.repo.rev_lock == ext.sha and old.repo.rev == source.rev:
            return ImportResult(rel, old.relpath, ext.sha, changed=False)
        record = download_source(ext, source.path, project.store, jobs=jobs, progress=progress)
        if record is None:
            raise PathError(f"'{source.path}' is not data that '{source.url}' tracks at '{source.rev or 'HEAD'}'",
                            hint=f"a git file is copied with 'pipe get {source.url} {source.path}'")
        sha = ext.sha
    checkout(project.store, project.root, rel, record.oid, project.memo,
             link_types=parse_link_types(project.config.cache_types), isexec=record.isexec)
    name = rel.rpartition("/")[2]
    pointer = Pointer(rel + POINTER_SUFFIX, PathRecord(name, record.oid, record.size, record.nfiles, record.isexec),
                      SourceRepo(source.url, source.path, sha, source.rev))
    write_pointer(project.root, pointer if old is None else pointer.annotated(old))
    if project.git is not None:
        project.git.ignore(project.relpath_from_git(rel))
    return ImportResult(rel, pointer.relpath, sha)


def update(project: Project, pointers: Sequence[str], *, rev: str | None = None, jobs: int | None = None,
           progress: Progress | None = None) -> list[ImportResult]:
    """Move each import to the newest commit of its recorded revision (or to `rev`, which is then recorded).

    Raises:
        PathError: a pointer is not an import, or is outside the project.
        SpecError: a pointer file is invalid. ScmError, ConfigError, RemoteError: as `import_path`.
    """
    results = []
    with project.mutex(f"pipe update {' '.join(pointers)}"):
        for given in pointers:
            rel = _out_relpath(project, Path(given), given)
            rel = rel if rel.endswith(POINTER_SUFFIX) else rel + POINTER_SUFFIX
            pointer = read_pointer(project.root, rel)
            if pointer.repo is None:
                raise PathError(f"'{rel}' is not an import (it records no 'repo')",
                                hint="'pipe add' updates data you track yourself")
            source = SourceRepo(pointer.repo.url, pointer.repo.path, pointer.repo.rev_lock, rev or pointer.repo.rev)
            results.append(_write(project, pointer.data_relpath, source, jobs=jobs, progress=progress, old=pointer))
    return results


def fetch_import(project: Project, pointer: Pointer, *, jobs: int | None = None,
                 progress: Progress | None = None) -> PathRecord | None:
    """Fetch an import's objects from its source at the recorded commit (`rev_lock`), for a pull whose remote lacks them.

    Returns the record fetched, or None when `pointer` is not an import.

    Raises:
        ScmError, ConfigError, RemoteError: the source cannot be cloned, its remote is refused or objects failed.
    """
    if pointer.repo is None:
        return None
    with open_external(project, pointer.repo.url, pointer.repo.rev_lock) as ext:
        return download_source(ext, pointer.repo.path, project.store, jobs=jobs, progress=progress)


def recover_imports(project: Project, index: ProjectIndex, results: Sequence[TransferResult], *,
                    jobs: int | None = None, progress: Progress | None = None) -> list[TransferResult]:
    """`pipe pull`'s second source: fetch from its source repository each import whose objects our remote lacked.

    Our remote is asked first (the caller's fetch); an import with failed objects is then fetched
    from its source at its recorded commit, and its failures are dropped from `results`.

    Raises:
        ScmError, ConfigError, RemoteError: the source cannot be cloned, its remote is refused or objects failed.
    """
    failed_paths = {f.path for r in results for f in r.failed}
    recovered: set[str] = set()
    for pointer in index.pointers:
        base = pointer.data_relpath
        hit = {p for p in failed_paths if p == base or p.startswith(base + "/")}
        if pointer.repo is not None and hit and fetch_import(project, pointer, jobs=jobs, progress=progress):
            recovered |= hit
    if not recovered:
        return list(results)
    return [replace(r, failed=tuple(f for f in r.failed if f.path not in recovered)) for r in results]
