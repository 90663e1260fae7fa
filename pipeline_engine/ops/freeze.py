"""`pipe freeze` / `pipe unfreeze`: set or drop `frozen: true` on stages in pipeline.yaml, keeping its layout."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.errors import SpecError
from pipeline_engine.index.pipeline import load_pipeline
from pipeline_engine.pipeline.edit import set_stage_flag
from pipeline_engine.pipeline.graph import resolve_target
from pipeline_engine.pipeline.spec import PIPELINE_FILE
from pipeline_engine.project import Project

__all__ = ["freeze"]


def freeze(project: Project, targets: Sequence[str], *, frozen: bool) -> list[str]:
    """Freeze (or unfreeze) the stages; a foreach/matrix stage is frozen as a whole.

    Returns the pipeline.yaml stage names changed.

    Raises:
        StageNotFoundError: a target names no stage.
        SpecError: a target is one item of a foreach/matrix stage.
    """
    with project.mutex(f"pipe {'freeze' if frozen else 'unfreeze'} " + " ".join(targets)):
        pipeline = load_pipeline(project)
        groups: list[str] = []
        for target in targets:
            names = resolve_target(pipeline.stages, target)
            group = pipeline.stages[names[0]].group
            if target != group and target.split(":")[-1] != group:
                raise SpecError(
                    f"'{target}' is one item of '{group}'; items of a foreach/matrix stage are frozen together",
                    hint=f"run 'pipe {'freeze' if frozen else 'unfreeze'} {group}'",
                )
            groups.append(group)
        path = project.root / PIPELINE_FILE
        text = path.read_text(encoding="utf-8")
        for group in dict.fromkeys(groups):
            text = set_stage_flag(text, group, "frozen", True if frozen else None)
        atomic_write(path, text)
        return list(dict.fromkeys(groups))
