"""A project's pipeline: pipeline.yaml parsed into its DAG, with pipeline.lock (built by `ProjectIndex.pipeline`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline_engine.pipeline.graph import Graph
from pipeline_engine.pipeline.lock import LockFile
from pipeline_engine.pipeline.spec import PIPELINE_FILE, StageSpec
from pipeline_engine.project import Project

__all__ = ["Pipeline", "has_pipeline", "load_pipeline"]


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
    """Load pipeline.yaml and pipeline.lock and build the DAG (for a command that needs nothing else).

    Raises:
        SpecError: there is no pipeline.yaml, or it or pipeline.lock is invalid (CycleError for a cycle).
    """
    from pipeline_engine.index.project_index import ProjectIndex

    return ProjectIndex(project).pipeline
