"""`pipe pull`'s checkout of new directories while the fetch runs: one thread places each chunk of
objects the fetch brings (`index/download.py`'s `FetchSink`) while the next chunk downloads.

    fetch thread:   manifests -> plan -> chunk 1 -> chunk 2 -> chunk 3 -> ...
                                  |        |          |          |
    place thread:                stage -> place 1 -> place 2 -> place 3 -> ... -> rename into place

Only a directory out whose path does not exist yet (a fresh clone: the common case) is placed
this way, into a temporary directory beside it (`cache/staging.py`) that is renamed into place
once every file is there; an out whose objects do not all arrive is discarded whole. Everything
else (an out that exists already, a file out, an out nested in another) keeps the order of
`pipe checkout` after the fetch, and so does any out staging gave up on (a placement error is
then met again and reported by that checkout, with its message and exit code).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from pipeline_engine.cache.checkout import CheckoutResult
from pipeline_engine.cache.link import LinkType
from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.staging import OidIndex, StagedDir
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.pathgate import resolve_in_project
from pipeline_engine.core.progress import Progress, ProgressTask
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PipeError
from pipeline_engine.index.objects import ObjectPlan, TreeOids

__all__ = ["PullPlacement"]

# Files placed in one call for objects that were in the cache before the fetch.
_BATCH = 20_000


class PullPlacement:
    """A `FetchSink` placing new directory outs as their objects arrive; a context manager.

    Leaving the `with` block (normally, by an error or Ctrl-C) stops the placing thread and
    removes every temporary directory not renamed into place.
    """

    def __init__(
        self, root: Path, store: ObjectStore, memo: HashMemo, link_types: Sequence[LinkType],
        outs: Sequence[PathRecord], progress: Progress,
    ) -> None:
        self._root = root
        self._store = store
        self._memo = memo
        self._link_types = tuple(link_types)
        self._progress = progress
        self._candidates: dict[str, list[PathRecord]] = {}
        for out in _new_directories(root, outs):
            self._candidates.setdefault(out.oid, []).append(out)
        self._staged: list[tuple[PathRecord, StagedDir, ProgressTask]] = []
        self._index: OidIndex | None = None
        self._published: list[tuple[PathRecord, CheckoutResult]] = []
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []

    def __enter__(self) -> PullPlacement:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)  # the running batch ends first
        self._discard_unpublished()

    # -- FetchSink (called from the fetching thread) ------------------------------------------

    def planned(self, plan: ObjectPlan, absent: Collection[str]) -> None:
        """Stage the new directory outs `plan` holds, and place what the cache has already."""
        trees = {d.oid: d.files.tree for d in plan.dirs if d.oid in self._candidates and isinstance(d.files, TreeOids)}
        if trees:
            self._submit(self._stage, trees, absent)

    def arrived(self, oids: Sequence[str]) -> None:
        """Place the files of staged outs whose objects are among `oids`."""
        if self._candidates or self._staged:
            self._submit(self._place_arrived, oids)

    # -- results (the calling thread) ---------------------------------------------------------

    def finish(self) -> list[tuple[PathRecord, CheckoutResult]]:
        """Wait for the placing to end; the outs renamed into place, with what was written.

        Every other staged out is discarded (its objects did not all arrive, or placing failed):
        the caller checks those out the usual way.
        """
        for future in self._futures:
            future.result()  # a bug in the placing thread surfaces here
        self._futures = []
        for _, staged, _ in self._staged:
            if staged.published:
                staged.record(settle=True)  # so the next status hashes none of them
        self._discard_unpublished()
        return list(self._published)

    def _discard_unpublished(self) -> None:
        for _, staged, task in self._staged:
            if staged.published:
                staged.record()
            else:
                staged.discard()
            task.close()

    # -- the placing thread -------------------------------------------------------------------

    def _submit(self, fn: Callable[..., None], *args: object) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="pipe-place")
        self._futures.append(self._pool.submit(fn, *args))

    def _stage(self, trees: dict[str, Tree], absent: Collection[str]) -> None:
        first = len(self._staged)
        for oid, tree in trees.items():
            for out in self._candidates.pop(oid, []):
                try:
                    staged = StagedDir(self._store, self._memo, self._link_types, self._root, out.path, oid, tree)
                except OSError:
                    continue  # checked out after the fetch instead, where the error is reported
                task = self._progress.task(f"checking out {out.path}", len(staged.tree))
                self._staged.append((out, staged, task))
        if len(self._staged) == first:
            return
        self._index = OidIndex([s.tree for _, s, _ in self._staged])
        for k in range(first, len(self._staged)):
            _, staged, _ = self._staged[k]
            cached = [i for i, oid in enumerate(staged.tree.oids()) if oid not in absent]
            # An empty batch still publishes an empty directory.
            for start in range(0, max(1, len(cached)), _BATCH):
                if self._stop.is_set():
                    return
                self._place(k, cached[start:start + _BATCH], ())

    def _place_arrived(self, oids: Sequence[str]) -> None:
        if self._index is None or self._stop.is_set():
            return
        trusted = frozenset(oids)  # verified as they were written into the store by this fetch
        for k, positions in self._index.find(oids).items():
            if self._stop.is_set():
                return
            self._place(k, positions, trusted)

    def _place(self, k: int, positions: Sequence[int], trusted: Collection[str]) -> None:
        out, staged, task = self._staged[k]
        if staged.published or staged.discarded:
            return
        try:
            staged.place(positions, trusted=trusted, advance=task.advance)
            if staged.is_complete:
                result = staged.publish()
                task.close()
                if result is not None:
                    self._published.append((out, result))
        except (PipeError, OSError):
            # Given up: the checkout after the fetch meets the same error and reports it by path.
            staged.discard()
            task.close()


def _new_directories(root: Path, outs: Sequence[PathRecord]) -> list[PathRecord]:
    """The directory outs whose path does not exist, named once, inside no other out and holding none."""
    counts = Counter(o.path for o in outs)
    tangled = {p for p, n in counts.items() if n > 1}
    for path in counts:
        for above in _ancestors(path):
            if above in counts:
                tangled |= {above, path}
    found = []
    for out in outs:
        if not is_dir_oid(out.oid) or out.path in tangled:
            continue
        try:
            where = resolve_in_project(root, out.path, source=out.path, follow=True)
        except PipeError:
            continue  # the checkout after the fetch reports it
        if not os.path.lexists(where):
            found.append(out)
    return found


def _ancestors(relpath: str) -> Iterator[str]:
    while "/" in relpath:
        relpath = relpath.rpartition("/")[0]
        yield relpath
