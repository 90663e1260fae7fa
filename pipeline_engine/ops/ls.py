"""pipe ls: the files of another pipe repository at a revision, git files and tracked data marked, without its data."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PathError
from pipeline_engine.index.external import open_external
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.project import Project

__all__ = ["Entry", "ls", "tracked_records"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed path (relative to the listed PATH, as `dvc ls` prints it); `isout`: pipe tracks it (its data is not in git)."""

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
        index = ext.index
        tracked = tracked_records(index)
        files = {p: None for p in index.files.list_files(under=path)}
        under = {p: r for p, r in tracked.items() if not path or p == path or p.startswith(path + "/")}
        covering = next((r for p, r in tracked.items() if r.isdir and path.startswith(p + "/")), None)
        if not files and not under:
            if covering is not None:
                return [Entry(path.rpartition("/")[2], True, False)]
            raise PathError(f"'{path}' does not exist in '{url}' at '{rev or 'HEAD'}'",
                            hint=f"run 'pipe ls {url}' to list what it holds")
        return _entries(path, files.keys() | under.keys(), tracked, recursive=recursive)


def _entries(path: str, paths: set[str], tracked: dict[str, PathRecord], *, recursive: bool) -> list[Entry]:
    single = path in paths and len(paths) == 1 and not (path in tracked and tracked[path].isdir)
    if single:
        record = tracked.get(path)
        return [_entry(path.rpartition("/")[2], record)]
    prefix = path + "/" if path else ""
    found: dict[str, Entry] = {}
    for full in sorted(paths):
        rel = full[len(prefix):]
        head, sep, _ = rel.partition("/")
        if recursive or not sep:
            found[rel] = _entry(rel, tracked.get(full))
        elif head not in found:
            record = tracked.get(prefix + head)
            found[head] = Entry(head, record is not None, True, size=None if record is None else record.size)
    return [found[k] for k in sorted(found)]


def _entry(name: str, record: PathRecord | None) -> Entry:
    if record is None:
        return Entry(name, False, False)
    return Entry(name, True, record.isdir, record.isexec, record.size)
