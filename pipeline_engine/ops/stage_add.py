"""`pipe stage add`: write a new stage into pipeline.yaml, appending text so comments and layout stay."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.errors import SpecError
from pipeline_engine.index.pointers import find_pointers
from pipeline_engine.pipeline.edit import add_stage
from pipeline_engine.pipeline.graph import build_graph
from pipeline_engine.pipeline.params import PARAMS_FILE
from pipeline_engine.pipeline.spec import PIPELINE_FILE, parse_spec
from pipeline_engine.project import Project

__all__ = ["NewStage", "parse_params", "stage_add"]


@dataclass(frozen=True, slots=True)
class NewStage:
    """The fields of `pipe stage add`, as the user gave them."""

    name: str
    cmd: str
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    outs_no_cache: tuple[str, ...] = ()
    outs_persist: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    metrics_no_cache: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    wdir: str | None = None
    env: tuple[str, ...] = ()
    always_changed: bool = False
    desc: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The stage mapping as written to pipeline.yaml (DVC's key order)."""
        body: dict[str, Any] = {}
        if self.desc:
            body["desc"] = self.desc
        body["cmd"] = self.cmd
        if self.wdir:
            body["wdir"] = self.wdir
        if self.deps:
            body["deps"] = list(self.deps)
        if self.params:
            body["params"] = parse_params(self.params)
        if self.env:
            body["env"] = list(self.env)
        outs = [*self.outs, *({p: {"cache": False}} for p in self.outs_no_cache),
                *({p: {"persist": True}} for p in self.outs_persist)]
        if outs:
            body["outs"] = outs
        metrics = [*self.metrics, *({p: {"cache": False}} for p in self.metrics_no_cache)]
        if metrics:
            body["metrics"] = metrics
        if self.plots:
            body["plots"] = list(self.plots)
        if self.always_changed:
            body["always_changed"] = True
        return body


def stage_add(project: Project, stage: NewStage, *, force: bool = False) -> str:
    """Add (with `force`, replace) a stage; the new file is fully checked before it is written.

    Returns the new pipeline.yaml text.

    Raises:
        SpecError: the stage exists (without `force`) or the result would be invalid
            (bad name, overlapping outs, a cycle...); pipeline.yaml is then unchanged.
    """
    with project.mutex(f"pipe stage add -n {stage.name}"):
        path = project.root / PIPELINE_FILE
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        current = parse_spec(text, root=project.root) if text.strip() else None
        if current is not None and any(s.group == stage.name for s in current.stages.values()) and not force:
            raise SpecError(f"stage '{stage.name}' already exists in {PIPELINE_FILE}",
                            hint="use 'pipe stage add -f' to replace it")
        new_text = add_stage(text, stage.name, stage.body(), replace=force)
        spec = parse_spec(new_text, root=project.root)
        build_graph(spec.stages, tracked_paths=[p.data_relpath for p in find_pointers(project)])
        atomic_write(path, new_text)
        return new_text


def parse_params(values: tuple[str, ...]) -> list[str | dict[str, list[str] | None]]:
    """DVC's `-p [file:]key1,key2` values as pipeline.yaml `params` entries, grouped by file.

    `-p a,b` is two keys of params.yaml (written as plain strings); `-p other.yaml:a,b` is
    `{other.yaml: [a, b]}`; `-p other.yaml:` tracks the whole file (`{other.yaml: null}`).
    """
    files: dict[str, list[str]] = {}
    for value in values:
        file, _, text = value.rpartition(":")
        files.setdefault(file or PARAMS_FILE, []).extend(k.strip() for k in text.split(",") if k.strip())
    entries: list[str | dict[str, list[str] | None]] = []
    for file, names in files.items():
        keys = list(dict.fromkeys(names))
        if file == PARAMS_FILE:
            entries.extend(keys or [PARAMS_FILE])
        else:
            entries.append({file: keys or None})
    return entries
