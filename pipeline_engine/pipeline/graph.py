"""The stage DAG: edges from each dep to the stage whose out is, contains or lies inside it.

```
prepare --data/clean--> featurize --features/--> train --model.pkl--> evaluate
```

Building, ordering and selecting use plain dicts (a no-op `pipe repro` must start fast);
`to_networkx()` gives the same graph as a networkx DiGraph for rendering and analysis, and
networkx is imported only there.
"""

from __future__ import annotations

import bisect
import heapq
import posixpath
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline_engine.errors import CycleError, SpecError, StageNotFoundError
from pipeline_engine.pipeline.spec import PIPELINE_FILE, StageSpec
from pipeline_engine.pipeline.validate import suggest

if TYPE_CHECKING:
    import networkx

__all__ = ["Graph", "build_graph", "find_cycle", "select", "stages_producing", "to_networkx"]


@dataclass(frozen=True, slots=True)
class Graph:
    """Stages with their upstream/downstream stage names, in a topological `order`."""

    stages: Mapping[str, StageSpec]
    upstream: Mapping[str, frozenset[str]]
    downstream: Mapping[str, frozenset[str]]
    out_owner: Mapping[str, str]
    order: tuple[str, ...]

    def producers(self, path: str) -> set[str]:
        """Stages whose out is `path`, contains it, or lies inside it."""
        return _owners(path, self.out_owner, sorted(self.out_owner))


def _ancestors(path: str) -> Iterable[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


def _owners(path: str, out_owner: Mapping[str, str], sorted_outs: Sequence[str]) -> set[str]:
    owners = {out_owner[p] for p in (path, *_ancestors(path)) if p in out_owner}
    prefix = path + "/"
    i = bisect.bisect_left(sorted_outs, prefix)
    while i < len(sorted_outs) and sorted_outs[i].startswith(prefix):
        owners.add(out_owner[sorted_outs[i]])
        i += 1
    return owners


def build_graph(stages: Mapping[str, StageSpec], *, tracked_paths: Collection[str] = ()) -> Graph:
    """The DAG of `stages`; `tracked_paths` are data paths tracked by `.pipe` pointers.

    Raises:
        SpecError: two stages share an out, outs overlap, or an out is tracked by a pointer.
        CycleError: the stages depend on each other in a circle (the message lists them).
    """
    out_owner = _index_outs(stages)
    _check_pointers(out_owner, tracked_paths)
    sorted_outs = sorted(out_owner)
    upstream: dict[str, frozenset[str]] = {}
    for name, stage in stages.items():
        owners: set[str] = set()
        for dep in stage.deps:
            found = _owners(dep, out_owner, sorted_outs)
            if name in found:
                raise CycleError(f"{PIPELINE_FILE}: stage '{name}' depends on its own out ('{dep}')")
            owners |= found
        upstream[name] = frozenset(owners)
    downstream: dict[str, set[str]] = {name: set() for name in stages}
    for name, ups in upstream.items():
        for up in ups:
            downstream[up].add(name)
    order = _topological(list(stages), upstream, downstream)
    return Graph(
        stages, upstream, {k: frozenset(v) for k, v in downstream.items()}, out_owner, tuple(order)
    )


def _index_outs(stages: Mapping[str, StageSpec]) -> dict[str, str]:
    out_owner: dict[str, str] = {}
    for name, stage in stages.items():
        for out in stage.outs:
            other = out_owner.get(out.path)
            if other is not None:
                who = f"stages '{other}' and '{name}' both" if other != name else f"stage '{name}' twice"
                raise SpecError(f"{PIPELINE_FILE}: {who} declare the out '{out.path}'",
                                hint="each path can be written by one stage only")
            out_owner[out.path] = name
    for path, name in out_owner.items():
        for parent in _ancestors(path):
            if parent in out_owner:
                raise SpecError(
                    f"{PIPELINE_FILE}: out '{path}' of stage '{name}' is inside out '{parent}' "
                    f"of stage '{out_owner[parent]}'",
                    hint="outs must not overlap; declare only the directory or only the files",
                )
    return out_owner


def _check_pointers(out_owner: Mapping[str, str], tracked_paths: Collection[str]) -> None:
    sorted_outs = sorted(out_owner)
    for tracked in sorted(tracked_paths):
        owners = _owners(tracked, out_owner, sorted_outs)
        if owners:
            stage = min(owners)
            raise SpecError(
                f"{PIPELINE_FILE}: '{tracked}' is tracked by '{tracked}.pipe' and is also an out "
                f"of stage '{stage}'",
                hint=f"run 'pipe remove {tracked}.pipe' to let the stage own it",
            )


def _topological(
    names: list[str], upstream: Mapping[str, frozenset[str]], downstream: Mapping[str, set[str]]
) -> list[str]:
    # Kahn's algorithm; among ready stages, the one written first in pipeline.yaml goes first.
    position = {name: i for i, name in enumerate(names)}
    waiting = {name: len(upstream[name]) for name in names}
    ready = [(position[n], n) for n in names if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for down in downstream[name]:
            waiting[down] -= 1
            if waiting[down] == 0:
                heapq.heappush(ready, (position[down], down))
    if len(order) != len(names):
        left = {n for n in names if n not in set(order)}
        cycle = find_cycle({n: upstream[n] & left for n in left})
        raise CycleError(
            f"{PIPELINE_FILE}: stages depend on each other in a cycle: {' -> '.join(cycle)}",
            hint="a stage's out must not be a dep of a stage it depends on",
        )
    return order


def find_cycle(upstream: Mapping[str, Collection[str]]) -> list[str]:
    """One cycle among `upstream` edges, first stage repeated at the end (networkx)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_edges_from((up, name) for name, ups in upstream.items() for up in ups)
    edges = nx.find_cycle(g)
    return [edges[0][0], *(v for _, v in edges)]


def select(graph: Graph, targets: Sequence[str], *, downstream: bool = False, single: bool = False) -> list[str]:
    """The stages a command on `targets` covers, in topological order.

    With no targets: every stage. Otherwise the targets plus their upstream stages (`single`:
    the targets only; `downstream`: the targets plus every stage that depends on them).
    A target is a stage name, `pipeline.yaml:name` (also `:name`, `./pipeline.yaml:name`), a foreach/matrix
    name covering all its items, or `pipeline.yaml` for every stage (DVC's addressing).

    Raises:
        StageNotFoundError: a target names no stage.
    """
    if not targets:
        return list(graph.order)
    chosen = {name for t in targets for name in resolve_target(graph.stages, t)}
    if not single:
        edges = graph.downstream if downstream else graph.upstream
        stack = list(chosen)
        while stack:
            for nxt in edges[stack.pop()]:
                if nxt not in chosen:
                    chosen.add(nxt)
                    stack.append(nxt)
    return [n for n in graph.order if n in chosen]


def resolve_target(stages: Mapping[str, StageSpec], target: str) -> list[str]:
    """Stage names matched by one target: a stage, a foreach/matrix group, or the pipeline file (all stages).

    Raises:
        StageNotFoundError: nothing matches.
    """
    if target in stages:
        return [target]
    file, colon, name = target.partition(":")
    if not colon or (file and posixpath.normpath(file) != PIPELINE_FILE):
        if posixpath.normpath(target) == PIPELINE_FILE:
            return list(stages)  # the whole file, as `dvc repro dvc.yaml`
        name = target
    if name in stages:
        return [name]
    group = [n for n, s in stages.items() if s.group == name]
    if group:
        return group
    raise StageNotFoundError(
        f"stage '{name}' not found in {PIPELINE_FILE}{suggest(name, list(stages))}",
        hint="run 'pipe dag' to list the stages",
    )


def stages_producing(stages: Mapping[str, StageSpec], rel: str) -> list[str]:
    """Stages (file order) declaring an out at project path `rel`, inside it or containing it (DVC's out-path targets)."""
    return [name for name, stage in stages.items()
            if any(rel in ("", o.path) or o.path.startswith(rel + "/") or rel.startswith(o.path + "/")
                   for o in stage.outs)]


def to_networkx(graph: Graph, *, outs: bool = False) -> networkx.DiGraph:
    """The DAG as a networkx DiGraph: stage -> stage, or with `outs`, out path -> out path."""
    import networkx as nx

    g = nx.DiGraph()
    if not outs:
        g.add_nodes_from(graph.order)
        g.add_edges_from((up, name) for name in graph.order for up in sorted(graph.upstream[name]))
        return g
    for name in graph.order:
        stage = graph.stages[name]
        g.add_nodes_from(o.path for o in stage.outs)
        for dep in stage.deps:
            # Only the outs this dep reads (the same path, one containing it, or one inside it),
            # not every out of the stage that produces them.
            for src in sorted(_related_outs(dep, graph.out_owner)):
                for out in stage.outs:
                    g.add_edge(src, out.path)
    return g


def _related_outs(path: str, out_owner: Mapping[str, str]) -> set[str]:
    return {p for p in out_owner if p == path or path.startswith(p + "/") or p.startswith(path + "/")}
