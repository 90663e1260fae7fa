"""pipe ls: the files of another pipe repository at a revision, git files and tracked data marked, without its data."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PathError
from pipeline_engine.index.external import External, fetch_record, open_external
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.project import Project

__all__ = ["Entry", "ls", "tracked_records"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed path (relative to the listed PATH, as `dvc ls` prints it).

    `isout`: pipe tracks it (its data is not in git): a tracked path, a file inside a tracked
    directory, or a directory holding only such files.
    """

    path: str
    isout: bool
    isdir: bool
    isexec: bool = False
    size: int | None = None


def tracked_records(index: ProjectIndex) -> dict[str, PathRecord]:
    """Project-relative path -> the record of every pointer-tracked path and cached stage out at the index's revision.

    Raises:
        SpecError: a pointer file, pipeline.yaml or pipeline.lock there is invalid.
    """
    found = {o.record.path: o.record for o in index.stage_outs}
    for p in index.pointers:
        found[p.data_relpath] = PathRecord(p.data_relpath, p.out.oid, p.out.size, p.out.nfiles, p.out.isexec)
    return found


def ls(project: Project | None, url: str, path: str = "", *, recursive: bool = False,
       rev: str | None = None) -> list[Entry]:
    """The entries at or under `path` (project-relative, '' for the root) in the repository at `url`.

    Without `recursive`, the direct children of a directory (a directory once, marked `isdir`);
    with it, every file (a tracked directory is one entry: its files are in its manifest, on the remote).

    Raises:
        ScmError: the clone failed or `rev` names no commit.
        PathError: `path` names nothing there.
        SpecError: the source's pointers, pipeline.yaml or lock are invalid.
    """
    path = check_relpath(path, source="PATH", allow_root=True) if path.strip("/.") else ""
    with open_external(project, url, rev) as ext:
        tracked = tracked_records(ext.index)
        found: dict[str, PathRecord | None] = {p: None for p in ext.index.files.list_files(under=path)}
        for p, record in tracked.items():
            inside = bool(path) and path.startswith(p + "/")
            if not (inside or not path or p == path or p.startswith(path + "/")):
                continue
            if record.isdir and (inside or p == path or recursive):
                found.update(_manifest(ext, record, path))
            else:
                found[p] = record
        if not found:
            raise PathError(f"'{path}' does not exist in '{url}' at '{rev or 'HEAD'}'",
                            hint=f"run 'pipe ls {url}' to list what it holds")
        return _entries(path, found, recursive=recursive)


def _manifest(ext: External, record: PathRecord, path: str) -> dict[str, PathRecord | None]:
    """The files of tracked directory `record` at or under `path`, from its manifest (fetched from the source's cache or remote).

    Raises:
        RemoteNotConfiguredError, RemoteError: the manifest cannot be fetched.
    """
    store = ext.index.project.store
    if not store.exists(record.oid):
        fetch_record(ext, store, record, manifest_only=True)
    files: dict[str, PathRecord | None] = {}
    for e in tree_of(store, record.oid).entries:
        full = f"{record.path}/{e.relpath}"
        if full == path or full.startswith(path + "/") or not path or record.path.startswith(path + "/") \
                or record.path == path:
            files[full] = PathRecord(full, e.oid, e.size, None, e.isexec)
    return files


def _entries(path: str, found: dict[str, PathRecord | None], *, recursive: bool) -> list[Entry]:
    if list(found) == [path]:  # a single file: `dvc ls URL file` prints it alone
        return [_entry(path.rpartition("/")[2], found[path])]
    prefix = path + "/" if path else ""
    entries: dict[str, Entry] = {}
    git_dirs: set[str] = set()  # directories holding a git file: not pipe's data as a whole
    for full in sorted(found):
        rel = full[len(prefix):]
        head, sep, _ = rel.partition("/")
        if recursive or not sep:
            entries[rel] = _entry(rel, found[full])
        else:
            entries.setdefault(head, Entry(head, True, True))
            if found[full] is None:
                git_dirs.add(head)
    return [replace(e, isout=False) if e.path in git_dirs else e for _, e in sorted(entries.items())]


def _entry(name: str, record: PathRecord | None) -> Entry:
    if record is None:
        return Entry(name, False, False)
    return Entry(name, True, record.isdir, record.isexec, record.size)
