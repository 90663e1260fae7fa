"""Open a Remote from a remote's URL and options: pick the fsspec backend and map option names to its kwargs.

fsspec and the backend package are imported here, inside `open_remote`, never at start-up.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_engine.errors import ConfigError, RemoteError
from pipeline_engine.remote.backend import Backend, backend_for, check_option, protocol_of, redact_url
from pipeline_engine.remote.remote import DEFAULT_PACK_SIZE, DEFAULT_PACK_THRESHOLD, PackOptions, Remote

__all__ = ["default_jobs", "open_remote"]


def default_jobs(*, object_store: bool) -> int:
    """Concurrent transfers when neither `-j` nor the remote's `jobs` option says otherwise.

    Object stores are latency-bound (requests in flight are cheap coroutines); filesystems are
    bound by the disk and the thread pool.
    """
    cpus = os.cpu_count() or 1
    return max(32, 8 * cpus) if object_store else 4 * cpus


def open_remote(
    name: str, url: str, options: Mapping[str, Any], *, base_dir: Path, jobs: int | None = None,
    work_dir: Path | None = None, index_cache: Path | None = None, packing: bool = True,
) -> Remote:
    """The Remote called `name` at `url`; a relative local path is taken from `base_dir`.

    Packs are built in `work_dir` and their downloaded indexes kept in `index_cache` (see
    `PackOptions`); `packing=False` writes every object loose whatever the options say (the run
    cache, whose entries are not named by their content). Packs are always read.

    Raises:
        ConfigError: an option is unknown for this kind of remote or has the wrong type.
        RemoteError: the backend package is not installed, or fsspec cannot open the URL.
    """
    backend = backend_for(url)
    checked = {key: check_option(name, url, key, value) for key, value in options.items()}
    kwargs = _backend_kwargs(backend, checked)
    protocol = protocol_of(url)
    shown = redact_url(url)
    fs = _filesystem(name, shown, backend, protocol, kwargs)
    if backend.local:
        path = url.partition("://")[2] if "://" in url else url
        root = str((base_dir / os.path.expanduser(path)).resolve())
    else:
        root = fs._strip_protocol(url).rstrip("/")
    return Remote(
        name,
        shown,
        fs,
        root,
        jobs=jobs or checked.get("jobs") or default_jobs(object_store=backend.object_store),
        object_store=backend.object_store,
        errors=_error_types(backend),
        read_only=backend.read_only,
        packing=PackOptions(
            threshold=checked.get("pack_threshold", DEFAULT_PACK_THRESHOLD) if packing else 0,
            size=checked.get("pack_size", DEFAULT_PACK_SIZE),
            work_dir=work_dir,
            index_cache=index_cache,
            must_list=not backend.read_only,
            build_in_place=backend.local and packing,
        ),
    )


def _backend_kwargs(backend: Backend, options: Mapping[str, Any]) -> dict[str, Any]:
    """Translate DVC-style option names into the nested keyword arguments of the fsspec backend."""
    kwargs: dict[str, Any] = dict(backend.fixed or {})
    kwargs["skip_instance_cache"] = True
    for key, value in options.items():
        opt = backend.option(key)
        if opt is None or not opt.target:
            continue
        *parents, leaf = opt.target
        node = kwargs
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = [value] if opt.listed else value
    return kwargs


def _filesystem(name: str, url: str, backend: Backend, protocol: str, kwargs: dict[str, Any]) -> Any:
    try:
        import fsspec

        return fsspec.filesystem(protocol, **kwargs)
    except ImportError as exc:
        package = backend.package if backend.protocols else protocol
        hint = (
            f"pip install 'pipeline-engine[{backend.extra}]'"
            if backend.extra
            else f"install the fsspec backend for '{protocol}://' URLs ({package})"
        )
        raise RemoteError(
            f"remote '{name}' ({url}): the '{protocol}' backend is not installed ({exc})", hint=hint
        ) from exc
    except ValueError as exc:
        raise RemoteError(
            f"remote '{name}' ({url}): fsspec knows no '{protocol}://' protocol ({exc})"
        ) from exc
    except TypeError as exc:
        raise ConfigError(
            f"remote '{name}' ({url}): the '{protocol}' backend refused its options: {exc}"
        ) from exc


def _error_types(backend: Backend) -> tuple[type[BaseException], ...]:
    """The backend's own exception classes (e.g. botocore's), so transfers can report them as RemoteError."""
    types: list[type[BaseException]] = []
    for dotted in backend.errors:
        module_name, _, attr = dotted.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found = getattr(module, attr, None)
        if isinstance(found, type) and issubclass(found, BaseException):
            types.append(found)
    return tuple(types)
