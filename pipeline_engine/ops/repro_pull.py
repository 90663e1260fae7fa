"""`pipe repro --pull`: fetch the objects a run needs from the default remote instead of rerunning.

Used after `git clone`: the lock says what the outs are, the remote has them, so stages are
restored rather than run; missing deps tracked by `.pipe` pointers are pulled first. A stage
whose inputs differ from the lock is looked up in the remote's run cache (`push --run-cache`):
only the entry of its run key is downloaded, then the objects it names.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from pipeline_engine.core.fsutil import temp_name
from pipeline_engine.core.layout import oid_to_relpath
from pipeline_engine.core.progress import NullProgress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PipeError
from pipeline_engine.index.download import fetch_outs
from pipeline_engine.index.outs import is_cached
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.remotes import open_project_remote
from pipeline_engine.index.runcache import lookup, runs_dir
from pipeline_engine.index.sync import own_remote
from pipeline_engine.ops.checkout import checkout_outs
from pipeline_engine.ops.runcache_transfer import RUNS_SUBDIR, adopt_entry
from pipeline_engine.pipeline.spec import StageSpec
from pipeline_engine.remote.remote import Remote

__all__ = ["Puller"]


class Puller:
    """Fetches missing objects from the default remote, opened once (the caller holds the mutex).

    Raises (on creation):
        RemoteNotConfiguredError: no default remote is set.
    """

    def __init__(self, index: ProjectIndex) -> None:
        project = index.project
        self._project = project
        self._pointers = index.pointers
        self._remote: Remote = open_project_remote(project)
        self._lock = threading.Lock()
        self._runs: Remote | None = None
        self._runs_failed = False
        # Outs whose stage names a `remote:` come from that remote, as in `pipe pull`.
        self._own = index.out_remotes
        self._remotes: dict[str, Remote] = {}

    def fetch(self, records: Iterable[PathRecord]) -> None:
        """Download what the cache lacks of `records`; objects the remote lacks are left missing."""
        missing = [r for r in records
                   if not is_cached(self._project, r.oid)]
        if missing:
            with self._lock:
                groups: dict[str | None, list[PathRecord]] = {}
                for r in missing:
                    groups.setdefault(own_remote(r.path, self._own), []).append(r)
                for name, group in groups.items():
                    fetch_outs(self._project.store, self._remote_named(name), group, progress=NullProgress())

    def _remote_named(self, name: str | None) -> Remote:
        if name is None:
            return self._remote
        if name not in self._remotes:
            self._remotes[name] = open_project_remote(self._project, name)
        return self._remotes[name]

    def fetch_run(self, key: str) -> tuple[PathRecord, ...] | None:
        """The outs of the remote's run-cache entry `key`, adopted into the local run cache.

        None when the remote has no such entry, or it cannot be read or is not a valid entry:
        the stage then runs (DVC, too, only warns when the run cache cannot be pulled).
        """
        project = self._project
        with self._lock:
            if self._runs_failed:
                return None
            tmp = (runs_dir(project) / oid_to_relpath(key)).with_name(temp_name())
            try:
                if self._runs is None:
                    self._runs = open_project_remote(project, subdir=RUNS_SUBDIR)
                tmp.parent.mkdir(parents=True, exist_ok=True)
                if self._runs.get_many([(key, tmp)]):
                    tmp.unlink(missing_ok=True)
                    return None
            except PipeError:
                # Unreachable or misconfigured: do not ask again for every stage.
                self._runs_failed = True
                tmp.unlink(missing_ok=True)
                return None
            if not adopt_entry(project, key, tmp):
                return None
        return lookup(project, key)

    def pull_deps(self, stages: Sequence[StageSpec]) -> list[str]:
        """Fetch and check out pointer-tracked deps missing from the workspace; their paths."""
        root = self._project.root
        wanted = {d for s in stages for d in s.deps if not (root / d).exists()}
        if not wanted:
            return []
        chosen = [p for p in self._pointers
                  if any(p.data_relpath == d or d.startswith(p.data_relpath + "/") for d in wanted)]
        records = [
            PathRecord(p.data_relpath, p.out.oid, p.out.size, p.out.nfiles, p.out.isexec) for p in chosen
        ]
        fetch_outs(self._project.store, self._remote, records, progress=NullProgress())
        complete = [r for r in records if is_cached(self._project, r.oid)]
        checkout_outs(self._project, complete)
        return [r.path for r in complete]
