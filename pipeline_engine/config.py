"""Layered config: `.pipe/config.yaml` (committed) under `.pipe/config.local.yaml` (this machine)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.mutex import ProjectMutex
from pipeline_engine.core.redact import has_credentials, mask_url
from pipeline_engine.core.yamlio import dump_yaml, load_yaml
from pipeline_engine.errors import ConfigError, SpecError
from pipeline_engine.remote.backend import is_secret

__all__ = [
    "CONFIG_FILE",
    "LOCAL_CONFIG_FILE",
    "Config",
    "RemoteConfig",
    "edit_config",
    "load_config",
]

CONFIG_FILE = "config.yaml"
LOCAL_CONFIG_FILE = "config.local.yaml"
_SECTIONS = {"schema", "cache", "core", "remotes"}
_CACHE_KEYS = {"type", "dir", "jobs"}
_CORE_KEYS = {"remote", "jobs", "no_scm"}
_MAX_JOBS = 1024
_LOCK_TIMEOUT = 60.0
_LOCAL_HINT = (
    f"keep credentials in .pipe/{LOCAL_CONFIG_FILE}, which git ignores: add '--local', "
    "e.g. 'pipe remote modify --local NAME KEY VALUE'"
)


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """One named remote: its URL and backend options (credentials included, never printed)."""

    name: str
    url: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Config:
    """The merged configuration of a project."""

    cache_types: tuple[str, ...] = ("reflink", "copy")
    cache_dir: str | None = None
    jobs: int | None = None
    default_remote: str | None = None
    no_scm: bool = False
    remotes: Mapping[str, RemoteConfig] = field(default_factory=lambda: MappingProxyType({}))


def load_config(control_dir: Path) -> Config:
    """Read and merge the committed and the local config files.

    Raises:
        ConfigError: a file is not valid YAML or has an unknown section or key.
    """
    merged: dict[str, Any] = {}
    for name in (CONFIG_FILE, LOCAL_CONFIG_FILE):
        raw = read_config_file(control_dir / name)
        _merge(merged, raw)
    return _to_config(merged)


def read_config_file(path: Path) -> dict[str, Any]:
    """One config file as a dict ({} when absent), with its sections checked."""
    if not path.exists():
        return {}
    source = f".pipe/{path.name}"
    try:
        raw = load_yaml(path, source=source)
    except SpecError as exc:
        raise ConfigError(str(exc)) from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping of sections")
    unknown = {str(k) for k in raw} - _SECTIONS
    if unknown:
        raise ConfigError(f"{source}: unknown section '{min(unknown)}' (known: {', '.join(sorted(_SECTIONS))})")
    _check_types(raw, source=source)
    return raw


def _check_types(raw: Mapping[str, Any], *, source: str) -> None:
    """The values one file sets have the right types (the merged config is checked again)."""
    for name, keys in (("cache", _CACHE_KEYS), ("core", _CORE_KEYS)):
        section = raw.get(name) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"{source}: section '{name}' must be a mapping")
        unknown = {str(k) for k in section} - keys
        if unknown:
            raise ConfigError(f"{source}: unknown key '{name}.{min(unknown)}' (known: {', '.join(sorted(keys))})")
        for key, value in section.items():
            if key in ("dir", "remote") and not (isinstance(value, str) and value and value.isprintable()):
                raise ConfigError(f"{source}: '{name}.{key}' must be a non-empty string, not {value!r}")
            if key == "no_scm" and not isinstance(value, bool):
                raise ConfigError(f"{source}: 'core.no_scm' must be true or false, not {value!r}")
            if key == "jobs" and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_JOBS):
                raise ConfigError(f"{source}: '{name}.jobs' must be an integer from 1 to {_MAX_JOBS}, not {value!r}")
            if key == "type" and not isinstance(value, str | list):
                raise ConfigError(f"{source}: 'cache.type' must be a string or a list, not {value!r}")
    remotes = raw.get("remotes") or {}
    if not isinstance(remotes, Mapping):
        raise ConfigError(f"{source}: 'remotes' must be a mapping of name -> settings")
    for name, settings in remotes.items():
        if not isinstance(name, str) or not name.isprintable():
            raise ConfigError(f"{source}: remote name {name!r} must be a string")
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{source}: remote '{name}' must be a mapping with 'url'")
        url = settings.get("url")
        if url is not None and not (isinstance(url, str) and url and url.isprintable()):
            raise ConfigError(f"{source}: remote '{name}': 'url' must be a non-empty string without control characters")
        if not all(isinstance(k, str) for k in settings):
            raise ConfigError(f"{source}: remote '{name}': option names must be strings")


def edit_config(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to one config file's dict and write it back atomically, under the config lock.

    The lock (`.pipe/tmp/config.lock`) makes concurrent edits (two `pipe remote add`) apply one
    after the other, each to the other's result, so none is lost. `change` sees the file as it
    is once the lock is held, and may raise to leave it untouched.

    Raises:
        ConfigError: the file is invalid, or the change would put a credential in the committed
            `.pipe/config.yaml` (nothing is written).
    """
    lock_dir = path.parent / "tmp"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with ProjectMutex(lock_dir / "config.lock", command="pipe (config edit)", wait=True, timeout=_LOCK_TIMEOUT):
        data = read_config_file(path)
        data.setdefault("schema", 1)
        change(data)
        if path.name == CONFIG_FILE:
            _refuse_committed_secrets(data)
        atomic_write(path, dump_yaml(data))


def _refuse_committed_secrets(data: Mapping[str, Any]) -> None:
    """Raise when the committed config would hold a credential: in a remote's URL or an option."""
    remotes = data.get("remotes") or {}
    if not isinstance(remotes, Mapping):
        return
    for name, settings in remotes.items():
        if not isinstance(settings, Mapping):
            continue
        url = settings.get("url")
        url = url if isinstance(url, str) else ""
        if url and has_credentials(url):
            raise ConfigError(
                f"the URL of remote '{name}' contains a password or token ({mask_url(url)}), "
                f"which would be committed in .pipe/{CONFIG_FILE}",
                hint=_LOCAL_HINT,
            )
        for key, value in settings.items():
            if key == "url":
                continue
            if is_secret(url, str(key)) or (isinstance(value, str) and has_credentials(value)):
                raise ConfigError(
                    f"remote '{name}': '{key}' is a credential: it would be committed in .pipe/{CONFIG_FILE}",
                    hint=_LOCAL_HINT,
                )


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value


def _section(raw: Mapping[str, Any], name: str, allowed: set[str]) -> Mapping[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f".pipe/config.yaml: section '{name}' must be a mapping")
    unknown = {str(k) for k in value} - allowed
    if unknown:
        raise ConfigError(
            f".pipe/config.yaml: unknown key '{name}.{min(unknown)}' (known: {', '.join(sorted(allowed))})"
        )
    return value


def _to_config(raw: Mapping[str, Any]) -> Config:
    cache = _section(raw, "cache", _CACHE_KEYS)
    core = _section(raw, "core", _CORE_KEYS)
    types = cache.get("type", "reflink,copy")
    if isinstance(types, str):
        types = [t.strip() for t in types.split(",") if t.strip()]
    if not isinstance(types, list) or not types or not all(
        isinstance(t, str) and t in {"reflink", "hardlink", "symlink", "copy"} for t in types
    ):
        raise ConfigError(
            f".pipe/config.yaml: 'cache.type' must list reflink, hardlink, symlink or copy, not {types!r}"
        )
    remotes: dict[str, RemoteConfig] = {}
    raw_remotes = raw.get("remotes") or {}
    if not isinstance(raw_remotes, Mapping):
        raise ConfigError(".pipe/config.yaml: 'remotes' must be a mapping of name -> settings")
    for name, settings in raw_remotes.items():
        if not isinstance(settings, Mapping) or not isinstance(settings.get("url"), str):
            raise ConfigError(f".pipe/config.yaml: remote '{name}' needs a 'url'")
        options = {k: v for k, v in settings.items() if k != "url"}
        remotes[str(name)] = RemoteConfig(str(name), settings["url"], MappingProxyType(options))
    jobs = core.get("jobs", cache.get("jobs"))
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(".pipe/config.yaml: 'core.jobs' must be a positive integer")
    return Config(
        cache_types=tuple(types),
        cache_dir=cache.get("dir"),
        jobs=jobs,
        default_remote=core.get("remote"),
        no_scm=bool(core.get("no_scm", False)),
        remotes=MappingProxyType(remotes),
    )
