"""`pipe exp diff [A] [B]`: the metrics and params of two experiments or revisions, compared.

A and B are experiment names (of HEAD's baseline first, as `exp apply` finds them) or any git
revision; A defaults to HEAD and B to the workspace, as in DVC. The comparison is that of
`pipe metrics diff` and `pipe params diff` (`ops/metrics.py`, `ops/params.py`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline_engine.errors import PipeError
from pipeline_engine.ops import metrics as metrics_ops
from pipeline_engine.ops import params as params_ops
from pipeline_engine.ops.exp.show import resolve
from pipeline_engine.ops.exp.worktree import git_root
from pipeline_engine.project import Project
from pipeline_engine.scm.exps import rev_parse

__all__ = ["ExpDiff", "diff"]


@dataclass(frozen=True, slots=True)
class ExpDiff:
    """Both comparisons; their `a_rev`/`b_rev` are the names the user gave."""

    metrics: metrics_ops.MetricsDiff
    params: params_ops.ParamsDiff


def _rev(project: Project, name: str) -> str:
    """The commit of experiment `name`, else `name` itself when git knows it as a revision.

    Raises:
        PipeError: neither an experiment nor a revision.
    """
    try:
        return resolve(project, name)[1]
    except PipeError:
        if rev_parse(git_root(project), name) is not None:
            return name
        raise


def diff(project: Project, a: str | None = None, b: str | None = None, *, all: bool = False) -> ExpDiff:
    """Compare A (default HEAD) with B (default: the workspace).

    Raises:
        PipeError: a name is neither an experiment nor a revision.
        SpecError: a params file or pipeline.yaml is invalid on either side.
    """
    a_rev = _rev(project, a) if a else "HEAD"
    b_rev = _rev(project, b) if b and b != "workspace" else None
    m = metrics_ops.diff(project, a_rev, b_rev, all=all)
    p = params_ops.diff(project, a_rev, b_rev, all=all)
    a_label, b_label = a or "HEAD", b or "workspace"
    return ExpDiff(dataclasses.replace(m, a_rev=a_label, b_rev=b_label),
                   dataclasses.replace(p, a_rev=a_label, b_rev=b_label))
