"""pipe push | fetch | pull: move cached objects to and from a remote."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pipeline_engine.cli import render
from pipeline_engine.project import Project

if TYPE_CHECKING:
    from pipeline_engine.index.revisions import Scope
    from pipeline_engine.ops.transfer import TransferResult

_F = TypeVar("_F", bound=Callable[..., Any])

_targets = click.argument("targets", nargs=-1)
_remote = click.option("-r", "--remote", help="Remote to use (default: core.remote).")
_jobs = click.option("-j", "--jobs", type=click.IntRange(min=1), help="Concurrent transfers.")
_run_cache = click.option(
    "--run-cache", is_flag=True, help="Also transfer run-cache entries and the outputs they record."
)


def scope_options(verb: str) -> Callable[[_F], _F]:
    """DVC's revision flags: `-a/--all-branches`, `-T/--all-tags`, `-A/--all-commits`, `--rev REV` (repeatable), `-n N`."""
    options = [
        click.option("-a", "--all-branches", is_flag=True, help=f"{verb} what the tip of every git branch uses too."),
        click.option("-T", "--all-tags", is_flag=True, help=f"{verb} what every git tag uses too."),
        click.option("-A", "--all-commits", is_flag=True, help=f"{verb} what every git commit uses too."),
        click.option("--rev", "revs", multiple=True, metavar="REV",
                     help=f"{verb} what git revision REV uses too (repeatable; with -n, its ancestors)."),
        click.option("-n", "--num", type=click.IntRange(min=1), metavar="N",
                     help="With --rev: REV and its N-1 first ancestors."),
    ]

    def decorate(f: _F) -> _F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def recursive_option(f: _F) -> _F:
    """DVC's `-R/--recursive`, accepted so DVC scripts run unchanged: a directory target already
    selects everything tracked at or under it."""
    return click.option("-R", "--recursive", is_flag=True, expose_value=False,
                        help="Accepted for DVC's scripts: a directory target always includes everything under it.")(f)


def scope_of(*, workspace: bool = True, all_branches: bool, all_tags: bool, all_commits: bool,
             revs: tuple[str, ...], num: int | None) -> Scope:
    """The `Scope` of the flags from `scope_options` (the workspace included, as in DVC)."""
    from pipeline_engine.index.revisions import Scope

    if num is not None and not revs:
        raise click.UsageError("'-n/--num' needs '--rev'")
    return Scope(workspace=workspace, all_branches=all_branches, all_tags=all_tags, all_commits=all_commits,
                 revs=revs, num=num or 1)


def _summary(verb: str, result: TransferResult | tuple[TransferResult, ...]) -> None:
    """One line per remote (outs with their own `remote:` make more than one)."""
    for r in result if isinstance(result, tuple) else (result,):
        if not r.remote:  # a pull of imports only, with no remote: they came from their sources
            continue
        render.info(
            f"{verb} '{render.escape(r.remote)}': {r.transferred} transferred ({render.size(r.bytes)}), "
            f"{r.present} already present, {len(r.failed)} failed"
        )


@click.command()
@_targets
@recursive_option
@_remote
@_jobs
@_run_cache
@click.option("--verify", is_flag=True,
              help="Look up every object on the remote (not only the manifests) and upload what is missing.")
@scope_options("Push")
def push(targets: tuple[str, ...], remote: str | None, jobs: int | None, run_cache: bool, verify: bool,
         all_branches: bool, all_tags: bool, all_commits: bool, revs: tuple[str, ...], num: int | None) -> None:
    """Upload the cached objects of TARGETS (all tracked data by default) that the remote lacks."""
    from pipeline_engine.ops.transfer import push as push_objects

    scope = scope_of(all_branches=all_branches, all_tags=all_tags, all_commits=all_commits, revs=revs, num=num)
    project = Project.find()
    result = push_objects(project, targets, remote=remote, jobs=jobs, verify=verify, progress=render.progress(),
                          scope=scope)
    _summary("push to", result)
    if run_cache:
        from pipeline_engine.ops.runcache_transfer import push_runs

        _summary("run cache, push to", push_runs(project, remote=remote, jobs=jobs, progress=render.progress()))


@click.command()
@_targets
@recursive_option
@_remote
@_jobs
@_run_cache
@scope_options("Fetch")
def fetch(targets: tuple[str, ...], remote: str | None, jobs: int | None, run_cache: bool,
          all_branches: bool, all_tags: bool, all_commits: bool, revs: tuple[str, ...], num: int | None) -> None:
    """Download the objects of TARGETS that the cache lacks (the workspace is not changed)."""
    from pipeline_engine.ops.transfer import fetch as fetch_objects

    scope = scope_of(all_branches=all_branches, all_tags=all_tags, all_commits=all_commits, revs=revs, num=num)
    project = Project.find()
    _summary("fetch from", fetch_objects(project, targets, remote=remote, jobs=jobs, progress=render.progress(),
                                         scope=scope))
    _fetch_runs(project, run_cache, remote=remote, jobs=jobs)


def _fetch_runs(project: Project, run_cache: bool, *, remote: str | None, jobs: int | None) -> None:
    if run_cache:
        from pipeline_engine.ops.runcache_transfer import fetch_runs

        _summary("run cache, fetch from", fetch_runs(project, remote=remote, jobs=jobs, progress=render.progress()))


@click.command()
@_targets
@recursive_option
@_remote
@_jobs
@_run_cache
@click.option("-f", "--force", is_flag=True, help="Overwrite workspace changes that are not in the cache.")
@click.option("--allow-missing", is_flag=True, help="Skip objects the remote does not have (a warning, not an error).")
@scope_options("Fetch")
def pull(targets: tuple[str, ...], remote: str | None, jobs: int | None, run_cache: bool, force: bool,
         allow_missing: bool, all_branches: bool, all_tags: bool, all_commits: bool, revs: tuple[str, ...],
         num: int | None) -> None:
    """Fetch the objects of TARGETS, then check them out into the workspace (only the workspace's, with -a/-T/-A/--rev)."""
    from pipeline_engine.ops.transfer import pull as pull_objects

    scope = scope_of(all_branches=all_branches, all_tags=all_tags, all_commits=all_commits, revs=revs, num=num)
    project = Project.find()
    _fetch_runs(project, run_cache, remote=remote, jobs=jobs)
    result = pull_objects(project, targets, remote=remote, jobs=jobs, force=force, allow_missing=allow_missing,
                          progress=render.progress(), scope=scope)
    _summary("fetch from", result.fetched)
    for f in result.skipped:
        render.warn(render.escape(f"skipped '{f.path}': its object '{f.oid}' is not on the remote"))
    written = sum(len(c.written) for c in result.checkouts)
    deleted = sum(len(c.deleted) for c in result.checkouts)
    render.info(
        f"{written} file(s) written, {deleted} deleted" if written or deleted else "workspace already matches"
    )


def show_cloud_status(
    targets: tuple[str, ...], *, remote: str | None, jobs: int | None, as_json: bool, verify: bool = False,
    scope: Scope | None = None, quiet: bool = False,
) -> bool:
    """Print `pipe status --cloud` (with `quiet`, only problems); returns True when everything is in sync (for --exit-code).

    With a revision `scope`, a version of a path that only an older revision needs is labelled with it.
    """
    from pipeline_engine.index.revisions import WORKSPACE
    from pipeline_engine.ops.cloud import cloud_status

    status = cloud_status(Project.find(), targets, remote=remote, jobs=jobs, verify=verify, scope=scope)
    behind = [o for o in status.outs if not o.is_synced]
    for problem in status.problems:  # an unreadable index: its objects show as not pushed below
        render.warn(render.escape(problem))
    if as_json:
        render.print_json(
            {
                "remote": status.remote,
                "cloud": [
                    {
                        "path": o.path,
                        "objects": o.objects,
                        "not_pushed": o.not_pushed,
                        "not_fetched": o.not_fetched,
                        "missing": o.missing,
                        "remote": o.remote,
                        **({"revision": o.revision} if o.revision else {}),
                    }
                    for o in status.outs
                ],
            }
        )
    elif quiet:
        pass
    elif not status.outs:
        render.info("no tracked data (track some with 'pipe add PATH')")
    elif not behind:
        names = sorted({o.remote for o in status.outs} | {status.remote})
        label = "remote" if len(names) == 1 else "remotes"
        render.info(f"in sync with {label} {', '.join(repr(n) for n in names)}: {len(status.outs)} tracked path(s)")
    else:
        for o in behind:
            parts = [
                f"{n} {label}"
                for n, label in (
                    (o.not_pushed, "not pushed"),
                    (o.not_fetched, "not fetched"),
                    (o.missing, "missing everywhere"),
                )
                if n
            ]
            where = f", remote '{o.remote}'" if o.remote != status.remote else ""
            at = f" at '{o.revision}'" if o.revision and o.revision != WORKSPACE else ""
            render.out.print(f"{render.escape(o.path + at)}  [yellow]{', '.join(parts)}[/] "
                             + render.escape(f"(of {o.objects} objects{where})"))
        hints = []
        if any(o.not_pushed for o in behind):
            hints.append("'pipe push --verify' uploads what the remote lacks" if verify
                         else "'pipe push' uploads what the remote lacks")
        if any(o.not_fetched for o in behind):
            hints.append("'pipe fetch' downloads what the cache lacks")
        if hints:
            render.info(f"[dim]{'; '.join(hints)}[/]")
    return not behind
