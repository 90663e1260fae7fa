"""A project's pipeline: pipeline.yaml parsed into its DAG, pipeline.lock, and the outs the lock records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import SpecError
from pipeline_engine.index.pointers import find_pointers
from pipeline_engine.pipeline.graph import Graph, build_graph
from pipeline_engine.pipeline.interpolate import BoolStyle, ListStyle
from pipeline_engine.pipeline.lock import LockFile, read_lock
from pipeline_engine.pipeline.spec import PIPELINE_FILE, StageSpec, load_spec
from pipeline_engine.project import Project

__all__ = ["Pipeline", "has_pipeline", "load_pipeline", "lock_outs"]

# Digest of the last pipeline.yaml text that passed the schema: an unchanged file skips the check.
_VALID_MARK = "pipeline.valid"


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The parsed pipeline.yaml, its DAG and pipeline.lock."""

    graph: Graph
    lock: LockFile

    @property
    def stages(self) -> Mapping[str, StageSpec]:
        """Stages by name, in file order."""
        return self.graph.stages


def has_pipeline(project: Project) -> bool:
    """True when the project has a pipeline.yaml."""
    return (project.root / PIPELINE_FILE).is_file()


def load_pipeline(project: Project) -> Pipeline:
    """Load pipeline.yaml and pipeline.lock and build the DAG.

    Raises:
        SpecError: there is no pipeline.yaml, or it or pipeline.lock is invalid (CycleError for a cycle).
    """
    if not has_pipeline(project):
        raise SpecError(f"there is no {PIPELINE_FILE} in '{project.root}'",
                        hint="add a stage with 'pipe stage add -n NAME -d DEP -o OUT COMMAND'")
    mark = project.control_dir / "tmp" / _VALID_MARK
    trusted = mark.read_text(encoding="utf-8").strip() if mark.exists() else None
    spec = load_spec(project.root, trusted_digest=trusted, bool_style=BoolStyle(project.config.parsing_bool),
                     list_style=ListStyle(project.config.parsing_list))
    if spec.digest and spec.digest != trusted:
        mark.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(mark, spec.digest, fsync=False)
    tracked = [p.data_relpath for p in find_pointers(project)] if spec.stages else []
    graph = build_graph(spec.stages, tracked_paths=tracked)
    return Pipeline(graph, read_lock(project.root))


def lock_outs(project: Project, targets: Sequence[str] = ()) -> tuple[list[PathRecord], list[str]]:
    """Cached outs recorded in pipeline.lock, and the targets that named no stage or stage out.

    A target selects a stage (or foreach/matrix group) by name, or the outs at or under a path.
    Outs declared `cache: false` are left out: their content is never in the store. So are lock
    entries that pipeline.yaml does not declare as a cached out of that stage: pipeline.lock comes
    through git like everything else, and must not choose on its own what checkout writes.
    """
    lock = read_lock(project.root)
    if not lock.stages:
        return [], list(targets)
    stages = load_spec(project.root).stages if has_pipeline(project) else {}
    declared = {(n, o.path) for n, s in stages.items() for o in s.outs if o.cache}
    records = [(name, r) for name, entry in lock.stages.items() for r in entry.outs if (name, r.path) in declared]
    if not targets:
        return [r for _, r in records], []
    chosen: dict[str, PathRecord] = {}
    rest = []
    for target in targets:
        path = target.rstrip("/")
        hits = [r for name, r in records
                if target in (name, name.partition("@")[0]) or r.path == path or r.path.startswith(path + "/")]
        chosen.update((r.path, r) for r in hits)
        if not hits:
            rest.append(target)
    return list(chosen.values()), rest
