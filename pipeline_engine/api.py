"""The Python API, with dvc.api's names and signatures: read tracked files, params and metrics at any revision.

```python
import pipeline_engine.api as api

with api.open("data/raw.csv", rev="v1") as f:      # streamed from the cache, or the remote when the cache lacks it
    header = f.readline()
model = api.read("models/model.pkl", mode="rb")     # the whole content
url = api.get_url("data/raw.csv")                   # where the object is on the remote
api.params_show(stages=["train"])                   # {"train": {"lr": 0.01, ...}}
api.metrics_show(rev="HEAD~1")                      # {"acc": 0.91, ...}
```

`repo` is a path to a local project (the current one when None) or, for `open`/`read`, a git URL
(`https://...`, `git@host:path`, `file://...`): that repository is cloned into a scratch directory
and read as untrusted input (`index/external.py`), its tracked data fetched from its default remote.
`rev` is any git revision; None is the workspace. Every failure is a `PipeError`, as in the CLI.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pipeline_engine.core.layout import oid_to_relpath
from pipeline_engine.errors import ObjectNotFoundError, PathError, PipeError
from pipeline_engine.project import Project

if TYPE_CHECKING:
    from pipeline_engine.index.project_index import ProjectIndex
    from pipeline_engine.index.tracked import Located

__all__ = ["artifacts_show", "get_url", "metrics_show", "open", "params_show", "read"]


def _is_url(repo: str | os.PathLike[str] | None) -> bool:
    return repo is not None and ("://" in str(repo) or str(repo).startswith("git@"))


def _project(repo: str | os.PathLike[str] | None) -> Project:
    if _is_url(repo):
        raise PipeError(f"repo '{repo}': a git URL is read by open() and read() only",
                        hint="clone it and pass the clone's path")
    return Project.find(Path(repo).resolve() if repo is not None else None)


def _read_external(url: str, path: str | os.PathLike[str], rev: str | None) -> IO[bytes]:
    """A file of the repository at `url`: tracked data from its default remote (verified), else its git blob.

    The scratch clone is deleted before this returns, so the content is held in memory.
    """
    from pipeline_engine.index.external import download_source, open_external, source_path

    rel = source_path(os.fspath(path).replace(os.sep, "/"))
    with open_external(None, url, rev) as ext:
        store = ext.index.project.store
        record = download_source(ext, rel, store)
        if record is None:
            data = ext.index.files.read_bytes(rel)
            if data is None:
                raise PathError(f"'{rel}' does not exist in '{url}' at '{rev or 'HEAD'}'")
            return io.BytesIO(data)
        if record.isdir:
            raise PathError(f"'{rel}' in '{url}' is a directory (the API reads files)",
                            hint="pass the path of a file inside it")
        return io.BytesIO(store.read_bytes(record.oid))


def _index(project: Project, rev: str | None) -> ProjectIndex:
    from pipeline_engine.index.project_index import ProjectIndex

    return ProjectIndex(project) if rev is None else ProjectIndex.at(project, rev)


def _relpath(project: Project, path: str | os.PathLike[str]) -> str:
    """`path` relative to the project root, as dvc.api takes it (an absolute path inside the project too)."""
    from pipeline_engine.core.pathgate import check_relpath

    text = os.fspath(path)
    if os.path.isabs(text):
        from pipeline_engine.core.fsutil import relpath_in

        text = relpath_in(project.root, text)
    return check_relpath(text.replace(os.sep, "/"), source=text)


def _locate(project: Project, index: ProjectIndex, rel: str, remote: str | None) -> Located | None:
    """The tracked file's `Located`, fetching its directory's manifest from the remote when the cache lacks it."""
    from pipeline_engine.index.tracked import locate

    try:
        return locate(index, rel)
    except ObjectNotFoundError:
        from pipeline_engine.index.tracked import covering

        record = covering(index, rel, pointers=True)
        if record is None:
            raise
        _download(project, index, record.path, record.oid, remote)
        return locate(index, rel)


def _download(project: Project, index: ProjectIndex, path: str, oid: str, remote: str | None) -> None:
    """Bring object `oid` into the local cache from the remote (verified on the way in).

    Raises:
        ObjectNotFoundError: the remote does not have it either.
    """
    from pipeline_engine.core.progress import NullProgress
    from pipeline_engine.index.download import download_objects
    from pipeline_engine.index.remotes import open_project_remote
    from pipeline_engine.index.sync import own_remote

    rem = open_project_remote(project, remote or own_remote(path, index.out_remotes))
    _, _, failures = download_objects(project.store, rem, {oid: path}, NullProgress(), "download")
    if failures:
        label = index.files.label
        raise ObjectNotFoundError(f"'{path}' at '{label}': object '{oid}' is in neither the local cache nor "
                                  f"remote '{rem.name}' ({failures[0].reason})",
                                  hint=f"push it from a clone that has it: 'pipe push --rev {label}'")


@contextlib.contextmanager
def open(path: str | os.PathLike[str], repo: str | os.PathLike[str] | None = None,
         rev: str | None = None, remote: str | None = None, mode: str = "r",
         encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a file of the project at `rev` for reading, as a context manager (dvc.api.open).

    The workspace (`rev` None) reads the file on disk when it is there; otherwise, and at a
    revision, a file pipe tracks is streamed from the local cache by the oid its pointer or lock
    entry records, downloaded first from `remote` (or its out's remote, or the default remote)
    when the cache lacks it; any other file is read from git. `mode` is "r" (text, `encoding`
    default UTF-8) or "rb".

    Raises:
        PathError: the file exists neither in git nor as tracked data at `rev`.
        ObjectNotFoundError: the object is in neither the cache nor the remote.
        RemoteNotConfiguredError, RemoteError: the remote cannot be used.
        ScmError: `rev` names no commit.
    """
    if mode not in ("r", "rb"):
        raise ValueError(f"mode must be 'r' or 'rb', not {mode!r}")
    if _is_url(repo):
        stream = _read_external(str(repo), path, rev)
    else:
        project = _project(repo)
        stream = _open_binary(project, _relpath(project, path), rev, remote)
    with stream:
        if mode == "rb":
            yield stream
        else:
            text = io.TextIOWrapper(stream, encoding=encoding or "utf-8")
            try:
                yield text
            finally:
                text.detach()


def _open_binary(project: Project, rel: str, rev: str | None, remote: str | None) -> IO[bytes]:
    from pipeline_engine.core.hashing import is_dir_oid

    index = _index(project, rev)
    if rev is None:
        from pipeline_engine.core.pathgate import resolve_in_project

        local = resolve_in_project(project.root, rel, source=rel, follow=True)
        if local.is_file():
            return builtins.open(local, "rb")
    found = _locate(project, index, rel, remote)
    if found is None:
        data = index.files.read_bytes(rel)
        if data is None:
            raise PathError(f"{index.files.describe(rel)}: does not exist and is not tracked by pipe")
        return io.BytesIO(data)
    if is_dir_oid(found.oid):  # a tracked directory: the object is pipe's manifest, not the user's content
        raise PathError(f"{index.files.describe(rel)}: is a directory (the API reads files)",
                        hint="pass the path of a file inside it")
    store = project.store
    if not store.exists(found.oid):
        _download(project, index, rel, found.oid, remote)
    return builtins.open(store.path_of(found.oid), "rb")


def read(path: str | os.PathLike[str], repo: str | os.PathLike[str] | None = None, rev: str | None = None,
         remote: str | None = None, mode: str = "r", encoding: str | None = None) -> Any:
    """The whole content of a project file at `rev`: str for mode "r", bytes for "rb" (dvc.api.read).

    Raises:
        As `open`.
    """
    with open(path, repo=repo, rev=rev, remote=remote, mode=mode, encoding=encoding) as f:
        return f.read()


def get_url(path: str | os.PathLike[str], repo: str | os.PathLike[str] | None = None, rev: str | None = None,
            remote: str | None = None) -> str:
    """The URL of a tracked file's object on the remote (dvc.api.get_url); a directory's is its manifest's.

    Nothing is checked on the remote: the URL is where `pipe push` puts (or has put) the object.

    Raises:
        PathError: pipe does not track `path` at `rev`.
        RemoteNotConfiguredError: no remote is named and there is no default.
        ScmError: `rev` names no commit.
    """
    from pipeline_engine.errors import RemoteNotConfiguredError
    from pipeline_engine.index.sync import own_remote

    project = _project(repo)
    rel = _relpath(project, path)
    index = _index(project, rev)
    found = _locate(project, index, rel, remote)
    if found is None:
        raise PathError(f"'{index.files.describe(rel)}' is not tracked by pipe, so it has no remote URL",
                        hint=f"track it with 'pipe add {rel}', or read it with pipeline_engine.api.read")
    name = remote or own_remote(rel, index.out_remotes) or project.config.default_remote
    config = project.config.remotes.get(name) if name else None
    if config is None:
        raise RemoteNotConfiguredError(f"remote '{name}' is not configured" if name else "no default remote set",
                                       hint="add one with 'pipe remote add -d NAME URL'")
    base = config.url.rstrip("/")
    if "://" not in base and not os.path.isabs(base):
        base = str((project.root / base).resolve())
    return f"{base}/{oid_to_relpath(found.oid)}"


def params_show(*targets: str, repo: str | os.PathLike[str] | None = None, stages: str | Sequence[str] | None = None,
                rev: str | None = None, deps: bool = False) -> dict[str, Any]:
    """The params at `rev` (dvc.api.params_show): the files' keys merged into one mapping, nested as in the files.

    By default params.yaml whole and what every stage tracks; `targets` limits to those params
    files, `stages` to what those stages track, `deps` to tracked params only. A key present in
    two files is given as `file:key`.

    Raises:
        SpecError: pipeline.yaml or a params file is invalid.
        ScmError: `rev` names no commit.
    """
    from pipeline_engine.ops.params import params_at

    project = _project(repo)
    index = _index(project, rev)
    chosen = [stages] if isinstance(stages, str) else list(stages) if stages is not None else None
    files = [_relpath(project, t) for t in targets]
    values = params_at(index, stages=chosen, files=files, deps_only=deps)
    return _merge({path: _nest(v) for path, v in values.items()})


def metrics_show(*targets: str, repo: str | os.PathLike[str] | None = None, rev: str | None = None) -> dict[str, Any]:
    """The metrics at `rev` (dvc.api.metrics_show): every metrics file's values merged into one mapping.

    A key present in two files is given as `file:key`.

    Raises:
        SpecError: a metrics file or pipeline.yaml is invalid (the first error; the API does not skip files).
        ObjectNotFoundError: a cached metrics file's object is not in the local cache.
        ScmError: `rev` names no commit.
    """
    from pipeline_engine.ops.metrics import metrics_at

    project = _project(repo)
    result = metrics_at(_index(project, rev), [_relpath(project, t) for t in targets])
    if result.errors:
        raise result.errors[0]
    return _merge({f.path: f.data for f in result.files})


def _nest(values: Mapping[str, Any]) -> dict[str, Any]:
    """Tracked `a.b` keys -> {"a": {"b": ...}}, as DVC returns params."""
    nested: dict[str, Any] = {}
    for key, value in values.items():
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            child = node.get(part)
            node = node.setdefault(part, {}) if not isinstance(child, dict) else child
        node[parts[-1]] = value
    return nested


def _merge(by_file: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """DVC's merge: top-level keys of all files in one mapping; a key two files share becomes `file:key`."""
    counts = Counter(k for data in by_file.values() for k in data)
    merged: dict[str, Any] = {}
    for path, data in by_file.items():
        merged.update({(k if counts[k] == 1 else f"{path}:{k}"): v for k, v in data.items()})
    return merged


def artifacts_show(name: str, version: str | None = None, stage: str | None = None,
                   repo: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """`{"rev": commit sha, "path": path}` of artifact `name` at `version`, in `stage`, or its latest version (as DVC's).

    `repo` is a local project path or file:// URL (the current project when None).

    Raises:
        SpecError: an unknown artifact, version or stage.
    """
    from pipeline_engine.ops.artifacts import local_path, resolve

    project = _project(None) if repo is None else Project.find(local_path(str(repo)).resolve())
    rev, path = resolve(project, name, version=version, stage=stage)
    return {"rev": rev, "path": path}
