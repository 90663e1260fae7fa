"""A stage run on a machine without the project's files: deps come from the remote by oid, outs go back to it.

Two halves of one exchange, both here because both need the cache and the remote (the Dask
executor in `runner/` may use neither):

- client side, `RemoteExchange` (the `runner.dask_executor.Exchange` of `pipe repro --executor dask`):
  `ship` makes every dep's objects available on the project's remote before the task is
  submitted. Deps that are not in the cache (code and config files tracked by git) are first
  stored in the project's cache, from the workspace (copied: the workspace is untouched), and
  checked against the oid the decision measured, then pushed with the rest: only objects the
  remote lacks are sent. So a worker needs nothing but the remote. `receive` fetches the outs
  a worker pushed into the project's cache; the client then checks them out and records them.
- worker side, `run_on_worker(spec, job, run_id)` (pickled by reference): fetch the deps'
  objects the worker's own cache lacks, lay them out in a fresh scratch directory (one per
  attempt: a retried task starts clean), run the command in `<scratch>/<wdir>`, hash and
  store the outs, push them, and reply with their records and the log.

Credentials: the worker opens the remote from `RemoteSpec`: the URL and the remote's options as
configured on the client, credentials included, so they travel to the scheduler and workers
inside each task (over Dask's comms: use its TLS on an untrusted network). To keep them off
the wire, leave credentials out of pipe's config and give workers their own (AWS_* variables,
an instance role, ~/.aws/credentials): fsspec picks those up on the worker. The options are
never shown: `RemoteSpec`'s repr leaves them out and the URL is shown redacted.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pipeline_engine.cache.checkout import checkout
from pipeline_engine.cache.link import LinkType
from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.scan import scan
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.workspace import is_cached, save
from pipeline_engine.core.progress import NullProgress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import PathError, PipeError
from pipeline_engine.index.download import fetch_outs
from pipeline_engine.index.remotes import open_project_remote
from pipeline_engine.index.sync import raise_for_failures
from pipeline_engine.index.upload import push_outs
from pipeline_engine.project import Project
from pipeline_engine.remote.backend import backend_for
from pipeline_engine.remote.remote import Remote
from pipeline_engine.runner.dask_worker import WorkerReply, run_stage_command, worker_dir, worker_name
from pipeline_engine.runner.executor import JobResult, StageJob

__all__ = ["RemoteExchange", "RemoteSpec", "run_on_worker"]

# Scratch copies are private: a command may change its deps there without touching any cache.
_SCRATCH_LINKS = (LinkType.REFLINK, LinkType.COPY)


@dataclass(frozen=True, slots=True)
class RemoteSpec:
    """A remote as a worker opens it: name, URL (absolute for a local directory) and options (never shown)."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)


class RemoteExchange:
    """Client side of the exchange through the project's remote (see the module docstring).

    `keep`: stages whose outs stay on the remote (`receive` fetches nothing for them).

    Raises:
        RemoteNotConfiguredError: `remote` is unknown, or None and no default remote is set.
    """

    def __init__(self, project: Project, remote: str | None = None, *, keep: frozenset[str] = frozenset()) -> None:
        self._project = project
        self._keep = keep
        self._remote = open_project_remote(project, remote)
        config = project.config.remotes[self._remote.name]
        url = self._remote.root if backend_for(config.url).local else config.url
        self.spec = RemoteSpec(self._remote.name, url, dict(config.options))

    @property
    def work(self) -> partial[WorkerReply]:
        """`run_on_worker` bound to this remote."""
        return partial(run_on_worker, self.spec)

    def ship(self, job: StageJob) -> None:
        """Cache the deps the cache lacks (from the workspace), then push every dep object the remote lacks.

        Raises:
            PathError: a dep's content changed since the stage was decided.
            RemoteError: an object could not be pushed.
        """
        project = self._project
        for dep in job.deps:
            if is_cached(project.store, dep.oid):
                continue
            scanned = scan(project.root, dep.path, project.memo, store=project.store)
            if scanned.oid != dep.oid:
                raise PathError(f"stage '{job.name}': dep '{dep.path}' changed while the stage waited to run",
                                hint=f"run 'pipe repro {job.name}' again")
            save(project.store, project.root, scanned, link_types=(LinkType.COPY,), memo=project.memo)
        raise_for_failures("push", push_outs(project.store, self._remote, job.deps, progress=NullProgress()))

    def receive(self, job: StageJob, outs: tuple[PathRecord, ...]) -> None:
        """Fetch the objects of `outs` (pushed by a worker) into the project's cache, unless the stage's stay there.

        Raises:
            RemoteError: an object could not be fetched.
        """
        if job.name in self._keep:
            return
        raise_for_failures("fetch", fetch_outs(self._project.store, self._remote, outs, progress=NullProgress()))


def run_on_worker(spec: RemoteSpec, job: StageJob, run_id: str) -> WorkerReply:
    """The worker function: deps from the remote, the command in a scratch copy of the project, outs to the remote.

    A PipeError (a dep missing on the remote, a failed push) is returned in the reply, not
    raised: the client re-raises it with the worker's name.
    """
    home = worker_dir()
    (home / "scratch").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="stage-", dir=home / "scratch"))
    try:
        return _run(spec, job, run_id, ObjectStore(home / "objects"), scratch)
    except PipeError as exc:
        return WorkerReply(JobResult(1), worker=worker_name(), error=str(exc), error_kind=type(exc).__name__,
                           hint=exc.hint)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(spec: RemoteSpec, job: StageJob, run_id: str, store: ObjectStore, scratch: Path) -> WorkerReply:
    remote = _open(spec)
    raise_for_failures("fetch", fetch_outs(store, remote, job.deps, progress=NullProgress()))
    memo = HashMemo(scratch / ".memo")
    try:
        for dep in job.deps:
            checkout(store, scratch, dep.path, dep.oid, memo, link_types=_SCRATCH_LINKS, isexec=dep.isexec)
        for out in job.outs:
            (scratch / out).parent.mkdir(parents=True, exist_ok=True)
        cwd = scratch / job.wdir
        cwd.mkdir(parents=True, exist_ok=True)
        ran = run_stage_command(job, cwd, {**job.env, "PIPE_ROOT": str(scratch)}, run_id)
        if ran.result.returncode != 0 or ran.result.interrupted:
            return ran.reply()
        records = []
        for path in job.outs:
            if (scratch / path).exists():  # else the client names the missing out
                scanned = scan(scratch, path, memo)
                records.append(save(store, scratch, scanned, link_types=(LinkType.COPY,), memo=memo))
        raise_for_failures("push", push_outs(store, remote, records, progress=NullProgress()))
    finally:
        memo.close()
    reply = ran.reply()
    return dataclasses.replace(reply, result=dataclasses.replace(reply.result, outs=tuple(records)))


# One Remote per remote per worker process: opening one (an s3fs filesystem) costs more than a small stage.
_remotes: dict[tuple[str, str, str], Remote] = {}
_remotes_lock = threading.Lock()


def _open(spec: RemoteSpec) -> Remote:
    from pipeline_engine.remote.open import open_remote

    key = (spec.name, spec.url, repr(sorted(spec.options.items())))
    with _remotes_lock:
        remote = _remotes.get(key)
        if remote is None:
            remote = _remotes[key] = open_remote(spec.name, spec.url, spec.options, base_dir=Path("/"))
        return remote
