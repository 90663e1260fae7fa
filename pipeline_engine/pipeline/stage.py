"""One stage of pipeline.yaml, resolved: its value types (StageSpec, OutSpec, ParamsDep) and how they are built.

`pipeline.spec` parses the file, expands templates and calls `make_stage` with each stage's fields
after interpolation; every path goes through `norm_path` (the path gate) here.
"""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_engine.core.pathgate import check_not_own_file, check_relpath
from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.outputs import PlotOptions, parse_plot_options
from pipeline_engine.pipeline.params import PARAMS_FILE, PARAMS_SUFFIXES

__all__ = ["RESOURCES", "OutKind", "OutSpec", "ParamsDep", "StageSpec", "make_stage", "norm_path"]


class OutKind(enum.Enum):
    """Which list of the stage an out was declared in."""

    OUT = "outs"
    METRIC = "metrics"
    PLOT = "plots"


@dataclass(frozen=True, slots=True)
class OutSpec:
    """A path a stage writes, with its caching flags."""

    path: str
    kind: OutKind = OutKind.OUT
    cache: bool = True
    persist: bool = False
    push: bool = True
    desc: str | None = None
    plot: PlotOptions | None = None  # set for `plots` outs only
    remote: str | None = None  # the remote its objects go to and come from (DVC's per-output remote)


@dataclass(frozen=True, slots=True)
class ParamsDep:
    """Tracked keys of one params file; `keys` None tracks the whole file."""

    path: str
    keys: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage after templating; `group` is the name before '@' for generated stages."""

    name: str
    cmd: str | tuple[str, ...]  # a tuple: DVC's `cmd` list, each item its own shell command
    wdir: str = ""
    deps: tuple[str, ...] = ()
    outs: tuple[OutSpec, ...] = ()
    params: tuple[ParamsDep, ...] = ()
    env: tuple[str, ...] = ()
    frozen: bool = False
    always_changed: bool = False
    desc: str | None = None
    group: str = ""
    # What the stage needs where it runs, as (name, amount) pairs sorted by name: `cpus`, `memory`
    # (bytes), `gpus`. Executors map them to their own (a Dask executor: worker resources); the
    # lock never records them, so changing them never reruns a stage.
    resources: tuple[tuple[str, float], ...] = ()


def norm_path(wdir: str, path: str, *, what: str, allow_root: bool = False) -> str:
    """`path` (relative to `wdir`) as a project-relative POSIX path, through the path gate.

    `..` is resolved lexically against `wdir` first (`wdir: src` with `../data` is `data`, as in
    DVC); the result must then pass `core.pathgate.check_relpath`. `allow_root` accepts the
    project root itself (a `wdir` of `.`), returned as "".

    Raises:
        SpecError: the path starts with `~`.
        UnsafePathError: (a SpecError) the path is absolute, leaves the project, names
            `.git`/`.pipe`, or holds a control character; the message names `what`.
    """
    if path.startswith("~"):
        raise SpecError(f"{what}: path '{path}' must be relative to the project")
    joined = posixpath.join(wdir, path) if wdir else path
    normal = posixpath.normpath(joined) if joined and not joined.startswith("/") else joined
    return check_relpath(normal, source=what, allow_root=allow_root)


def make_stage(name: str, group: str, data: Mapping[str, Any], used: set[tuple[str, str]]) -> StageSpec:
    """A StageSpec from one stage's fields after interpolation; `used` are the (params file, key) pairs it interpolated.

    Raises:
        SpecError: a field has the wrong type or value; UnsafePathError for a path the gate refuses.
    """
    where = f"stage '{name}'"
    cmd = data.get("cmd")
    if isinstance(cmd, list) and cmd and all(isinstance(c, str) and c.strip() for c in cmd):
        cmd = tuple(cmd)  # DVC: each item runs on its own, in order; kept as a list in the lock
    elif not isinstance(cmd, str) or not cmd.strip():
        raise SpecError(f"{where}: 'cmd' is required and must be a string or a list of non-empty strings")
    wdir = norm_path("", _path_text(data.get("wdir") or ".", where, "wdir"), what=where, allow_root=True)
    deps = tuple(dict.fromkeys(
        norm_path(wdir, _path_text(d, where, "deps"), what=where) for d in data.get("deps") or ()
    ))
    outs = tuple(
        _out(item, kind, wdir, where)
        for kind in OutKind
        for item in data.get(kind.value) or ()
    )
    return StageSpec(
        name=name,
        cmd=cmd,
        wdir=wdir,
        deps=deps,
        outs=outs,
        params=_params(data.get("params") or [], wdir, used),
        env=tuple(dict.fromkeys(str(e) for e in data.get("env") or ())),
        frozen=_flag(data, "frozen", where),
        always_changed=_flag(data, "always_changed", where),
        desc=data.get("desc"),
        group=group,
        resources=_resources(data.get("resources"), where),
    )


RESOURCES = ("cpus", "gpus", "memory")
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20,
          "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def _resources(raw: Any, where: str) -> tuple[tuple[str, float], ...]:
    """`resources: {cpus: 2, memory: 4GiB, gpus: 1}` as sorted (name, amount) pairs; memory in bytes (Dask's units)."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: 'resources' must be a mapping of {', '.join(RESOURCES)}")
    pairs = []
    for name, value in raw.items():
        if name not in RESOURCES:
            raise SpecError(f"{where}: 'resources': unknown resource '{name}' (known: {', '.join(RESOURCES)})")
        amount = _size(value) if name == "memory" else value
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
            what = "a size such as 4GiB or a number of bytes" if name == "memory" else "a positive number"
            raise SpecError(f"{where}: 'resources': '{name}' must be {what}, not {value!r:.40}")
        pairs.append((str(name), float(amount)))
    return tuple(sorted(pairs))


def _size(value: Any) -> Any:
    """A memory size: a number of bytes, or text such as `4GiB`, `512 MB`, `2G` (as Dask reads them)."""
    if not isinstance(value, str):
        return value
    match = _SIZE.match(value)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    return None if match is None or unit is None else float(match.group(1)) * unit


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(f"{where}: '{key}' must be true or false, not {value!r}")
    return value


def _path_text(value: Any, where: str, key: str) -> str:
    """A path after interpolation: templates can produce numbers, lists or mappings (`${a}`)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SpecError(f"{where}: '{key}' must be a path (a string), not {type(value).__name__} {value!r:.60}")
    return str(value)


def _out(item: Any, kind: OutKind, wdir: str, where: str) -> OutSpec:
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        item = str(item)  # `${n}` of a number names a file, as in deps
    if not isinstance(item, (str, Mapping)) or (isinstance(item, Mapping) and len(item) != 1):
        raise SpecError(
            f"{where}: each of '{kind.value}' must be a path or a mapping {{path: {{flags}}}}, not {item!r:.60}"
        )
    if isinstance(item, Mapping) and not isinstance(next(iter(item.values())) or {}, Mapping):
        raise SpecError(f"{where}: the flags of '{next(iter(item))}' in '{kind.value}' must be a mapping")
    flags: Mapping[str, Any]
    if isinstance(item, str):
        path, flags = item, {}
    else:
        path, flags = next(iter(item.items()))
        flags = flags or {}
    rel = check_not_own_file(norm_path(wdir, str(path), what=where), source=where)
    for key in ("cache", "persist", "push"):
        if not isinstance(flags.get(key, True), bool):
            raise SpecError(f"{where}: '{path}': '{key}' must be true or false")
    return OutSpec(
        path=rel,
        kind=kind,
        cache=flags.get("cache", True),
        persist=flags.get("persist", False),
        push=flags.get("push", True),
        desc=flags.get("desc"),
        plot=parse_plot_options(flags, where=f"{where}: '{path}'") if kind is OutKind.PLOT else None,
        remote=flags.get("remote") or None,
    )


def _params(items: list[Any], wdir: str, used: set[tuple[str, str]]) -> tuple[ParamsDep, ...]:
    default = norm_path(wdir, PARAMS_FILE, what="params")
    files: dict[str, list[str] | None] = {}

    def track(file: str, keys: list[str] | None) -> None:
        current = files.get(file, [])
        if keys is None or current is None:
            files[file] = None
        else:
            files[file] = list(dict.fromkeys([*current, *keys]))

    for item in items:
        if isinstance(item, Mapping):
            for file, keys in item.items():
                track(norm_path(wdir, str(file), what="params"), list(keys) if keys else None)
        elif str(item).lower().endswith(PARAMS_SUFFIXES):
            track(norm_path(wdir, str(item), what="params"), None)
        else:
            track(default, [str(item)])
    # Values interpolated from a params file are inputs of the stage too.
    for file, key in sorted(used):
        track(file, [key])
    return tuple(ParamsDep(f, None if k is None else tuple(k)) for f, k in files.items())
