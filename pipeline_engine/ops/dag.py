"""`pipe dag`: the stage graph as ASCII, Graphviz dot, Mermaid or Markdown text."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence

from pipeline_engine.index.pipeline import load_pipeline
from pipeline_engine.pipeline.graph import select, to_networkx
from pipeline_engine.project import Project

__all__ = ["DagFormat", "dag"]


class DagFormat(enum.Enum):
    """Output formats of `pipe dag`."""

    ASCII = "ascii"
    DOT = "dot"
    MERMAID = "mermaid"
    MARKDOWN = "md"


def dag(project: Project, target: str | None = None, *, fmt: DagFormat = DagFormat.ASCII, outs: bool = False) -> str:
    """The pipeline (or `target` and its upstream stages) as text; nodes are stages or, with `outs`, outs.

    Raises:
        StageNotFoundError: the target names no stage.
    """
    pipeline = load_pipeline(project)
    names = select(pipeline.graph, [target] if target else [])
    g = to_networkx(pipeline.graph, outs=outs)
    if outs:
        keep = [o.path for n in names for o in pipeline.stages[n].outs]
    else:
        keep = names
    sub = g.subgraph(keep)
    nodes = [n for n in keep if n in sub]
    edges = sorted(sub.edges(), key=lambda e: (nodes.index(e[0]), nodes.index(e[1])))
    if fmt is DagFormat.DOT:
        return _dot(nodes, edges)
    if fmt is DagFormat.MERMAID:
        return _mermaid(nodes, edges)
    if fmt is DagFormat.MARKDOWN:
        return "```mermaid\n" + _mermaid(nodes, edges) + "```\n"
    return _ascii(nodes, edges)


def _dot(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> str:
    lines = ["strict digraph {"]
    lines += [f"  {json.dumps(n)};" for n in nodes]
    lines += [f"  {json.dumps(a)} -> {json.dumps(b)};" for a, b in edges]
    return "\n".join([*lines, "}"]) + "\n"


def _mermaid(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> str:
    ids = {n: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart TD"]
    lines += [f'  {ids[n]}["{n.replace(chr(34), "#quot;")}"]' for n in nodes]
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in edges]
    return "\n".join(lines) + "\n"


def _ascii(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> str:
    """One line per node, by level: `[level] name  <- its upstream nodes`.

    A node's level is one more than its highest upstream's, so every node of a level can run in
    parallel once the levels above are done. Lines never grow with the depth of the graph, which
    keeps a 200-stage chain as readable as a diamond.
    """
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        parents[b].append(a)
    level: dict[str, int] = {}
    for n in nodes:  # nodes come in topological order
        level[n] = 1 + max((level[p] for p in parents[n]), default=0)
    ordered = sorted(nodes, key=lambda n: (level[n], nodes.index(n)))
    tag_width = len(f"[{max(level.values(), default=1)}]")
    name_width = max((len(n) for n in nodes), default=0)
    lines = []
    for n in ordered:
        tag = f"[{level[n]}]".ljust(tag_width)
        ups = f"  <- {', '.join(parents[n])}" if parents[n] else ""
        lines.append(f"{tag} {n.ljust(name_width) if ups else n}{ups}")
    return "\n".join(lines) + ("\n" if lines else "")
