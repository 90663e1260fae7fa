"""Opening a configured remote of the project by name (or the default), for every command that transfers."""

from __future__ import annotations

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import pack_index_cache, packs_work_dir
from pipeline_engine.errors import RemoteNotConfiguredError
from pipeline_engine.project import Project
from pipeline_engine.remote.remote import Remote

__all__ = ["open_project_remote"]


def open_project_remote(
    project: Project, name: str | None = None, *, jobs: int | None = None, subdir: str = ""
) -> Remote:
    """Open remote `name`, or the default remote; relative local paths are from the project root.

    `subdir` opens a directory below the remote's URL with the same layout (`runs` holds the
    run cache, whose entries are not named by their content: they are never packed). Pack
    indexes downloaded from the remote are kept under `.pipe/tmp/packs/<digest of the URL>/`.

    Raises:
        RemoteNotConfiguredError: no name was given and no default is set, or the name is unknown.
        ConfigError, RemoteError: the remote's options are invalid or its backend cannot be opened.
    """
    from pipeline_engine.remote.open import open_remote

    name = name or project.config.default_remote
    if name is None:
        raise RemoteNotConfiguredError(
            "no remote given and no default remote set",
            hint="add one with 'pipe remote add -d NAME URL', or pass '-r NAME'",
        )
    remote = project.config.remotes.get(name)
    if remote is None:
        known = ", ".join(sorted(project.config.remotes)) or "none"
        raise RemoteNotConfiguredError(
            f"remote '{name}' is not configured (configured: {known})", hint="run 'pipe remote list'"
        )
    url = f"{remote.url.rstrip('/')}/{subdir}" if subdir else remote.url
    control = project.control_dir
    return open_remote(
        remote.name, url, remote.options, base_dir=project.root, jobs=jobs, work_dir=packs_work_dir(control),
        index_cache=pack_index_cache(control, hash_bytes(url.encode())[:16]), packing=not subdir,
    )
