"""pipe status: what differs between the workspace, the pointers and the cache."""

from __future__ import annotations

from typing import Any

import click

from pipeline_engine.cli import render
from pipeline_engine.project import Project


@click.command()
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything is not up to date (for scripts).")
@click.option("-c", "--cloud", is_flag=True, help="Compare the cache with a remote instead of the workspace.")
@click.option("-r", "--remote", help="Remote for --cloud (default: core.remote).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Concurrent requests for --cloud.")
@click.pass_context
def status(ctx: click.Context, targets: tuple[str, ...], as_json: bool, exit_code: bool, cloud: bool,
           remote: str | None, jobs: int | None) -> None:
    """Show tracked data that changed, is missing, or is not in the cache (with --cloud: on a remote)."""
    from pipeline_engine.ops.status import data_status

    if cloud:
        from pipeline_engine.cli.transfer import show_cloud_status

        if not show_cloud_status(targets, remote=remote, jobs=jobs, as_json=as_json) and exit_code:
            ctx.exit(1)
        return

    verbose = bool(ctx.obj and ctx.obj.get("verbose"))
    project = Project.find()
    data = data_status(project, targets)
    dirty = [s for s in data if not s.is_clean]
    if as_json:
        render.print_json({"data": [_data_json(s) for s in data]})
    elif not data:
        render.info("no tracked data (track some with 'pipe add PATH')")
    elif not dirty:
        render.info(f"up to date: {len(data)} tracked path(s)")
    else:
        for s in dirty:
            _print_data(s, verbose=verbose)
    if exit_code and dirty:
        ctx.exit(1)


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
    render.out.print(f"{s.path}  [yellow]{states}[/]{counts}")
    if verbose and s.diff is not None:
        for label, names in (("modified", s.diff.modified), ("added", s.diff.added), ("deleted", s.diff.deleted)):
            for name in names:
                render.out.print(f"    {label}: {s.path}/{name}")
