"""`pipe cache verify`: re-hash every object; quarantine the ones whose content does not match."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pipeline_engine.cache.memo import stamp_of
from pipeline_engine.core.progress import NullProgress, Progress
from pipeline_engine.project import Project

__all__ = ["VerifyResult", "verify"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """How many objects were checked, and the corrupt ones with where they were moved."""

    checked: int
    corrupt: tuple[tuple[str, str], ...]


def verify(project: Project, *, progress: Progress | None = None) -> VerifyResult:
    """Check every object; move corrupt ones to `.pipe/cache/quarantine/`."""
    with project.mutex("pipe cache verify"):
        store = project.store
        oids = list(store.iter_oids())
        task = (progress or NullProgress()).task("verifying cache", len(oids), unit="objects")

        def check(oid: str) -> tuple[str, bool]:
            try:
                st = os.stat(store.path_of(oid))
            except FileNotFoundError:
                return oid, True  # removed meanwhile: nothing to verify
            ok = store.is_intact(oid)
            if ok:
                # Checkout links objects without reading them again while their stat is unchanged.
                project.memo.put_verified([(oid, stamp_of(st))])
            task.advance()
            return oid, ok

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(check, oids))
        task.close()
        corrupt = []
        for oid, ok in results:
            if not ok:
                where = store.quarantine(oid)
                shown = where.relative_to(project.root) if where.is_relative_to(project.root) else where
                corrupt.append((oid, shown.as_posix()))
        return VerifyResult(len(oids), tuple(corrupt))
