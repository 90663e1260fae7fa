"""Run a per-item function over many items in threads, in chunks, keeping the order of results.

File work (create, copy, hash small files) is latency-bound and releases the GIL in the
syscalls, so threads pay off even on two cores; one task per item would instead spend its time
in executor bookkeeping and GIL hand-offs, so each thread gets a contiguous chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["IO_JOBS", "map_chunked"]

T = TypeVar("T")
R = TypeVar("R")

#: Default thread count for file I/O: more than the cores, since threads mostly wait on the disk.
IO_JOBS = 8
# Below this many items a pool costs more than it saves.
_MIN_ITEMS = 64


def map_chunked(fn: Callable[[T], R], items: Sequence[T], *, jobs: int = IO_JOBS) -> list[R]:
    """`[fn(i) for i in items]`, computed by up to `jobs` threads; the first exception propagates."""
    if jobs <= 1 or len(items) < _MIN_ITEMS:
        return [fn(i) for i in items]
    n_chunks = jobs * 4
    size = -(-len(items) // n_chunks)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(jobs) as pool:
        parts = list(pool.map(lambda chunk: [fn(i) for i in chunk], chunks))
    return [r for part in parts for r in part]
