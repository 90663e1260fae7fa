"""pipeline.yaml -> frozen PipelineSpec: validation, templating, foreach/matrix expansion, paths.

This is the only module that sees the raw YAML of pipeline.yaml; everything after it sees
`StageSpec`s whose paths are project-relative POSIX paths and whose templates are resolved.
params.yaml and `vars` files are read from the same `RevisionFiles` as the spec itself, so a spec
at a git revision is resolved with that revision's params.
"""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.pathgate import check_not_own_file, check_relpath
from pipeline_engine.core.revision import RevisionFiles, WorkspaceFiles
from pipeline_engine.core.schema import is_known_valid, memo_of, remember_valid
from pipeline_engine.core.yamlio import parse_yaml
from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.interpolate import (
    BoolStyle,
    Context,
    ListStyle,
    Origin,
    Resolver,
    expand_foreach,
    expand_matrix,
    parse_expr,
)
from pipeline_engine.pipeline.outputs import (
    ArtifactSpec,
    PlotOptions,
    PlotSpec,
    parse_artifacts,
    parse_metrics_paths,
    parse_plot_options,
    parse_plots,
)
from pipeline_engine.pipeline.params import PARAMS_FILE, PARAMS_SUFFIXES, parse_params, read_params
from pipeline_engine.pipeline.validate import PIPELINE_SCHEMA, locate, validate

__all__ = [
    "PIPELINE_FILE", "OutKind", "OutSpec", "ParamsDep", "PipelineSpec", "StageSpec",
    "load_spec", "norm_path", "parse_spec",
]

PIPELINE_FILE = "pipeline.yaml"
_TEMPLATE_KEYS = ("vars", "foreach", "do", "matrix")
_WHOLE = re.compile(r"\$\{([^}]*)\}")


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


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """Every stage of pipeline.yaml, in file order; `digest` identifies the text that was validated.

    `metrics`, `plots` and `artifacts` are the top-level keys (pipeline.outputs), paths project-relative.
    """

    stages: Mapping[str, StageSpec] = field(default_factory=dict)
    digest: str = ""
    metrics: tuple[str, ...] = ()
    plots: tuple[PlotSpec, ...] = ()
    artifacts: Mapping[str, ArtifactSpec] = field(default_factory=dict)


def load_spec(root_or_files: Path | RevisionFiles, *, trusted_digest: str | None = None,
              bool_style: BoolStyle = BoolStyle.STORE_TRUE, list_style: ListStyle = ListStyle.NARGS,
              memo: Path | None = None) -> PipelineSpec:
    """Read pipeline.yaml from a project root (the workspace) or any `RevisionFiles`; empty when absent.

    `trusted_digest` is the digest of a text validated before: the schema check is skipped for it,
    as for any text `memo` (the project's `.pipe/tmp`, see core.schema; by default the workspace's)
    remembers as valid: give it when reading many revisions.
    `bool_style` / `list_style` are DVC's `parsing.bool` / `parsing.list` for `${dict}` in `cmd`.

    Raises:
        SpecError: the file is invalid; the message names the file (and revision), line, stage and key.
    """
    files = WorkspaceFiles(root_or_files) if isinstance(root_or_files, Path) else root_or_files
    text = files.read_text(PIPELINE_FILE)
    if text is None:
        return PipelineSpec()
    return parse_spec(text, files=files, trusted_digest=trusted_digest, bool_style=bool_style, list_style=list_style,
                      memo=memo)


def parse_spec(text: str, *, files: RevisionFiles | None = None, root: Path | None = None,
               trusted_digest: str | None = None, bool_style: BoolStyle = BoolStyle.STORE_TRUE,
               list_style: ListStyle = ListStyle.NARGS, memo: Path | None = None) -> PipelineSpec:
    """Parse pipeline.yaml text; params.yaml and `vars` files are read from `files`.

    `root` (a workspace directory) is the older spelling of `files=WorkspaceFiles(root)`.

    Raises:
        SpecError: as `load_spec`.
    """
    if files is None:
        assert root is not None, "parse_spec needs files (or root)"
        files = WorkspaceFiles(root)
    digest = hash_bytes(text.encode("utf-8"))
    raw = parse_yaml(text, source=files.describe(PIPELINE_FILE))
    if raw is None:
        return PipelineSpec(digest=digest)
    at = "" if files.rev is None else f" at '{files.label}'"
    memo = memo or memo_of(files)
    if digest != trusted_digest and not is_known_valid(PIPELINE_SCHEMA, text, memo=memo):
        validate(raw, text=text, source=PIPELINE_FILE, at=at)
        remember_valid(PIPELINE_SCHEMA, text, memo=memo)
    builder = _Builder(files, text, bool_style=bool_style, list_style=list_style)
    stages = builder.build(raw)
    top = builder.top_level(raw)
    return PipelineSpec(stages, digest, *top)


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


class _Builder:
    """Turns validated raw stages into StageSpecs; knows the text for error locations."""

    def __init__(self, files: RevisionFiles, text: str, *, bool_style: BoolStyle, list_style: ListStyle) -> None:
        self.files = files
        self.text = text
        self.bool_style = bool_style
        self.list_style = list_style

    def fail(self, path: list[str | int], message: str, *, hint: str | None = None,
             kind: type[SpecError] = SpecError) -> SpecError:
        line = locate(self.text, path)
        at = f"{PIPELINE_FILE}:{line}" if line else PIPELINE_FILE
        if self.files.rev is not None:
            at += f" at '{self.files.label}'"
        return kind(f"{at}: {message}", hint=hint)

    def top_level(self, raw: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[PlotSpec, ...],
                                                          Mapping[str, ArtifactSpec]]:
        """`metrics`, `plots` and `artifacts`, with errors located in the file."""
        def norm(path: str, what: str) -> str:
            return norm_path("", path, what=what)

        parsed: list[Any] = []
        for key, parse in (("metrics", parse_metrics_paths), ("plots", parse_plots), ("artifacts", parse_artifacts)):
            try:
                parsed.append(parse(raw.get(key), norm))
            except SpecError as exc:
                raise self.fail([key], exc.message, hint=exc.hint, kind=type(exc)) from None
        return parsed[0], parsed[1], parsed[2]

    def build(self, raw: Mapping[str, Any]) -> dict[str, StageSpec]:
        context = self._default_context()
        context = self._load_vars(raw.get("vars") or [], wdir="", ctx=context, prefix="", at=["vars"])
        stages: dict[str, StageSpec] = {}
        for name, body in (raw.get("stages") or {}).items():
            for full_name, stage_body, ctx in self._expand(str(name), body, context):
                if full_name in stages:
                    raise self.fail(["stages", name], f"stage '{full_name}' is defined twice")
                try:
                    stages[full_name] = self._stage(full_name, str(name), stage_body, ctx)
                except SpecError as exc:
                    if exc.message.startswith(PIPELINE_FILE):
                        raise  # located already (a stage's vars)
                    raise self.fail(["stages", name], exc.message, hint=exc.hint) from None
        return stages

    def _default_context(self) -> Context:
        # Read, not tested with is_file: a params.yaml kept as a link at a git revision is an error there.
        text = self.files.read_text(PARAMS_FILE)
        if text is None:
            return Context()
        data = parse_params(text, suffix=".yaml", source=self.files.describe(PARAMS_FILE))
        return Context().merged(data, label=PARAMS_FILE, source=PARAMS_FILE).imported(PARAMS_FILE, None)

    def _load_vars(self, items: list[Any], *, wdir: str, ctx: Context, prefix: str,
                   at: list[str | int]) -> Context:
        """DVC's `vars`: files (`file.yaml`, `file.yaml:a,b`) and inline mappings, merged deeply in order."""
        if _has_template(items):
            raise self.fail(at, f"'{prefix}vars': interpolating is not allowed")
        for index, item in enumerate(items):
            try:
                if isinstance(item, Mapping):
                    ctx = ctx.merged(item, label=f"{prefix}vars[{index}]")
                else:
                    ctx = self._load_vars_file(str(item), wdir=wdir, ctx=ctx)
            except SpecError as exc:
                stage = f"stage '{prefix[:-1]}': " if prefix else ""
                raise self.fail([*at, index], stage + exc.message, hint=exc.hint) from None
        return ctx

    def _load_vars_file(self, item: str, *, wdir: str, ctx: Context) -> Context:
        file, _, keys = item.partition(":")
        rel = norm_path(wdir, file, what="vars")
        wanted = tuple(k.strip() for k in keys.split(",") if k.strip()) or None
        if rel in ctx.imports:
            loaded = ctx.imports[rel]
            if wanted is None and loaded is None:
                return ctx  # the same whole file twice is allowed (DVC)
            if loaded is None:
                raise SpecError(f"vars: cannot partially load '{item}' as it's already loaded")
            if wanted is None or set(wanted) & set(loaded):
                raise SpecError(f"vars: cannot load '{item}' as it's partially loaded already")
        data = read_params(self.files, rel)
        if wanted is not None:
            missing = [k for k in wanted if k not in data]
            if missing:
                raise SpecError(f"vars: could not find '{missing[0]}' in '{rel}'")
            data = {k: data[k] for k in wanted}
        return ctx.merged(data, label=rel, source=rel).imported(rel, wanted)

    def _expand(self, name: str, body: Mapping[str, Any], ctx: Context) -> Iterator[tuple[str, Any, Context]]:
        where = f"stage '{name}'"
        if "do" in body and "foreach" not in body:
            raise self.fail(["stages", name, "do"], f"{where}: 'do' needs 'foreach'")
        if "foreach" in body:
            if "do" not in body:
                raise self.fail(["stages", name, "foreach"], f"{where}: 'foreach' needs 'do'",
                                hint="put the stage's fields under 'do:'")
            extra = sorted(set(body) - {"foreach", "do", "vars"})
            if extra:
                raise self.fail(["stages", name, extra[0]], f"{where}: '{extra[0]}' belongs under 'do'")
            # `vars` beside `foreach` (pipe also accepts it there) serve every item.
            ctx = self._load_vars(body.get("vars") or [], wdir="", ctx=ctx, prefix=f"{name}.",
                                  at=["stages", name, "vars"])
            at: list[str | int] = ["stages", name, "foreach"]
            items = self._resolve(Resolver(ctx, where=where), body["foreach"], at)
            base = self._origin(ctx, body["foreach"])
            for suffix, names, sub in self._guard(expand_foreach, items, where, at):
                origins: dict[tuple[str, ...], Origin] = {("item",): Origin(f"{name}.foreach", base.source, (*base.key, *sub))} if base else {}
                yield f"{name}@{suffix}", body["do"], ctx.with_names(names, origins)
        elif "matrix" in body:
            at = ["stages", name, "matrix"]
            matrix = self._resolve(Resolver(ctx, where=where), body["matrix"], at)
            bases = {axis: self._origin(ctx, raw) for axis, raw in body["matrix"].items()}
            rest = {k: v for k, v in body.items() if k != "matrix"}
            for suffix, names, indexes in self._guard(expand_matrix, matrix, where, at):
                axes: dict[tuple[str, ...], Origin] = {
                    ("item", str(axis)): Origin(f"{name}.matrix", base.source, (*base.key, str(i)))
                    for (axis, base), i in zip(bases.items(), indexes, strict=True) if base is not None
                }
                yield f"{name}@{suffix}", rest, ctx.with_names(names, axes)
        else:
            yield name, body, ctx

    def _origin(self, ctx: Context, raw: Any) -> Origin | None:
        """The params-file origin of a `${name}` value (so its items track their own keys), if any."""
        whole = _WHOLE.fullmatch(raw) if isinstance(raw, str) else None
        if whole is None:
            return None
        try:
            found = ctx.origin_of(parse_expr(whole.group(1), where=""))
        except SpecError:
            return None
        if found is None or found[0].source is None:
            return None
        origin, rest = found
        return Origin(origin.label, origin.source, (*origin.key, *rest))

    def _guard(self, fn: Any, value: Any, where: str, at: list[str | int]) -> list[Any]:
        try:
            return list(fn(value, where=where))
        except SpecError as exc:
            raise self.fail(at, exc.message) from None

    def _resolve(self, resolver: Resolver, value: Any, at: list[str | int]) -> Any:
        try:
            return resolver.resolve(value)
        except SpecError as exc:
            raise self.fail(at, exc.message, hint=exc.hint) from None

    def _stage(self, name: str, group: str, body: Mapping[str, Any], ctx: Context) -> StageSpec:
        where = f"stage '{name}'"
        wdir = body.get("wdir")
        if isinstance(wdir, str) and "${" in wdir:
            wdir = Resolver(ctx, where=where).resolve(wdir)
        vars_wdir = norm_path("", str(wdir or "."), what=where, allow_root=True)
        ctx = self._load_vars(body.get("vars") or [], wdir=vars_wdir, ctx=ctx, prefix=f"{name}.",
                              at=["stages", group, "vars"])
        resolver = Resolver(ctx, where=where, bool_style=self.bool_style, list_style=self.list_style)
        data = {k: resolver.resolve(v, key=k) for k, v in body.items() if k not in _TEMPLATE_KEYS}
        return _make_stage(name, group, data, resolver.used)


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_has_template(k) or _has_template(v) for k, v in value.items())
    return isinstance(value, list) and any(_has_template(v) for v in value)


def _make_stage(name: str, group: str, data: Mapping[str, Any], used: set[tuple[str, str]]) -> StageSpec:
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
    )


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
