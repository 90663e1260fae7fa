"""`pipe config`: get, set, unset and list dotted keys at one level, or read all levels merged.

Levels and the schema of keys are in `config` (`LEVELS`, `SETTINGS`); remote options are checked
against the backend table. Files are read without their keys checked (as DVC's `config` command
does), so a wrong key or value can be shown and repaired; every write goes through
`config.edit_config` (config lock, atomic, the file checked after the change, no credential in the
committed file). Values returned here are masked by `core.redact`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_engine.config import (
    LEVELS,
    SETTINGS,
    ConfigFile,
    check_sections,
    config_file,
    edit_config,
    flatten,
    read_levels,
)
from pipeline_engine.core.redact import MASK, mask_url
from pipeline_engine.errors import ConfigError
from pipeline_engine.pipeline.validate import suggest
from pipeline_engine.project import CONTROL_DIR, is_project_root, require_own_control_dir
from pipeline_engine.remote.backend import check_option, is_secret

__all__ = ["ConfigValue", "find_control_dir", "get_value", "list_values", "set_value", "unset_value"]

_REMOTE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # as `pipe remote add` accepts
_REMOTE_KEY = "remote.NAME.OPTION"
_MISSING = object()


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """One key as safe to show: its value masked, the level and file that set it."""

    key: str
    value: str
    level: str
    origin: str


Levels = list[tuple[ConfigFile, dict[str, Any]]]


def find_control_dir(start: Path | None = None) -> Path | None:
    """The `.pipe/` directory of the project containing `start` (default: cwd), without reading its
    config (so a broken config can still be fixed); None outside a project."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if is_project_root(d):
            require_own_control_dir(d)  # never another project's config, through a committed link
            return d / CONTROL_DIR
    return None


def get_value(control_dir: Path | None, key: str, *, level: str | None = None) -> ConfigValue:
    """The value of `key` at `level`, or (no level) from the highest level that sets it.

    Raises:
        ConfigError: the key is unknown, or not set (at that level).
    """
    _key_path(key)
    levels = read_levels(control_dir, check=False)
    for file, raw in reversed(_at(levels, level)):
        for flat_key, value in flatten(raw):
            if flat_key == key:
                return ConfigValue(key, _shown(key, value, levels), file.level, file.label)
    where = config_file(level, control_dir).label if level else "any config level"
    elsewhere = [f for f, raw in levels if key in dict(flatten(raw))]
    hint = (
        f"it is set in {elsewhere[-1].label} ('pipe config --{elsewhere[-1].level} {key}')" if elsewhere
        else f"set it with 'pipe config {f'--{level} ' if level else ''}{key} VALUE'"
    )
    raise ConfigError(f"'{key}' is not set in {where}", hint=hint)


def list_values(control_dir: Path | None, *, level: str | None = None) -> list[ConfigValue]:
    """Every key each level's file sets (or only `level`'s), lowest level first, values masked.

    Raises:
        ConfigError: a listed file has a section pipe does not know (every other command refuses
            the file; a wrong key or value is listed, so that it can be seen and set right).
    """
    levels = read_levels(control_dir, check=False)
    if level is not None:
        config_file(level, control_dir)  # a project level outside a project is an error
    for file, raw in _at(levels, level):
        check_sections(raw, source=file.label)
    return [
        ConfigValue(key, _shown(key, value, levels), file.level, file.label)
        for file, raw in _at(levels, level)
        for key, value in flatten(raw)
    ]


def set_value(control_dir: Path | None, key: str, text: str, *, level: str | None = None) -> str:
    """Set `key` to `text` (converted to the key's type) in `level`'s file (default: project).

    Returns the label of the file written.

    Raises:
        ConfigError: unknown key, a value of the wrong type, an unknown remote, or a credential
            for the committed project file.
    """
    path = _key_path(key)
    file = config_file(level or "project", control_dir)
    levels = read_levels(control_dir, check=False)
    value = _remote_value(path, text, levels) if path[0] == "remotes" else _setting_value(key, text, levels)

    def change(data: dict[str, Any]) -> None:
        node = data
        for depth, part in enumerate(path[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                where = ".".join(path[: depth + 1])
                raise ConfigError(f"{file.label}: '{where}' must be a mapping", hint=f"fix or remove {file.label}")
        node[path[-1]] = value

    edit_config(file, change, repair=True)
    return file.label


def unset_value(control_dir: Path | None, key: str, *, level: str | None = None) -> str:
    """Remove `key` from `level`'s file (default: project); returns the label of the file written.

    Raises:
        ConfigError: unknown key, the key is not set in that file, or removing a remote's URL
            would leave its other settings without one.
    """
    file = config_file(level or "project", control_dir)
    levels = read_levels(control_dir, check=False)
    mine = next((raw for f, raw in levels if f.level == file.level), {})
    try:
        path = _key_path(key)
    except ConfigError:
        if key not in dict(flatten(mine)):
            raise
        path = (key.partition(".")[0], key.partition(".")[2])  # unknown, but set: removing it repairs the file
    if key not in dict(flatten(mine)):
        elsewhere = [f for f, raw in levels if key in dict(flatten(raw))]
        hint = (
            f"it is set in {elsewhere[-1].label}: 'pipe config --{elsewhere[-1].level} --unset {key}'"
            if elsewhere else "'pipe config --list --show-origin' shows what is set where"
        )
        raise ConfigError(f"'{key}' is not set in {file.label}", hint=hint)
    if path[0] == "remotes" and path[2] == "url":
        _check_url_unset(path[1], file, levels)

    def change(data: dict[str, Any]) -> None:
        nodes = [data]
        for part in path[:-1]:
            child = nodes[-1].get(part)
            if not isinstance(child, dict):
                raise ConfigError(f"'{key}' is not set in {file.label}")  # removed meanwhile
            nodes.append(child)
        if nodes[-1].pop(path[-1], _MISSING) is _MISSING:
            raise ConfigError(f"'{key}' is not set in {file.label}")
        for parent, part, node in reversed(list(zip(nodes, path, nodes[1:], strict=False))):
            if not node:
                del parent[part]

    edit_config(file, change, repair=True)
    return file.label


def _key_path(key: str) -> tuple[str, ...]:
    """Where `key` lives in a file: `core.remote` -> (core, remote), `remote.s.url` -> (remotes, s, url)."""
    if key.startswith("remote."):
        name, _, option = key[len("remote."):].rpartition(".")
        if not name or not option:
            raise ConfigError(f"'{key}': a remote's key is {_REMOTE_KEY}, e.g. 'remote.store.url'")
        return ("remotes", name, option)
    section = key.partition(".")[0]
    sections = sorted({k.partition(".")[0] for k in SETTINGS} | {"remote"})
    if section not in sections:
        raise ConfigError(
            f"unknown config key '{key}': no section '{section}'{suggest(section, sections)} "
            f"(known sections: {', '.join(sections)})",
            hint="'pipe config --help' describes each key",
        )
    if key not in SETTINGS:
        known = [*SETTINGS, _REMOTE_KEY]
        raise ConfigError(
            f"unknown config key '{key}'{suggest(key, list(SETTINGS))} (known: {', '.join(known)})",
            hint="'pipe config --help' describes each key",
        )
    section, _, option = key.partition(".")
    return (section, option)


def _setting_value(key: str, text: str, levels: Levels) -> Any:
    setting = SETTINGS[key]
    value = setting.parse(text)
    if not setting.valid(value):
        raise ConfigError(f"'{key}' must be {setting.expected}, not {text!r}")
    if key == "core.remote":
        known = sorted(_remotes(levels))
        if value not in known:
            raise ConfigError(
                f"no remote named '{value}'{suggest(value, known)} (configured: {', '.join(known) or 'none'})",
                hint=f"add it first with 'pipe remote add {value} URL'",
            )
    return value


def _remote_value(path: tuple[str, ...], text: str, levels: Levels) -> Any:
    _, name, option = path
    if option == "url":
        if not text or not text.isprintable():
            raise ConfigError(f"remote '{name}': 'url' must be a non-empty string without control characters")
        if name not in _remotes(levels) and not _REMOTE_NAME_RE.match(name):
            raise ConfigError(f"remote name '{name}' must be letters, digits, '_', '.' or '-'")
        return text
    url = _remotes(levels).get(name)
    if url is None:
        raise ConfigError(
            f"no remote named '{name}' with a URL",
            hint=f"add it first with 'pipe remote add {name} URL' or 'pipe config remote.{name}.url URL'",
        )
    return check_option(name, url, option, text)


def _check_url_unset(name: str, file: ConfigFile, levels: Levels) -> None:
    if any("url" in _remote(raw, name) for f, raw in levels if f.level != file.level):
        return
    settings = [_remote(raw, name) for _, raw in levels if _remote(raw, name)]
    if len(settings) > 1 or len(settings[0]) > 1:
        raise ConfigError(
            f"remote '{name}' would keep its other settings without a URL",
            hint=f"remove the whole remote with 'pipe remote remove {name}'",
        )


def _remote(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """The settings one file gives remote `name` ({} when none, or when the file is malformed there)."""
    remotes = raw.get("remotes")
    settings = remotes.get(name) if isinstance(remotes, dict) else None
    return settings if isinstance(settings, dict) else {}


def _remotes(levels: Levels) -> dict[str, str]:
    """Remote name -> URL across all levels (the highest level's URL wins)."""
    urls: dict[str, str] = {}
    for _, raw in levels:
        remotes = raw.get("remotes")
        for name in remotes if isinstance(remotes, dict) else ():
            url = _remote(raw, name).get("url")
            if isinstance(url, str):
                urls[name] = url
    return urls


def _at(levels: Levels, level: str | None) -> Levels:
    if level is not None and level not in LEVELS:
        raise ConfigError(f"unknown config level '{level}' (known: {', '.join(LEVELS)})")
    return [(f, raw) for f, raw in levels if level is None or f.level == level]


def _shown(key: str, value: Any, levels: Levels) -> str:
    """`value` as the user would type it, with credentials masked."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if key.startswith("remote."):
        name, _, option = key[len("remote."):].rpartition(".")
        if option != "url" and is_secret(_remotes(levels).get(name, ""), option):
            return MASK
    return mask_url(str(value))
