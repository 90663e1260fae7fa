"""What push and fetch share: the remotes outs go to, the result of a transfer, its failures.

The transfers themselves: `index/upload.py` (push) and `index/download.py` (fetch). A failed
object never stops the others; the caller raises a `RemoteError` listing the failures (path and
oid) once everything else has been transferred (`raise_for_failures`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import RemoteError, RemoteNotConfiguredError
from pipeline_engine.index.objects import Failure
from pipeline_engine.index.remotes import open_project_remote
from pipeline_engine.project import Project
from pipeline_engine.remote.remote import Remote

__all__ = [
    "Failure",
    "TransferResult",
    "named_failures",
    "open_remotes_for",
    "out_remotes",
    "own_remote",
    "raise_for_failures",
]

_SHOWN_FAILURES = 20


@dataclass(frozen=True, slots=True)
class TransferResult:
    """Objects transferred, already present on the receiving side, and failed."""

    remote: str
    url: str
    transferred: int
    present: int
    failed: tuple[Failure, ...] = ()
    bytes: int = 0


def open_remotes_for(
    project: Project, outs: Sequence[PathRecord], remote: str | None, *, jobs: int | None = None,
    own: Mapping[str, str] | None = None,
) -> list[tuple[Remote, list[PathRecord]]]:
    """The remotes `outs` go to or come from, each with its outs (DVC's per-output `remote:`).

    An out of a stage that declares `remote: NAME` uses NAME; the others use `remote`, or the
    default remote when it is None. As in DVC, an explicit `remote` skips the outs that name a
    different one (`pipe push -r backup` sends only what belongs on 'backup' or has no remote).
    Without outs (or when all were skipped), the remote the command would use is still opened (and must exist).

    `own` is out path -> its `remote:` (`ProjectIndex.out_remotes`; read from pipeline.yaml when None).

    Raises:
        RemoteNotConfiguredError: no remote given and no default set for outs without their own,
            or an out names a remote that is not configured (the message names the out).
    """
    if own is None:
        own = out_remotes(project)
    groups: dict[str | None, list[PathRecord]] = {}
    for out in outs:
        name = own_remote(out.path, own)
        if remote is not None and name is not None and name != remote:
            continue
        groups.setdefault(name or remote, []).append(out)
    if not groups:
        groups[remote] = []
    opened = []
    for name, group in sorted(groups.items(), key=lambda item: item[0] or ""):
        try:
            rem = open_project_remote(project, name, jobs=jobs)
        except RemoteNotConfiguredError as exc:
            mine = [o.path for o in group if own_remote(o.path, own) == name]
            if name is None or not mine:
                raise
            raise RemoteNotConfiguredError(
                f"out '{mine[0]}' names remote '{name}' in pipeline.yaml: {exc}", hint=exc.hint
            ) from exc
        opened.append((rem, group))
    return opened


def out_remotes(project: Project) -> Mapping[str, str]:
    """Stage out path -> the remote its `remote:` names in pipeline.yaml (outs without one are absent)."""
    from pipeline_engine.index.project_index import ProjectIndex

    return ProjectIndex(project).out_remotes


def own_remote(path: str, own: Mapping[str, str]) -> str | None:
    """The remote of the out at `path`, or of the out directory holding it (a granular target)."""
    parts = path.split("/")
    for i in range(len(parts), 0, -1):
        name = own.get("/".join(parts[:i]))
        if name is not None:
            return name
    return None


def named_failures(failed: Sequence[tuple[str, str]], paths_of: Callable[[Iterable[str]], Mapping[str, str]],
                   *, missing: AbstractSet[str] = frozenset()) -> list[Failure]:
    """Failures with the workspace path of each object, looked up once for all of them; `missing`: oids the source lacks."""
    if not failed:
        return []
    paths = paths_of(oid for oid, _ in failed)
    return [Failure(paths.get(oid, ""), oid, reason, oid in missing) for oid, reason in failed]


def raise_for_failures(verb: str, result: TransferResult) -> None:
    """Raise one RemoteError listing every failed object (path and oid), with the counts.

    Raises:
        RemoteError: `result` has failures.
    """
    if not result.failed:
        return
    direction = "to" if verb == "push" else "from"
    lines = [f"  {f.path} ({f.oid}): {f.reason}" for f in result.failed[:_SHOWN_FAILURES]]
    if len(result.failed) > _SHOWN_FAILURES:
        lines.append(f"  ... and {len(result.failed) - _SHOWN_FAILURES} more")
    hint = (
        "rerun 'pipe push' to retry; objects missing or corrupt in the cache "
        "must be fetched or added again first"
        if verb == "push"
        else "rerun to retry; a missing or corrupt object must be pushed again from a clone that has it"
    )
    raise RemoteError(
        f"{verb} {direction} remote '{result.remote}' ({result.url}): {len(result.failed)} object(s) failed "
        f"({result.transferred} transferred, {result.present} already present)\n" + "\n".join(lines),
        hint=hint,
    )
