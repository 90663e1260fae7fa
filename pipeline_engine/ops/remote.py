"""`pipe remote`: add, modify, list, remove remotes and choose the default; open one for a transfer.

Credentials (a password or token in a URL, an option the backend table marks as a credential or
whose name says so) are only ever written to `.pipe/config.local.yaml`, which git ignores; every
edit goes through `config.edit_config`, which takes the config lock and refuses them in the
committed file. No result returned here carries their values (`core.redact` masks them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_engine.config import CONFIG_FILE, LOCAL_CONFIG_FILE, edit_config, read_config_file
from pipeline_engine.core.redact import MASK, has_credentials, mask_url
from pipeline_engine.errors import ConfigError
from pipeline_engine.project import Project
from pipeline_engine.remote.backend import check_option, is_secret

__all__ = [
    "RemoteInfo",
    "add_remote",
    "list_remotes",
    "modify_remote",
    "remove_remote",
    "set_default_remote",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class RemoteInfo:
    """A configured remote as safe to show: URL without password, secret option values masked."""

    name: str
    url: str
    is_default: bool
    options: tuple[tuple[str, str], ...]


def _config_path(project: Project, *, local: bool) -> Path:
    return project.control_dir / (LOCAL_CONFIG_FILE if local else CONFIG_FILE)


def _file_label(local: bool) -> str:
    return f".pipe/{LOCAL_CONFIG_FILE if local else CONFIG_FILE}"


def add_remote(
    project: Project, name: str, url: str, *, default: bool = False, local: bool = False, force: bool = False
) -> None:
    """Add remote `name` at `url` (replacing it with `force`); `default` makes it core.remote.

    Raises:
        ConfigError: the name is invalid, the remote exists and `force` is false, or the URL
            holds a password and would be committed.
    """
    if not _NAME_RE.match(name):
        raise ConfigError(f"remote name '{name}' must be letters, digits, '_', '.' or '-'")
    if name in project.config.remotes and not force:
        raise ConfigError(
            f"remote '{name}' already exists", hint=f"use 'pipe remote add -f {name} URL' to replace it"
        )
    if has_credentials(url) and not local:
        raise ConfigError(
            f"the URL of remote '{name}' contains a password or token ({mask_url(url)}), "
            f"which would be committed in .pipe/{CONFIG_FILE}",
            hint=f"use 'pipe remote add --local {name} URL' to keep it in .pipe/{LOCAL_CONFIG_FILE} "
            "(git-ignored), or add the URL without credentials and set them with 'pipe remote modify --local'",
        )

    def change(data: dict[str, Any]) -> None:
        # Checked again under the config lock: a concurrent `add` of the same name may have won.
        if name in (data.get("remotes") or {}) and not force:
            raise ConfigError(
                f"remote '{name}' already exists", hint=f"use 'pipe remote add -f {name} URL' to replace it"
            )
        data.setdefault("remotes", {})[name] = {"url": url}
        if default:
            data.setdefault("core", {})["remote"] = name

    edit_config(_config_path(project, local=local), change)


def modify_remote(
    project: Project,
    name: str,
    key: str,
    value: str | None = None,
    *,
    unset: bool = False,
    local: bool = False,
) -> str:
    """Set (or with `unset`, remove) option `key` of remote `name`; returns the file it changed.

    Raises:
        ConfigError: no such remote, unknown option, wrong value type, a credential outside
            `local`, or an `unset` of an option the file does not set.
    """
    remote = _existing(project, name)
    target = _config_path(project, local=local)
    if unset:
        _unset_option(target, name, key, local=local)
        return _file_label(local)
    if value is None:
        raise ConfigError(f"give a value for '{key}' (or use --unset)")
    if key == "url":
        converted: Any = value
        if has_credentials(value) and not local:
            raise ConfigError(
                f"the URL contains a password or token ({mask_url(value)}): "
                f"it would be committed in .pipe/{CONFIG_FILE}",
                hint=f"use 'pipe remote modify --local {name} url URL' "
                f"to keep it in .pipe/{LOCAL_CONFIG_FILE}",
            )
    else:
        converted = check_option(name, remote.url, key, value)
        if (is_secret(remote.url, key) or has_credentials(value)) and not local:
            raise ConfigError(
                f"'{key}' is a credential: it would be committed in .pipe/{CONFIG_FILE}",
                hint=f"use 'pipe remote modify --local {name} {key} ...' "
                f"to keep it in .pipe/{LOCAL_CONFIG_FILE}",
            )
    edit_config(
        target, lambda data: data.setdefault("remotes", {}).setdefault(name, {}).update({key: converted})
    )
    return _file_label(local)


def _unset_option(path: Path, name: str, key: str, *, local: bool) -> None:
    if key == "url":
        raise ConfigError(f"cannot unset the url of remote '{name}'", hint=f"use 'pipe remote remove {name}'")
    entry = (read_config_file(path).get("remotes") or {}).get(name) or {}
    if key not in entry:
        raise ConfigError(f"remote '{name}' has no option '{key}' in {_file_label(local)}")

    def change(data: dict[str, Any]) -> None:
        settings = data["remotes"][name]
        del settings[key]
        if not settings:
            del data["remotes"][name]
        if not data["remotes"]:
            del data["remotes"]

    edit_config(path, change)


def remove_remote(project: Project, name: str) -> None:
    """Remove remote `name` from both config files, and unset it as the default.

    Raises:
        ConfigError: no remote has that name.
    """
    _existing(project, name)
    here = [local for local in (False, True)
            if name in (read_config_file(_config_path(project, local=local), check=False).get("remotes") or {})]
    if not here:
        # Defined in the global or system config: this project's files cannot remove it.
        raise ConfigError(
            f"remote '{name}' is not defined in this project's config "
            "(it comes from the global or system config)",
            hint=(f"run 'pipe config --list --show-origin' to see which file, "
                  f"then 'pipe config --global --unset remote.{name}.url'"),
        )
    for local in (False, True):
        path = _config_path(project, local=local)
        if not path.exists():
            continue

        def change(data: dict[str, Any]) -> None:
            (data.get("remotes") or {}).pop(name, None)
            if not data.get("remotes"):
                data.pop("remotes", None)
            core = data.get("core") or {}
            if core.get("remote") == name:
                del core["remote"]
                if not core:
                    data.pop("core", None)

        edit_config(path, change)


def set_default_remote(project: Project, name: str | None, *, local: bool = False) -> None:
    """Make `name` the default remote (None: unset it in that file).

    Raises:
        ConfigError: no remote has that name.
    """
    if name is not None:
        _existing(project, name)

    def change(data: dict[str, Any]) -> None:
        core = data.setdefault("core", {})
        if name is None:
            core.pop("remote", None)
            if not core:
                del data["core"]
        else:
            core["remote"] = name

    edit_config(_config_path(project, local=local), change)


def list_remotes(project: Project) -> list[RemoteInfo]:
    """Every configured remote, sorted by name, with secrets masked."""
    infos = []
    for name, remote in sorted(project.config.remotes.items()):
        infos.append(
            RemoteInfo(
                name,
                mask_url(remote.url),
                name == project.config.default_remote,
                _shown_options(remote.url, remote.options),
            )
        )
    return infos


def _shown_options(url: str, options: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (key, MASK if is_secret(url, key) else mask_url(str(value))) for key, value in sorted(options.items())
    )


def _existing(project: Project, name: str) -> Any:
    remote = project.config.remotes.get(name)
    if remote is None:
        known = ", ".join(sorted(project.config.remotes)) or "none"
        raise ConfigError(f"no remote named '{name}' (configured: {known})", hint="run 'pipe remote list'")
    return remote
