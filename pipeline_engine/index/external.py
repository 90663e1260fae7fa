"""Opening another pipe repository by git URL, read as untrusted input: its files at a revision and its default remote.

`pipe ls`, `pipe get`, `pipe import`/`update` and `api.open(repo=URL)` read a source project
through `open_external`: a bare clone (no work tree, no checkout, an empty hook template: none
of the source's code runs) in a scratch directory under the user's `.pipe/tmp/` (or the system
temp directory outside a project), deleted on exit. Its files are read through the same
`ProjectIndex` as any revision (`ProjectIndex(scratch, files=...)`), so every path in it passes
the path gate and every object fetched from its remote is verified by oid.

Objects come first from the default cache (`.pipe/cache/objects`) of a source on this machine, as
DVC reads a local source's cache, then from the source's remote (what DVC does, narrowed to what
cannot reach the user's own files):
- only `core.remote` and that remote's `url` are read from the source's committed
  `.pipe/config.yaml`; every other key (options, `cache.dir`, ...) is ignored, so the source can
  neither choose credentials nor point the cache anywhere;
- a URL with credentials in it is refused (`has_credentials`); credentials come from the USER's
  config: the options of a user remote with the same URL are used;
- a local-path or `file://` remote is allowed only when the source itself is a local repository
  (the user already pointed pipe at this machine); a relative path is taken from the source's
  directory, as DVC resolves it from the source's root. A source fetched over the network may not
  name files on this machine (a remote at `~/.ssh` would make pipe read there).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree, TreeEntry
from pipeline_engine.core.fsutil import temp_name
from pipeline_engine.core.layout import default_cache_dir, objects_dir, tmp_dir
from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.core.redact import has_credentials, mask_url
from pipeline_engine.core.yamlio import parse_yaml
from pipeline_engine.errors import ConfigError, PathError, RemoteNotConfiguredError, ScmError
from pipeline_engine.index.download import download_objects, fetch_outs
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.sync import TransferResult, raise_for_failures
from pipeline_engine.index.tracked import covering
from pipeline_engine.project import CONTROL_DIR, Project
from pipeline_engine.remote.remote import Remote
from pipeline_engine.scm.git import Git

__all__ = ["External", "download_source", "fetch_record", "into_dir", "is_local_url", "open_external", "source_path", "source_remote_url"]

_SOURCE_CONFIG = ".pipe/config.yaml"


@dataclass(frozen=True, slots=True)
class External:
    """A source repository at one commit: `index` reads its files; `remote_url` is its default remote's URL (or None)."""

    url: str
    rev: str | None
    sha: str
    index: ProjectIndex
    remote_url: str | None
    cache_dir: Path | None = None

    def open_cache(self) -> Remote | None:
        """The object store of a local source's default cache (`.pipe/cache/objects`), read as a remote; None otherwise."""
        from pipeline_engine.remote.open import open_remote

        if self.cache_dir is None:
            return None
        return open_remote("source cache", str(self.cache_dir), {}, base_dir=Path.cwd())

    def open_remote(self, *, jobs: int | None = None) -> Remote:
        """The source's default remote, with the options (credentials) of a user remote at the same URL.

        Raises:
            RemoteNotConfiguredError: the source names no default remote.
            ConfigError, RemoteError: the remote cannot be opened.
        """
        from pipeline_engine.remote.open import open_remote

        if self.remote_url is None:
            raise RemoteNotConfiguredError(
                f"'{mask_url(self.url)}' has no default remote in its {_SOURCE_CONFIG} at '{self.rev or 'HEAD'}'",
                hint="ask its maintainers to set one with 'pipe remote add -d', and push",
            )
        user = self.index.project.config
        options: dict[str, Any] = {}
        for remote in user.remotes.values():
            if remote.url.rstrip("/") == self.remote_url.rstrip("/"):
                options = dict(remote.options)
        return open_remote("source", self.remote_url, options, base_dir=Path.cwd(), jobs=jobs)


def is_local_url(url: str) -> bool:
    """True for a git URL on this machine: a path or `file://` (no `host:path` scp form)."""
    if url.startswith("file://"):
        return True
    return "://" not in url and not (":" in url.split("/")[0] and not os.path.exists(url))


def _local_path(url: str) -> Path:
    return Path(url.removeprefix("file://")).expanduser().resolve()


def _clone(url: str, dest: Path) -> None:
    """A bare clone of `url` into `dest`; no hooks, no checkout, no `ext::` transport."""
    if not url or url.startswith("-") or any(ord(c) < 32 for c in url):
        raise ScmError(f"'{url}' is not a git URL")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    args = ["git", "-c", "protocol.ext.allow=never", "-c", "core.hooksPath=/dev/null",
            "clone", "--bare", "--quiet", "--template="]
    if not is_local_url(url):
        args.append("--filter=blob:none")
    proc = subprocess.run([*args, "--", url, str(dest)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise ScmError(f"cannot clone '{mask_url(url)}': {proc.stderr.strip() or 'git clone failed'}",
                       hint="check the URL and that git can reach it ('git ls-remote URL')")


def source_remote_url(url: str, config_text: bytes | None, rev_label: str) -> str | None:
    """The default remote's URL from the source's committed config, under the rules in the module docstring.

    Raises:
        ConfigError: the config is invalid, or its remote carries credentials or names local files from a network source.
    """
    if config_text is None:
        return None
    source = f"{_SOURCE_CONFIG} of '{mask_url(url)}' at '{rev_label}'"
    raw = parse_yaml(config_text.decode("utf-8", "replace"), source=source)
    core = raw.get("core") if isinstance(raw, dict) else None
    name = core.get("remote") if isinstance(core, dict) else None
    if name is None:
        return None
    remotes = raw.get("remotes") if isinstance(raw, dict) else None
    settings = remotes.get(name) if isinstance(remotes, dict) else None
    remote_url = settings.get("url") if isinstance(settings, dict) else None
    if not isinstance(remote_url, str) or not remote_url or not remote_url.isprintable():
        raise ConfigError(f"{source}: default remote '{name}' has no valid 'url'")
    if has_credentials(remote_url):
        raise ConfigError(f"{source}: remote '{name}' carries credentials in its URL ({mask_url(remote_url)}); refused",
                          hint="credentials for a source's remote come from your own config: 'pipe remote add --local'")
    from pipeline_engine.remote.backend import backend_for

    if not backend_for(remote_url).local:
        return remote_url
    if not is_local_url(url):
        raise ConfigError(f"{source}: remote '{name}' is a path on this machine ('{remote_url}'), "
                          "which a repository from the network may not name; refused",
                          hint="use a local clone of the source, whose remote paths you can check")
    path = remote_url.partition("://")[2] if "://" in remote_url else remote_url
    if path.startswith("~"):
        raise ConfigError(f"{source}: remote '{name}' is under a home directory ('{remote_url}'); refused")
    base = _local_path(url)
    return str(base / path) if not os.path.isabs(path) else path


@contextlib.contextmanager
def open_external(project: Project | None, url: str, rev: str | None = None) -> Iterator[External]:
    """Clone `url` and read it at `rev` (its HEAD when None); everything is deleted on exit.

    `project` is the user's project (its `.pipe/tmp` holds the clone and its store receives
    what is fetched); outside a project a scratch project in the system temp directory is used.

    Raises:
        ScmError: the clone failed or `rev` names no commit there.
        ConfigError: the source's default remote is refused (see the module docstring).
    """
    if project is not None:  # a pipe temp name: a killed command's clone is swept like any temp (core.tempsweep)
        scratch = tmp_dir(project.control_dir) / temp_name("-external")
        scratch.mkdir(parents=True)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="pipe-external-"))
    try:
        clone = scratch / "repo.git"
        _clone(url, clone)
        if project is None:
            project = Project.init(scratch / "scratch", scm=False)
        git = Git(clone)
        label = rev or "HEAD"
        files = git.files_at(label)
        remote_url = source_remote_url(url, git.read_at(files.rev or label, _SOURCE_CONFIG), label)
        yield External(url, rev, files.rev or label, ProjectIndex(project, files=files), remote_url,
                       _local_cache(url))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _local_cache(url: str) -> Path | None:
    """The default cache of a source on this machine (its `cache.dir` is not read: the source may not choose it)."""
    if not is_local_url(url):
        return None
    objects = objects_dir(default_cache_dir(_local_path(url) / CONTROL_DIR))
    return objects if objects.is_dir() else None


def into_dir(out: Path | None, path: str) -> Path:
    """Where `-o OUT` puts source `path`: OUT, or inside it when OUT is an existing directory (DVC's rule); default its name."""
    name = path.rpartition("/")[2]
    if out is None:
        return Path(name)
    return out / name if out.is_dir() and not out.is_symlink() else out


def source_path(path: str) -> str:
    """PATH in the source, as a project-relative path (the path gate's rules).

    Raises:
        UnsafePathError: `path` is absolute, escapes with `..`, or names `.git`/`.pipe`.
    """
    return check_relpath(path, source="PATH")


def download_source(ext: External, path: str, store: ObjectStore, *, jobs: int | None = None,
                    progress: Progress | None = None) -> PathRecord | None:
    """Fetch the objects of tracked `path` in `ext` from its default remote into `store`, each verified by oid.

    Returns the record of `path` (a whole tracked path, or a file inside a tracked directory),
    or None when the source does not track it (it may be a git file).

    Raises:
        RemoteNotConfiguredError: the source has no default remote; RemoteError: objects failed.
        PathError: `path` is inside a tracked directory but not in it.
    """
    progress = progress or NullProgress()
    record = covering(ext.index, path, pointers=True)
    if record is None:
        return None
    if record.path == path:
        fetch_record(ext, store, record, jobs=jobs, progress=progress)
        return record
    fetch_record(ext, store, record, manifest_only=True, jobs=jobs, progress=progress)
    tree = tree_of(store, record.oid)
    sub = path[len(record.path) + 1:]
    entry = tree.by_path().get(sub)
    if entry is not None:
        inner = PathRecord(path, entry.oid, entry.size, None, entry.isexec)
    else:  # a sub-directory: a manifest of the entries under it, stored as any directory's
        under = [TreeEntry(e.relpath[len(sub) + 1:], e.oid, e.size, e.isexec) for e in tree.under(sub)]
        if not under:
            raise PathError(f"'{path}' is inside tracked directory '{record.path}' of '{ext.url}' but is not in it",
                            hint=f"run 'pipe ls {ext.url} {record.path}' to list what it holds")
        part = Tree.from_entries(under)
        inner = PathRecord(path, store.put_chunks(part.iter_bytes(), suffix=".dir"), part.size, len(part))
    fetch_record(ext, store, inner, jobs=jobs, progress=progress)
    return inner


def fetch_record(ext: External, store: ObjectStore, record: PathRecord, *, manifest_only: bool = False,
                 jobs: int | None = None, progress: Progress | None = None) -> None:
    """Fetch `record`'s objects (or only its manifest) from a local source's cache, then from its default remote (DVC's order).

    Raises:
        RemoteNotConfiguredError: the source's cache lacks objects and it has no default remote.
        RemoteError: objects failed.
    """
    progress = progress or NullProgress()
    cache = ext.open_cache()
    for rem in (cache, None) if cache is not None else (None,):
        if rem is None:
            if cache is not None and ext.remote_url is None:
                break  # the cache's failures are the answer
            rem = ext.open_remote(jobs=jobs)
        if manifest_only:
            _, _, failed = download_objects(store, rem, {record.oid: record.path}, progress, f"manifest from {rem.name}")
            result = TransferResult(rem.name, rem.url, 0, 0, tuple(failed))
        else:
            result = fetch_outs(store, rem, [record], progress=progress)
        if not result.failed:
            return
    raise_for_failures("fetch", result)
