"""pipeline.yaml -> frozen PipelineSpec: validation, templating, foreach/matrix expansion, paths.

This is the only module that sees the raw YAML of pipeline.yaml; everything after it sees
`StageSpec`s (pipeline.stage, re-exported here) whose paths are project-relative POSIX paths and
whose templates are resolved.
params.yaml and `vars` files are read from the same `RevisionFiles` as the spec itself, so a spec
at a git revision is resolved with that revision's params.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import PIPELINE_FILE
from pipeline_engine.core.revision import RevisionFiles, WorkspaceFiles
from pipeline_engine.core.schema import is_known_valid, memo_of, remember_valid
from pipeline_engine.core.yamlio import parse_yaml, read_document
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
    PlotSpec,
    parse_artifacts,
    parse_metrics_paths,
    parse_params_paths,
    parse_plots,
)
from pipeline_engine.pipeline.params import PARAMS_FILE, parse_params, read_params
from pipeline_engine.pipeline.stage import OutKind, OutSpec, ParamsDep, StageSpec, make_stage, norm_path
from pipeline_engine.pipeline.validate import PIPELINE_SCHEMA, locate, validate

__all__ = [
    "PIPELINE_FILE", "OutKind", "OutSpec", "ParamsDep", "PipelineSpec", "StageSpec",
    "load_spec", "norm_path", "parse_spec",
]

_TEMPLATE_KEYS = ("vars", "foreach", "do", "matrix")
_WHOLE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """Every stage of pipeline.yaml, in file order; `digest` identifies the text that was validated.

    `metrics`, `plots`, `artifacts` and `params` (params files shown whole by `params diff`, tracked by
    no stage) are the top-level keys (pipeline.outputs), templates resolved, paths project-relative.
    """

    stages: Mapping[str, StageSpec] = field(default_factory=dict)
    digest: str = ""
    metrics: tuple[str, ...] = ()
    plots: tuple[PlotSpec, ...] = ()
    artifacts: Mapping[str, ArtifactSpec] = field(default_factory=dict)
    params: tuple[str, ...] = ()


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
    builder = _Builder(files, text, bool_style=bool_style, list_style=list_style)
    # The reporting keys' own checks run before the schema's: they name the entry (`plots: 'roc'`).
    top = builder.top_level(raw) if isinstance(raw, Mapping) else None
    memo = memo or memo_of(files)
    if digest != trusted_digest and not is_known_valid(PIPELINE_SCHEMA, text, memo=memo):
        validate(raw, text=text, source=PIPELINE_FILE, at=at)
        remember_valid(PIPELINE_SCHEMA, text, memo=memo)
    if top is None:  # past the schema only with a trusted digest
        raise SpecError(f"{files.describe(PIPELINE_FILE)}: must be a mapping with 'stages'")
    stages = builder.build(raw)
    return PipelineSpec(stages, digest, *top)


class _Builder:
    """Turns validated raw stages into StageSpecs; knows the text for error locations."""

    def __init__(self, files: RevisionFiles, text: str, *, bool_style: BoolStyle, list_style: ListStyle) -> None:
        self.files = files
        self.text = text
        self.bool_style = bool_style
        self.list_style = list_style
        self._global: Context | None = None

    def fail(self, path: list[str | int], message: str, *, hint: str | None = None,
             kind: type[SpecError] = SpecError) -> SpecError:
        line = locate(self.text, path)
        at = f"{PIPELINE_FILE}:{line}" if line else PIPELINE_FILE
        if self.files.rev is not None:
            at += f" at '{self.files.label}'"
        return kind(f"{at}: {message}", hint=hint)

    def top_level(self, raw: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[PlotSpec, ...],
                                                          Mapping[str, ArtifactSpec], tuple[str, ...]]:
        """`metrics`, `plots`, `artifacts` and `params`, templates resolved (as DVC), errors located in the file."""
        def norm(path: str, what: str) -> str:
            return norm_path("", path, what=what)

        parsed: list[Any] = []
        for key, parse in (("metrics", parse_metrics_paths), ("plots", parse_plots), ("artifacts", parse_artifacts),
                           ("params", parse_params_paths)):
            value = raw.get(key)
            if _has_template(value):
                value = self._resolve(Resolver(self._context(raw), where=f"'{key}'"), value, [key])
            try:
                parsed.append(parse(value, norm))
            except SpecError as exc:
                raise self.fail([key], exc.message, hint=exc.hint, kind=type(exc)) from None
        return parsed[0], parsed[1], parsed[2], parsed[3]

    def build(self, raw: Mapping[str, Any]) -> dict[str, StageSpec]:
        context = self._context(raw)
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

    def _context(self, raw: Mapping[str, Any]) -> Context:
        """params.yaml merged with the top-level `vars`: the names every template sees (read once)."""
        if self._global is None:
            items = raw.get("vars") or []
            # Top-level templates resolve before the schema check: a malformed `vars` is left to it.
            self._global = self._load_vars(items if isinstance(items, list) else [], wdir="",
                                           ctx=self._default_context(), prefix="", at=["vars"])
        return self._global

    def _default_context(self) -> Context:
        # Read, not tested with is_file: a params.yaml kept as a link at a git revision is an error there.
        text = read_document(self.files, PARAMS_FILE)  # its size checked before it is read
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
        return make_stage(name, group, data, resolver.used)


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_has_template(k) or _has_template(v) for k, v in value.items())
    return isinstance(value, list) and any(_has_template(v) for v in value)
