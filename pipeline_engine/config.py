"""Layered config: system < global < project (`.pipe/config.yaml`) < local (`.pipe/config.local.yaml`).

The four files have the same shape and are merged key by key, the later level winning (git's and
DVC's levels). `SETTINGS` is the one table of known keys: loading, `pipe config` and the docs use
it. Remote options are checked against the backend table in `remote.backend`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.layout import config_lock_path, tmp_dir
from pipeline_engine.core.mutex import ProjectMutex
from pipeline_engine.core.redact import has_credentials, mask_url
from pipeline_engine.core.schema import check_schema
from pipeline_engine.core.yamlio import dump_yaml, parse_yaml, read_utf8
from pipeline_engine.errors import ConfigError, SpecError
from pipeline_engine.pipeline.validate import suggest
from pipeline_engine.remote.backend import is_secret, protocol_of

__all__ = [
    "CONFIG_FILE",
    "EXECUTORS",
    "GLOBAL_DIR_ENV",
    "LEVELS",
    "LINK_TYPES",
    "LOCAL_CONFIG_FILE",
    "SETTINGS",
    "SYSTEM_DIR_ENV",
    "Config",
    "ConfigFile",
    "RemoteConfig",
    "Setting",
    "check_sections",
    "config_file",
    "edit_config",
    "flatten",
    "load_config",
    "read_config_file",
    "read_levels",
]

CONFIG_FILE = "config.yaml"
LOCAL_CONFIG_FILE = "config.local.yaml"
#: Lowest priority first: a key set at a later level overrides the same key at an earlier one.
LEVELS = ("system", "global", "project", "local")
GLOBAL_DIR_ENV = "PIPE_GLOBAL_CONFIG_DIR"
SYSTEM_DIR_ENV = "PIPE_SYSTEM_CONFIG_DIR"
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
_MAX_JOBS = 1024
_LOCK_TIMEOUT = 60.0
_UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST})
#: schemas/config.schema.json: every key of SETTINGS (a test keeps the two in step).
CONFIG_SCHEMA = "config.schema.json"
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True, slots=True)
class Setting:
    """One known key: its dotted name, what it must hold, and how a command-line word becomes it."""

    key: str
    expected: str
    valid: Callable[[Any], bool]
    parse: Callable[[str], Any]
    help: str


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and value.isprintable()


def _is_jobs(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_JOBS


def _link_types(value: Any) -> list[str] | None:
    """The link types `value` lists (a comma-separated string or a list), or None when invalid."""
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else value
    if not isinstance(parts, list) or not parts:
        return None
    if not all(isinstance(p, str) and p in LINK_TYPES for p in parts):
        return None
    return parts


def _parse_int(text: str) -> Any:
    return int(text) if text.strip().isdigit() else text


def _parse_bool(text: str) -> Any:
    lowered = text.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else text


def _parse_link_types(text: str) -> str:
    return ",".join(p.strip() for p in text.split(","))


#: The executors `executor.type` and `pipe repro --executor` accept.
EXECUTORS = ("local", "dask")
_PARSING_BOOL = ("store_true", "boolean_optional")
_PARSING_LIST = ("nargs", "append")
SETTINGS: Mapping[str, Setting] = MappingProxyType({
    s.key: s
    for s in (
        Setting("cache.dir", "a non-empty path", _is_name, str,
                "cache directory (relative to the file's directory; default .pipe/cache)"),
        Setting("cache.jobs", f"an integer from 1 to {_MAX_JOBS}", _is_jobs, _parse_int,
                "default parallelism (older name of core.jobs)"),
        Setting("cache.type", f"a comma-separated list of {', '.join(LINK_TYPES)}",
                lambda v: _link_types(v) is not None, _parse_link_types,
                "how workspace files refer to cached objects, first that works (default reflink,copy)"),
        Setting("core.jobs", f"an integer from 1 to {_MAX_JOBS}", _is_jobs, _parse_int,
                "default parallelism for repro and transfers"),
        Setting("core.no_scm", "true or false", lambda v: isinstance(v, bool), _parse_bool,
                "true: use pipe without git"),
        Setting("core.remote", "a remote name", _is_name, str, "the default remote"),
        Setting("executor.scheduler", "a scheduler address such as tcp://HOST:8786", _is_name, str,
                "the Dask scheduler pipe repro --executor dask uses (none: a local cluster)"),
        Setting("executor.shared_fs", "true or false", lambda v: isinstance(v, bool), _parse_bool,
                "true: Dask workers run in the project directory and share its cache"),
        Setting("executor.type", "local or dask", lambda v: v in EXECUTORS, str,
                "where pipe repro runs stage commands: local processes (default) or a Dask cluster"),
        Setting("parsing.bool", "store_true or boolean_optional", lambda v: v in _PARSING_BOOL, str,
                "how ${dict} in a cmd writes false: nothing (store_true) or --no-KEY (DVC)"),
        Setting("parsing.list", "nargs or append", lambda v: v in _PARSING_LIST, str,
                "how ${dict} in a cmd writes a list: --k 1 2 (nargs) or --k 1 --k 2 (append) (DVC)"),
    )
})
_SECTION_KEYS: Mapping[str, frozenset[str]] = MappingProxyType({
    section: frozenset(k.partition(".")[2] for k in SETTINGS if k.startswith(f"{section}."))
    for section in sorted({k.partition(".")[0] for k in SETTINGS})
})
_SECTIONS = frozenset({"schema", "remotes", *_SECTION_KEYS})


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
    parsing_bool: str = "store_true"
    parsing_list: str = "nargs"
    remotes: Mapping[str, RemoteConfig] = field(default_factory=lambda: MappingProxyType({}))
    executor: str = "local"
    scheduler: str | None = None
    shared_fs: bool = False


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The file of one config level; `label` names it in messages (`.pipe/config.local.yaml`)."""

    level: str
    path: Path

    @property
    def label(self) -> str:
        """How messages and `--show-origin` name the file."""
        return f".pipe/{self.path.name}" if self.level in ("project", "local") else str(self.path)

    @property
    def lock_path(self) -> Path:
        """The lock held while the file is edited: `.pipe/tmp/config.lock`, or `config.lock` beside it."""
        if self.level in ("project", "local"):
            return config_lock_path(self.path.parent)
        return self.path.parent / "config.lock"


def config_file(level: str, control_dir: Path | None) -> ConfigFile:
    """The file of `level`; global and system files honour PIPE_GLOBAL_CONFIG_DIR / PIPE_SYSTEM_CONFIG_DIR.

    Raises:
        ConfigError: a project or local level outside a project.
    """
    if level in ("project", "local"):
        if control_dir is None:
            raise ConfigError(
                f"the {level} config belongs to a pipe project, and this is not inside one",
                hint="run it inside a project (after 'pipe init'), or use '--global'",
            )
        return ConfigFile(level, control_dir / (CONFIG_FILE if level == "project" else LOCAL_CONFIG_FILE))
    import platformdirs

    if level == "global":
        base = os.environ.get(GLOBAL_DIR_ENV) or platformdirs.user_config_dir("pipe")
    else:
        base = os.environ.get(SYSTEM_DIR_ENV) or platformdirs.site_config_dir("pipe")
    return ConfigFile(level, Path(base).expanduser() / CONFIG_FILE)


def _project_file(path: Path) -> ConfigFile:
    return ConfigFile("local" if path.name == LOCAL_CONFIG_FILE else "project", path)


def load_config(control_dir: Path) -> Config:
    """Read and merge the four levels (system, global, project, local).

    Raises:
        ConfigError: a file is not valid YAML or has an unknown section, key or a wrong value;
            the message names that file.
    """
    levels = read_levels(control_dir)
    merged: dict[str, Any] = {}
    for _, raw in levels:
        _merge(merged, raw)
    _check_remote_urls(merged, levels)
    return _to_config(merged)


def read_levels(control_dir: Path | None, *, check: bool = True) -> list[tuple[ConfigFile, dict[str, Any]]]:
    """Every level's file and its content ({} when absent), lowest priority first.

    Outside a project (`control_dir` None) only the system and global levels are read. Relative
    paths in the global and system files (`cache.dir`, a local remote's URL) are made absolute
    from the file's directory, as DVC does. `check` as in `read_config_file`.
    """
    out = []
    for level in LEVELS:
        if control_dir is None and level in ("project", "local"):
            continue
        file = config_file(level, control_dir)
        if control_dir is not None and level in ("project", "local"):
            _refuse_link_outside(file, control_dir.parent)
        raw = read_config_file(file, check=check, memo=None if control_dir is None else tmp_dir(control_dir))
        if level in ("system", "global"):
            _absolute_paths(raw, file.path.parent)
        out.append((file, raw))
    return out


def _refuse_link_outside(file: ConfigFile, root: Path) -> None:
    """A project or local config file that is a symlink out of the project is refused (as DVC does):
    a cloned repository could link `config.local.yaml` to another project's, whose credentials
    would then go to the remotes this repository's `config.yaml` names.

    Raises:
        ConfigError: naming the file and where it leads.
    """
    if not os.path.islink(file.path):
        return
    target, real_root = os.path.realpath(file.path), os.path.realpath(root)
    if not target.startswith(real_root.rstrip(os.sep) + os.sep):
        raise ConfigError(
            f"{file.label} is a symlink to '{target}', outside the project; pipe does not read config through it",
            hint=f"replace the link by a file of its own, or remove it: 'rm {file.label}'",
        )


def read_config_file(target: Path | ConfigFile, *, check: bool = True, memo: Path | None = None) -> dict[str, Any]:
    """One config file as a dict ({} when absent), checked against `SETTINGS`; errors name the file.

    Without `check` only the YAML and its top-level mapping are checked (`pipe config` reads so,
    to show and repair a file with a wrong key or value). With it, the file is also checked
    against schemas/config.schema.json once per text (`memo`: the project's `.pipe/tmp`; the
    project and local files default to theirs; see core.schema).
    """
    file = target if isinstance(target, ConfigFile) else _project_file(target)
    if not file.path.exists():
        return {}
    try:
        text = read_utf8(file.path, source=file.label)
        raw = parse_yaml(text, source=file.label)
    except FileNotFoundError:
        return {}
    except SpecError as exc:
        raise ConfigError(str(exc), hint=f"fix or remove {file.label}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file.label}: must be a mapping of sections", hint=f"fix or remove {file.label}")
    if check:
        _check_types(raw, source=file.label)
        try:
            check_schema(raw, name=CONFIG_SCHEMA, source=file.label, text=text, memo=memo or _memo(file))
        except SpecError as exc:
            raise ConfigError(str(exc), hint=f"fix or remove {file.label}") from exc
    return raw


def _memo(file: ConfigFile) -> Path | None:
    """`.pipe/tmp` for the project's own files (their directory is the control directory)."""
    return tmp_dir(file.path.parent) if file.level in ("project", "local") else None


def check_sections(raw: Mapping[str, Any], *, source: str) -> None:
    """Every top-level section of one file is known (DVC's schema refuses extra keys too).

    Raises:
        ConfigError: naming `source`, the section and the known ones.
    """
    for name in raw:
        if name not in _SECTIONS:
            raise ConfigError(
                f"{source}: unknown section '{name}'{suggest(str(name), sorted(_SECTIONS))} "
                f"(known: {', '.join(sorted(_SECTIONS))})",
                hint=f"remove or rename '{name}' in {source}",
            )


def _check_types(raw: Mapping[str, Any], *, source: str) -> None:
    """Sections, keys and values of one file are known and well-typed; the message names `source`."""
    check_sections(raw, source=source)
    for name, keys in _SECTION_KEYS.items():
        section = raw.get(name) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"{source}: section '{name}' must be a mapping")
        for key, value in section.items():
            setting = SETTINGS.get(f"{name}.{key}")
            if setting is None:
                known = sorted(f"{name}.{k}" for k in keys)
                raise ConfigError(
                    f"{source}: unknown key '{name}.{key}'{suggest(f'{name}.{key}', known)} "
                    f"(known: {', '.join(known)})"
                )
            if not setting.valid(value):
                raise ConfigError(f"{source}: '{setting.key}' must be {setting.expected}, not {value!r}")
    _check_remotes(raw.get("remotes"), source=source)


def _check_remotes(remotes: Any, *, source: str) -> None:
    if remotes is not None and not isinstance(remotes, Mapping):
        raise ConfigError(f"{source}: 'remotes' must be a mapping of name -> settings")
    for name, settings in (remotes or {}).items():
        if not isinstance(name, str) or not name or not name.isprintable():
            raise ConfigError(f"{source}: remote name {name!r} must be a string")
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{source}: remote '{name}' must be a mapping with 'url'")
        url = settings.get("url")
        if url is not None and not (isinstance(url, str) and url and url.isprintable()):
            raise ConfigError(f"{source}: remote '{name}': 'url' must be a non-empty string without control characters")
        if not all(isinstance(k, str) for k in settings):
            raise ConfigError(f"{source}: remote '{name}': option names must be strings")


def _check_remote_urls(merged: Mapping[str, Any], levels: list[tuple[ConfigFile, dict[str, Any]]]) -> None:
    """Every remote has a URL once the levels are merged; the error names the files that define it."""
    for name, settings in (merged.get("remotes") or {}).items():
        if isinstance(settings.get("url"), str):
            continue
        where = [f.label for f, raw in levels if name in (raw.get("remotes") or {})]
        raise ConfigError(
            f"{', '.join(where)}: remote '{name}' has no 'url' at any config level",
            hint=f"set it with 'pipe config remote.{name}.url URL', or remove the remote's settings",
        )


def _absolute_paths(raw: dict[str, Any], base: Path) -> None:
    cache = raw.get("cache")
    if isinstance(cache, dict) and _is_relative_path(cache.get("dir")):
        cache["dir"] = str(base / cache["dir"])
    remotes = raw.get("remotes")
    for settings in remotes.values() if isinstance(remotes, dict) else ():
        if isinstance(settings, dict) and _is_relative_path(settings.get("url")):
            settings["url"] = str(base / settings["url"])


def _is_relative_path(value: Any) -> bool:
    """A local path (no URL scheme), neither absolute nor starting with `~`."""
    if not isinstance(value, str) or "://" in value or protocol_of(value) != "file":
        return False
    return not os.path.isabs(os.path.expanduser(value))


def flatten(raw: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every value one file sets: `core.remote`, `remote.NAME.url`, sorted."""
    items: list[tuple[str, Any]] = []
    for section, body in raw.items():
        if section == "schema" or not isinstance(body, Mapping):
            continue
        if section == "remotes":
            for name, settings in body.items():
                if isinstance(settings, Mapping):
                    items.extend((f"remote.{name}.{k}", v) for k, v in settings.items())
        else:
            items.extend((f"{section}.{k}", v) for k, v in body.items())
    yield from sorted(items, key=lambda kv: str(kv[0]))


def edit_config(
    target: Path | ConfigFile, change: Callable[[dict[str, Any]], None], *, repair: bool = False
) -> None:
    """Apply `change` to one config file's dict and write it back atomically, under the config lock.

    The lock (`.pipe/tmp/config.lock` for the project's files) makes concurrent edits (two `pipe
    remote add`) apply one after the other, each to the other's result, so none is lost. `change`
    sees the file as it is once the lock is held, and may raise to leave it untouched. With
    `repair`, the file is not checked before the change (which must then expect any shape), only
    after it, so a change can fix a wrong key or value.

    Raises:
        ConfigError: the file is invalid before or after the change, or the change would put a
            credential in the committed `.pipe/config.yaml` (nothing is written).
    """
    file = target if isinstance(target, ConfigFile) else _project_file(target)
    try:
        file.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with ProjectMutex(file.lock_path, command="pipe (config edit)", wait=True, timeout=_LOCK_TIMEOUT):
            data = read_config_file(file, check=not repair)
            data.setdefault("schema", 1)
            change(data)
            _check_types(data, source=file.label)
            if file.level == "project":
                _refuse_committed_secrets(data)
            text = dump_yaml(data)
            try:  # checked (and remembered) before it is written: the next read skips the schema check
                check_schema(data, name=CONFIG_SCHEMA, source=file.label, text=text, memo=_memo(file))
            except SpecError as exc:
                raise ConfigError(str(exc)) from exc
            atomic_write(file.path, text)
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        hint = (
            "the system config needs administrator rights: rerun with sudo, or use '--global' for your own"
            if file.level == "system" else f"check the permissions of {file.path.parent}"
        )
        raise ConfigError(f"cannot write {file.label}: {(exc.strerror or str(exc)).lower()}", hint=hint) from exc


def _local_hint(name: str, key: str) -> str:
    return (
        f"keep credentials in .pipe/{LOCAL_CONFIG_FILE}, which git ignores: add '--local', "
        f"e.g. 'pipe config --local remote.{name}.{key} VALUE' or 'pipe remote modify --local {name} {key} VALUE'"
    )


def _refuse_committed_secrets(data: Mapping[str, Any]) -> None:
    """Raise when the committed config would hold a credential: in a remote's URL or an option."""
    for name, settings in (data.get("remotes") or {}).items():
        url = settings.get("url")
        url = url if isinstance(url, str) else ""
        if url and has_credentials(url):
            raise ConfigError(
                f"the URL of remote '{name}' contains a password or token ({mask_url(url)}), "
                f"which would be committed in .pipe/{CONFIG_FILE}",
                hint=_local_hint(name, "url"),
            )
        for key, value in settings.items():
            if key == "url":
                continue
            if is_secret(url, str(key)) or (isinstance(value, str) and has_credentials(value)):
                raise ConfigError(
                    f"remote '{name}': '{key}' is a credential: it would be committed in .pipe/{CONFIG_FILE}",
                    hint=_local_hint(name, str(key)),
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


def _to_config(raw: Mapping[str, Any]) -> Config:
    """The merged, already checked levels as a Config."""
    cache = raw.get("cache") or {}
    core = raw.get("core") or {}
    types = _link_types(cache.get("type", "reflink,copy")) or ["reflink", "copy"]
    remotes = {
        str(name): RemoteConfig(
            str(name), settings["url"], MappingProxyType({k: v for k, v in settings.items() if k != "url"})
        )
        for name, settings in (raw.get("remotes") or {}).items()
    }
    return Config(
        cache_types=tuple(types),
        cache_dir=cache.get("dir"),
        jobs=core.get("jobs", cache.get("jobs")),
        default_remote=core.get("remote"),
        no_scm=bool(core.get("no_scm", False)),
        parsing_bool=(raw.get("parsing") or {}).get("bool", "store_true"),
        parsing_list=(raw.get("parsing") or {}).get("list", "nargs"),
        remotes=MappingProxyType(remotes),
        executor=(raw.get("executor") or {}).get("type", "local"),
        scheduler=(raw.get("executor") or {}).get("scheduler"),
        shared_fs=bool((raw.get("executor") or {}).get("shared_fs", False)),
    )
