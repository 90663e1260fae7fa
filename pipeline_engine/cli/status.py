"""pipe status: what differs between the workspace, the pointers and the cache."""

from __future__ import annotations

from typing import Any

import click

from pipeline_engine.cli import render
from pipeline_engine.cli.transfer import recursive_option, scope_of, scope_options
from pipeline_engine.project import Project


@click.command()
@click.argument("targets", nargs=-1)
@recursive_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything is not up to date (for scripts; implied by -q).")
@click.option("-c", "--cloud", is_flag=True, help="Compare the cache with a remote instead of the workspace.")
@click.option("-r", "--remote", help="Remote for --cloud (default: core.remote).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Concurrent requests for --cloud.")
@click.option("--verify", is_flag=True,
              help="With --cloud: look up every object on the remote, not only the manifests that list them.")
@click.option("-v", "--verbose", "names", is_flag=True, help="Name the changed files inside directories.")
@scope_options("With --cloud: compare")
@click.pass_context
def status(ctx: click.Context, targets: tuple[str, ...], as_json: bool, exit_code: bool, cloud: bool,
           remote: str | None, jobs: int | None, verify: bool, names: bool, all_branches: bool, all_tags: bool,
           all_commits: bool, revs: tuple[str, ...], num: int | None) -> None:
    """Show tracked data that changed, is missing, or is not in the cache (with --cloud: on a remote)."""
    from pipeline_engine.ops.status import status as project_status

    if verify and not cloud:
        raise click.UsageError("'--verify' checks a remote: use it with '--cloud'")
    # DVC's `status -q`: nothing printed, the exit code tells whether anything is out of date (scripts)
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    exit_code = exit_code or quiet
    scope = scope_of(all_branches=all_branches, all_tags=all_tags, all_commits=all_commits, revs=revs, num=num)
    if not (cloud or scope.is_workspace_only):
        raise click.UsageError("'-a/-T/-A/--rev' compare revisions with a remote: use them with '--cloud'")
    if cloud:
        from pipeline_engine.cli.transfer import show_cloud_status

        if not show_cloud_status(targets, remote=remote, jobs=jobs, as_json=as_json, verify=verify,
                                 scope=scope, quiet=quiet) and exit_code:
            ctx.exit(1)
        return

    verbose = names or bool(ctx.obj and ctx.obj.get("verbose"))
    result = project_status(Project.find(), targets)
    stages, data = result.stages, result.data
    changed = [d for d in stages.decisions if d.runs]
    dirty = [s for s in data if not s.is_clean]
    problems = list(stages.problems)
    if as_json:
        render.print_json({
            "data": [_data_json(s) for s in data],
            "stages": [_stage_json(d) for d in stages.decisions] + [_problem_json(p) for p in problems],
        })
    elif quiet and not problems:
        pass
    elif not data and not stages.decisions and not problems:
        render.info("no tracked data (track some with 'pipe add PATH')")
    elif not dirty and not changed and not problems:
        render.info(f"up to date: {len(data)} tracked path(s), {len(stages.decisions)} stage(s)")
    else:
        for s in dirty:
            _print_data(s, verbose=verbose)
        for d in changed:
            render.out.print(f"{render.escape(d.stage)}  [yellow]{render.escape(', '.join(r.describe() for r in d.reasons))}[/]")
        for p in problems:
            render.out.print(f"{render.escape(p.stage)}  [red]error: {render.escape(str(p.error))}[/]")
            if p.error.hint:
                render.info(f"[dim]hint:[/] {render.escape(p.error.hint)}")
    if problems:
        ctx.exit(1)  # the status of those stages is unknown: never "up to date" for scripts
    if exit_code and (dirty or changed):
        ctx.exit(1)


def _stage_json(d: Any) -> dict[str, Any]:
    return {"stage": d.stage, "runs": d.runs, "frozen": d.frozen, "reasons": [r.to_dict() for r in d.reasons]}


def _problem_json(p: Any) -> dict[str, Any]:
    return {"stage": p.stage, "error": str(p.error), "hint": p.error.hint}


def _data_json(s: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": s.path, "pointer": s.pointer, "states": [st.value for st in s.states]}
    if s.diff is not None:
        entry["added"], entry["modified"], entry["deleted"] = list(s.diff.added), list(s.diff.modified), list(
            s.diff.deleted
        )
    return entry


def _print_data(s: Any, *, verbose: bool) -> None:
    states = ", ".join(st.value for st in s.states)
    counts = ""
    if s.diff is not None:
        counts = f": {len(s.diff.modified)} modified, {len(s.diff.added)} added, {len(s.diff.deleted)} deleted"
    render.out.print(f"{render.escape(s.path)}  [yellow]{states}[/]{counts}")
    if verbose and s.diff is not None:
        for label, names in (("modified", s.diff.modified), ("added", s.diff.added), ("deleted", s.diff.deleted)):
            for name in names:
                render.out.print(render.escape(f"    {label}: {s.path}/{name}"))
