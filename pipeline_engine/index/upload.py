"""Push: upload the objects of outs the remote lacks, verified as they are read.

Push uploads only what the remote lacks, file objects before the manifest that lists them, so a
remote never holds a directory manifest whose files are missing (packed files count once their
pack's index is uploaded: `Remote.put_many` returns only then). Each object is hashed against its
oid once, as it is copied into a pack or just before a loose upload (`put_many(check=True)`), so a
corrupt one is never sent.
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import is_dir_oid
from pipeline_engine.core.layout import is_valid_oid, oid_to_relpath
from pipeline_engine.core.progress import Progress, ProgressTask
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CorruptObjectError, ObjectNotFoundError, PipeError
from pipeline_engine.index.objects import Failure, plan_objects, present_on_remote
from pipeline_engine.index.sync import TransferResult, named_failures
from pipeline_engine.remote.pack import LocalFile
from pipeline_engine.remote.remote import Remote

__all__ = ["push_outs"]

_CORRUPT_LOCAL = "corrupt in the cache (run 'pipe cache verify'); not uploaded"


def push_outs(
    store: ObjectStore, rem: Remote, outs: Sequence[PathRecord], *, progress: Progress, verify: bool = False
) -> TransferResult:
    """Push `outs` to `rem`: missing file objects first, then the manifests whose files all arrived.

    `verify` looks every object up on the remote (see `present_on_remote`). Objects are streamed
    to the remote (`Remote.put_stream`): nothing is kept per object for the whole push but the
    plan and the oids to send, so a million files cost the plan, not a tuple and a path each.
    """
    vouched: dict[str, int] = {}  # manifest on the remote -> its file count, for the result
    if not verify:
        dirs = {o.oid: o for o in outs if is_dir_oid(o.oid)}
        # A manifest on the remote vouches for its files: its directory is not even expanded, so a
        # no-op push of a million files reads one index and asks one question.
        for oid in dirs.keys() - rem.missing(dirs) if dirs else ():
            vouched[oid] = _file_count(store, dirs[oid])
        outs = [o for o in outs if o.oid not in vouched]
    plan = plan_objects(store, outs, sizes=True)
    failures = list(plan.failures)
    files = plan.files
    on_remote = present_on_remote(rem, plan, verify=verify, manifests=None if verify else ())
    todo: list[str] = []
    claims = array("q")  # the size each of `todo` is recorded with (8 bytes an object)
    for file_oid, claim in zip(files, plan.sizes, strict=True):
        if file_oid not in on_remote:
            todo.append(file_oid)
            claims.append(claim)
    task = progress.task(
        f"push to {rem.name}", len(todo) + sum(1 for d in plan.dirs if d.oid not in on_remote), unit="objects"
    )
    present = len(files) - len(todo)
    sent, size, bad = _upload(store, rem, todo, plan.paths_of, task, claims)
    del todo, claims
    failures.extend(bad)
    unsent = {f.oid for f in bad}
    manifests: dict[str, str] = {}
    for d in plan.dirs:
        if d.oid in on_remote:
            continue
        if unsent and any(oid in unsent for oid in d.files):
            failures.append(
                Failure(d.path, d.oid, "manifest not pushed: some of its files are not on the remote")
            )
        else:
            manifests.setdefault(d.oid, d.path)
    m_sent, m_size, m_bad = _upload(store, rem, list(manifests), lambda _: manifests, task)
    task.close()
    failures.extend(m_bad)
    present += sum(1 for d in plan.dirs if d.oid in on_remote)
    present += len(vouched) + sum(vouched.values())
    return TransferResult(rem.name, rem.url, sent + m_sent, present, tuple(failures), size + m_size)


def _file_count(store: ObjectStore, out: PathRecord) -> int:
    """The files of a directory out (its record's count; the manifest's when the record has none)."""
    if out.nfiles is not None:
        return out.nfiles
    try:
        return len(tree_of(store, out.oid))
    except (PipeError, OSError):
        return 0


def _upload(
    store: ObjectStore, rem: Remote, oids: Sequence[str], paths_of: Callable[[Iterable[str]], Mapping[str, str]],
    task: ProgressTask, claims: Sequence[int] = (),
) -> tuple[int, int, list[Failure]]:
    """Upload `oids`, each checked against its oid as it is read; returns how many were sent, their
    bytes, the failures (named by the workspace paths `paths_of` finds for them).

    Each object is read once: `put_stream(check=True)` hashes a packed object while it copies it
    into the pack and a loose one right before its upload; a corrupt one is never sent. Paths
    and sizes exist only for the objects in flight (a path string per object would cost ~100
    bytes a file); only the failures are named. `claims` (aligned with `oids`, -1 for none) are
    the sizes the records give: an object claimed smaller than the remote's pack threshold is
    not stat-ed (10,000 stats cost ~25 ms), as packing reads at most the claimed bytes and
    checks them against the oid; a wrong claim makes it fail as corrupt, never sends wrong bytes.
    """
    failed: list[tuple[str, str]] = []
    in_flight: dict[str, int] = {}  # oid -> bytes, from its stat until the remote reports it
    root = os.fspath(store.root)
    sent = [0, 0]  # objects, bytes
    lock = threading.Lock()  # `done` runs in the remote's worker threads
    small = rem.packing.threshold

    def items() -> Iterator[tuple[str, LocalFile, int | None]]:
        for i, oid in enumerate(oids):
            if not is_valid_oid(oid):
                failed.append((oid, "not a valid object id"))
                continue
            local = f"{root}/{oid_to_relpath(oid)}"  # a string: 10,000 Path objects cost more than their copies
            size = claims[i] if i < len(claims) else -1
            if not 0 <= size < small:
                try:
                    size = os.stat(local).st_size  # one stat per object: 10,000 of them show
                except FileNotFoundError:
                    failed.append((oid, "not in the cache"))
                    continue
            in_flight[oid] = size
            yield oid, local, size

    def done(oid: str, error: PipeError | None) -> None:
        nbytes = in_flight.pop(oid, 0)
        if error is None:
            with lock:
                sent[0] += 1
                sent[1] += nbytes
        task.advance(nbytes=nbytes if error is None else 0)

    errors = rem.put_stream(items(), on_done=done, check=True)
    for oid, exc in errors.items():
        if isinstance(exc, ObjectNotFoundError) or not os.path.exists(f"{root}/{oid_to_relpath(oid)}"):
            failed.append((oid, "not in the cache"))  # gone since the plan, or never stat-ed (a claimed size)
        else:
            failed.append((oid, _CORRUPT_LOCAL if isinstance(exc, CorruptObjectError) else str(exc)))
    return sent[0], sent[1], named_failures(failed, paths_of)
