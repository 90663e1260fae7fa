"""`pipe gc`: delete cache objects that the chosen scope is proved not to use.

gc deletes an object only when every file that could name it was read: the pointers and the lock
of the workspace and of every git revision the scope covers (DVC's `-a` branches, `-T` tags,
`-A` all commits, `--rev REV -n N`; the workspace always), and the directory manifests those
name. Revisions are chosen by `index.revisions.select_revisions` and read through their
`ProjectIndex` (`index.history.History`: nothing checked out, each distinct file parsed once),
as push and fetch read them; gc keeps every out a lock records, declared in pipeline.yaml or not.
One unreadable file, or a manifest missing from the cache, stops gc before it deletes anything
(`skip_failed` proceeds and reports them); so does an unknown `--rev`. A cache shared through
`cache.dir` keeps a registration per project (`project.cache_users`); gc refuses while a project
it was not given still uses the cache.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_engine.cache.manifests import tree_of
from pipeline_engine.cache.pointer import read_pointer
from pipeline_engine.config import CONFIG_FILE
from pipeline_engine.core.hashing import Oid, is_dir_oid
from pipeline_engine.core.layout import objects_dir
from pipeline_engine.core.progress import NullProgress
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError, LockedError, PipeError, ScmError
from pipeline_engine.index.history import History
from pipeline_engine.index.pointers import pointer_files
from pipeline_engine.index.revisions import Revision, Scope, select_revisions
from pipeline_engine.pipeline.lock import LOCK_FILE, read_lock
from pipeline_engine.project import CONTROL_DIR, Project, cache_users

if TYPE_CHECKING:
    from pipeline_engine.ops.cloud import RemoteGcResult
    from pipeline_engine.remote.remote import Remote

__all__ = ["GcOptions", "GcResult", "Unreadable", "UsedObjects", "collect_used", "gc"]

_SHOWN = 20


@dataclass(frozen=True, slots=True)
class GcOptions:
    """What to keep (`workspace`, DVC's revision flags, other `projects`), whether to clean a remote too, `dry`.

    The workspace is always kept; `workspace` alone keeps only it. `all_branches`, `all_tags`,
    `all_commits` and `revs` (with `num`: each rev and its `num - 1` first ancestors) keep what those
    git revisions use too. `skip_failed` deletes even when some files could not be read (what they
    name is then not kept).
    """

    workspace: bool = False
    all_commits: bool = False
    all_branches: bool = False
    all_tags: bool = False
    revs: tuple[str, ...] = ()
    num: int | None = None
    all_experiments: bool = False
    cloud: bool = False
    remote: str | None = None
    dry: bool = False
    skip_failed: bool = False
    projects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A file gc needed and could not read: where (workspace or commit), the file, and why."""

    where: str
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.file}: {self.reason}"


@dataclass(frozen=True, slots=True)
class UsedObjects:
    """The oids the scope uses (directories expanded into their files), and what could not be read."""

    oids: frozenset[str]
    unreadable: tuple[Unreadable, ...] = ()


@dataclass(frozen=True, slots=True)
class GcResult:
    """Objects removed (or that would be, with `dry`), their total size, objects kept; `cloud` for the remote."""

    removed: tuple[Oid, ...]
    bytes: int
    kept: int
    dry: bool
    cloud: RemoteGcResult | None = None
    skipped: tuple[Unreadable, ...] = ()


def scope_of(options: GcOptions) -> Scope:
    """The revisions `options` keep, as the `Scope` every command reads revisions through (the workspace included).

    Raises:
        PipeError: no scope was chosen, or `num` without `revs`.
    """
    scope = Scope(workspace=True, all_branches=options.all_branches, all_tags=options.all_tags,
                  all_commits=options.all_commits, revs=options.revs, num=options.num or 1,
                  all_experiments=options.all_experiments)
    if not (options.workspace or not scope.is_workspace_only):
        raise PipeError(
            "choose what to keep: '--workspace' (this checkout), '--all-branches', '--all-tags', "
            "'--all-commits' (every git commit), '--all-experiments' or '--rev REV'",
            hint="run 'pipe gc --workspace --dry' to see what would be removed",
        )
    if options.num is not None and not options.revs:
        raise PipeError("'--num' can only be used with '--rev'", hint="e.g. 'pipe gc --rev main -n 5'")
    return scope


def gc(project: Project, options: GcOptions) -> GcResult:
    """Remove the objects the scope does not use from the cache and, with `cloud`, from the remote.

    The scope is the workspace, plus the git revisions the options name (`scope_of`), plus the
    `projects` given (at the same revisions); gc never guesses it. Nothing is deleted unless every
    file naming objects was read.

    Raises:
        PipeError: no scope was chosen.
        ScmError: a `--rev` names no commit, or the history cannot be read (nothing was deleted).
        CacheError: a file of the scope could not be read (without `skip_failed`), or another
            project uses this cache and was not given in `projects`.
        RemoteError: with `cloud`, the remote cannot be listed or changed.
        LockedError: an experiment is running (its outs are in the cache but in no ref yet).
    """
    scope = scope_of(options)
    with contextlib.ExitStack() as stack:
        stack.enter_context(project.mutex("pipe gc", sweep=True))
        if not options.dry:
            _refuse_while_experiments_run(project, stack)
        others = _other_projects(project, options)
        for other in others:  # none of them may add objects while gc decides
            stack.enter_context(other.mutex("pipe gc (from another project sharing the cache)"))
        rem = None
        if options.cloud:
            from pipeline_engine.index.remotes import open_project_remote

            rem = open_project_remote(project, options.remote)
        used = collect_used(project, scope=scope, others=others, rem=rem)
        if used.unreadable and not options.skip_failed:
            raise _unreadable_error(used.unreadable)
        cloud = None
        if rem is not None:
            from pipeline_engine.ops.cloud import gc_remote

            cloud = gc_remote(rem, used.oids, dry=options.dry)
        removed: list[Oid] = []
        size = kept = 0
        for oid in project.store.iter_oids():  # sorted already, one fan-out listing at a time
            if oid in used.oids:
                kept += 1
                continue
            with contextlib.suppress(FileNotFoundError):
                size += project.store.size_of(oid)
            removed.append(oid)
        if not options.dry:
            project.store.remove(removed)
        return GcResult(tuple(removed), size, kept, options.dry, cloud, used.unreadable)


def collect_used(
    project: Project, *, all_commits: bool = False, others: Sequence[Project] = (), rem: Remote | None = None,
    scope: Scope | None = None,
) -> UsedObjects:
    """Every oid the workspace and the revisions of `scope` (or, with `all_commits`, every commit) use.

    The same scope is read in `project` and in each of `others`. Directory oids are expanded
    through their manifests; with `rem`, manifests missing from the cache are fetched from it
    first. Files that cannot be read are returned, not skipped silently.

    Raises:
        ScmError: a revision of the scope is unknown, or the history cannot be listed.
    """
    scope = scope or Scope(all_commits=all_commits)
    oids: set[str] = set()
    unreadable: list[Unreadable] = []
    for p in (project, *others):
        label = "" if p is project else f"project '{p.root}', "
        named = _named_in_workspace(p, label, unreadable)
        if not scope.is_workspace_only:
            try:
                named.extend(_named_in_history(p, scope, label, unreadable))
            except ScmError as exc:
                if p is project:
                    raise
                raise ScmError(f"project '{p.root}': {exc}; nothing was deleted", hint=exc.hint) from exc
        oids |= _expand(p, named, rem, unreadable)
    return UsedObjects(frozenset(oids), tuple(unreadable))


# One out named by a file: (where, file, record).
_Named = tuple[str, str, PathRecord]


def _named_in_workspace(project: Project, label: str, unreadable: list[Unreadable]) -> list[_Named]:
    """Outs named by the workspace's pointers (those git does not list too) and its lock file."""
    where = f"{label}workspace"
    named: list[_Named] = []
    for rel in pointer_files(project, every=True):
        try:
            named.append((where, rel, read_pointer(project.root, rel).out))
        except PipeError as exc:
            unreadable.append(Unreadable(where, rel, _reason(exc, rel)))
    try:
        lock = read_lock(project.root)
    except PipeError as exc:
        unreadable.append(Unreadable(where, LOCK_FILE, _reason(exc, LOCK_FILE)))
    else:
        named.extend((where, LOCK_FILE, r) for e in lock.stages.values() for r in e.outs)
    return named


def _named_in_history(project: Project, scope: Scope, label: str, unreadable: list[Unreadable]) -> list[_Named]:
    """Outs named by the pointer files and pipeline.lock of each revision of `scope` (each distinct file parsed once).

    Every out a lock records is kept, whether or not that revision's pipeline.yaml declares it:
    gc never needs pipeline.yaml, so a broken one cannot make it delete what the lock names.
    An unreadable file is reported once, at the first revision that has it.
    """
    revisions = [r for r in select_revisions(project, scope) if not r.is_workspace]
    git = project.git
    if scope.all_commits and not revisions and git is not None and git.revisions(all_commits=False):
        # An empty answer from a repository that has commits: its history was not read.
        raise ScmError(f"cannot list the commits of the git repository at '{git.root}'; nothing was deleted")
    history = History(project)
    history.read_trees(revisions)
    named: list[_Named] = []
    reported: set[int] = set()

    def report(where: str, file: str, exc: PipeError) -> None:
        if id(exc) not in reported:  # the memo hands out the same error for the same file content
            reported.add(id(exc))
            unreadable.append(Unreadable(where, file, _reason(exc, file)))

    for revision in revisions:
        where = f"{label}{_describe(revision)}"
        index = history.index(revision)
        pointers, errors = history.pointers_of(index)
        named.extend((where, p.relpath, p.out) for p in pointers)
        for error in errors:
            report(where, error.relpath, error.error)
        try:
            lock = index.lock
        except PipeError as exc:
            report(where, LOCK_FILE, exc)
        else:
            named.extend((where, LOCK_FILE, r) for e in lock.stages.values() for r in e.outs)
    return named


def _describe(revision: Revision) -> str:
    """`commit 1a2b3c4d`, with the branch or tag (or the rev as given) when the label is not the sha."""
    assert revision.sha is not None
    short = revision.sha[:8]
    return f"commit {short}" if revision.sha.startswith(revision.label) else f"commit {short} ({revision.label})"


def _reason(exc: PipeError, file: str) -> str:
    """The error's message without the file (and revision) it starts with: the report names them."""
    text = str(exc)
    if text.startswith(f"{file} at '") and "': " in text:
        return text[text.index("': ") + 3:]
    return text.removeprefix(f"{file}: ")


def _expand(project: Project, named: Sequence[_Named], rem: Remote | None, unreadable: list[Unreadable]) -> set[str]:
    """The named oids plus the files their manifests list; a manifest that cannot be read is reported once."""
    store = project.store
    outs = [r for _, _, r in named]
    if rem is not None:
        from pipeline_engine.index.download import download_objects

        missing: dict[str, str] = {r.oid: r.path for r in outs if is_dir_oid(r.oid) and not store.exists(r.oid)}
        # Those still missing afterwards are reported below.
        download_objects(store, rem, missing, NullProgress(), f"manifests from {rem.name}")
    # Only oids are needed (not the path of each file, as transfers keep): a set of a million
    # oids, each manifest parsed once and dropped.
    used: set[str] = {r.oid for r in outs}
    bad: dict[str, str] = {}
    for oid in {r.oid for r in outs if is_dir_oid(r.oid)}:
        try:
            used.update(tree_of(store, oid).oids())
        except (CacheError, OSError) as exc:
            bad[oid] = str(exc)
    reported: set[str] = set()
    for where, file, record in named:
        if record.oid in bad and record.oid not in reported:
            reported.add(record.oid)
            also = "" if rem is None else f" (nor on remote '{rem.name}')"
            unreadable.append(
                Unreadable(where, file, f"the file list of '{record.path}' is unknown: {bad[record.oid]}{also}")
            )
    return used


def _other_projects(project: Project, options: GcOptions) -> list[Project]:
    """The `projects` given (their objects are kept too); refuses when another registered user is missing.

    Raises:
        NotAProjectError: a path given is not in a pipe project.
        CacheError: a project that still uses this cache was not given.
    """
    me = os.path.realpath(project.root)
    others: dict[str, Project] = {}
    for given in options.projects:
        other = Project.find(Path(given))
        if os.path.realpath(other.root) != me:
            others.setdefault(os.path.realpath(other.root), other)
    cache = os.path.realpath(objects_dir(project.cache_dir))  # its objects: they, or the cache, may be a link
    unlisted = []
    for root in cache_users(project.cache_dir):
        real = os.path.realpath(root)
        if real == me or real in others or not (root / CONTROL_DIR / CONFIG_FILE).is_file():
            continue
        try:
            theirs = os.path.realpath(objects_dir(Project(root).cache_dir))
        except PipeError:
            theirs = cache  # its config cannot be read: assume it still uses this cache
        if theirs == cache:
            unlisted.append(str(root))
    if unlisted:
        scope = _flags(options)
        named = ", ".join(f"'{u}'" for u in unlisted)
        raise CacheError(
            f"the cache '{project.cache_dir}' is shared with {len(unlisted)} other project(s) ({named}); "
            "gc would delete the data they use; nothing was deleted",
            hint=f"keep their data too: 'pipe gc {scope} {' '.join(f'-p {u}' for u in unlisted)}'",
        )
    return list(others.values())


def _flags(options: GcOptions) -> str:
    """The scope flags of `options` as the user would type them again."""
    flags = [flag for flag, on in (("-w", options.workspace), ("-a", options.all_branches), ("-T", options.all_tags),
                                   ("-A", options.all_commits)) if on]
    flags += [f"--rev {rev}" for rev in options.revs] + ([f"-n {options.num}"] if options.num else [])
    return " ".join(flags)


def _unreadable_error(unreadable: Sequence[Unreadable]) -> CacheError:
    lines = [f"  {u}" for u in unreadable[:_SHOWN]]
    if len(unreadable) > _SHOWN:
        lines.append(f"  ... and {len(unreadable) - _SHOWN} more")
    return CacheError(
        f"gc stopped before deleting anything: {len(unreadable)} file(s) naming cached data could not be "
        "read, so what they use is unknown\n" + "\n".join(lines),
        hint="restore or fix them ('pipe cache verify' then 'pipe fetch' replace corrupt or missing manifests), "
        "or rerun with '--skip-failed' to delete what the readable files do not use",
    )


def _refuse_while_experiments_run(project: Project, stack: contextlib.ExitStack) -> None:
    """An experiment running in its own worktree stores outs no ref names yet: gc must not run beside it.
    None can start until `stack` closes (`start_guard`: gc's check and deletions are one step for them).

    Raises:
        LockedError: an experiment is running (its name and the command that waits for or stops it).
    """
    from pipeline_engine.ops.exp.records import ExpState, entries, start_guard

    stack.enter_context(start_guard(project, "pipe gc", timeout=10))

    running = [e.name for e in entries(project, states=(ExpState.RUNNING,))]
    if running:
        raise LockedError(
            f"experiment(s) {', '.join(repr(n) for n in running)} running: their outputs are in the cache "
            "but in no experiment ref yet, so gc cannot tell they are used",
            hint="wait for them ('pipe queue status'), or stop them with 'pipe queue kill NAME', then run gc again",
        )
