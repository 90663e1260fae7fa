"""`pipe dag`: the stage graph as ASCII, Graphviz dot, Mermaid or Markdown text."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence

from pipeline_engine.ops.stages import load_pipeline
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
    """A tree from each root down; a node reached again shows `(see above)` instead of its subtree.

    Nodes with several upstreams say which others they wait for, so a diamond stays readable.
    """
    children: dict[str, list[str]] = {n: [] for n in nodes}
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        children[a].append(b)
        parents[b].append(a)
    lines: list[str] = []
    shown: set[str] = set()
    for root in (n for n in nodes if not parents[n]):
        _tree(root, None, "", "", children, parents, shown, lines)
    return "\n".join(lines) + ("\n" if lines else "")


def _tree(
    node: str, parent: str | None, first: str, rest: str, children: Mapping[str, list[str]],
    parents: Mapping[str, list[str]], shown: set[str], lines: list[str],
) -> None:
    others = [p for p in parents[node] if p != parent]
    note = f"  (also after: {', '.join(others)})" if others and parent is not None else ""
    if node in shown:
        lines.append(f"{first}{node} (see above)")
        return
    shown.add(node)
    lines.append(f"{first}{node}{note}")
    kids = children[node]
    for i, kid in enumerate(kids):
        last = i == len(kids) - 1
        _tree(kid, node, rest + ("`-- " if last else "|-- "), rest + ("    " if last else "|   "),
              children, parents, shown, lines)
