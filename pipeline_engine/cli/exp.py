"""pipe exp run|show|list|apply|branch|remove|clean and pipe queue status|logs|remove: DVC's names and flags."""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any

import click

from pipeline_engine.cli import SuggestingGroup, render
from pipeline_engine.core.redact import mask_url
from pipeline_engine.errors import PipeError
from pipeline_engine.project import Project

__all__ = ["exp", "queue"]


@click.group(cls=SuggestingGroup)
def exp() -> None:
    """Run, compare and share experiments (runs with param overrides, kept as git refs)."""


@exp.command("run")
@click.argument("targets", nargs=-1)
@click.option("-S", "--set-param", "set_params", multiple=True, metavar="[FILE:]KEY=VALUE",
              help="Override a param (+KEY=VALUE adds one, ++KEY=VALUE sets or adds, ~KEY deletes); "
                   "VALUE may sweep: a,b,c | range(start, stop[, step]) | choice(a, b).")
@click.option("-n", "--name", default=None, help="Name of the experiment (NAME-1, NAME-2, ... for a sweep).")
@click.option("--queue", "to_queue", is_flag=True, help="Queue the experiments instead of running them.")
@click.option("--run-all", is_flag=True, help="Run every queued experiment.")
@click.option("--temp", is_flag=True,
              help="Leave the workspace as it is (default: a single experiment's result is applied to it, as in DVC).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, help="With --run-all: experiments at once.")
@click.option("-f", "--force", is_flag=True, help="Replace an experiment of the same name; run stages even if unchanged.")
@click.option("-k", "--keep-going", is_flag=True, help="After a stage fails, go on with stages that do not depend on it.")
@click.option("--no-run-cache", is_flag=True, help="Always run changed stages; do not restore outs from the run cache.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None,
              help="Run stage commands as local processes or as tasks on a Dask cluster (default: executor.type).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="The Dask scheduler (default: executor.scheduler, else a local cluster per experiment).")
def run(targets: tuple[str, ...], set_params: tuple[str, ...], name: str | None, to_queue: bool, run_all: bool,
        temp: bool, jobs: int, force: bool, keep_going: bool, no_run_cache: bool, executor: str | None,
        scheduler: str | None) -> None:
    """Run the pipeline with param overrides in a private worktree and record the result under refs/exps/.

    A single experiment's result is then applied to the workspace (as `pipe exp apply`), unless --temp.
    """
    from pipeline_engine.ops.exp.run import ExpRunOptions
    from pipeline_engine.ops.exp.run_all import run as run_exps
    from pipeline_engine.ops.exp.run_all import run_all as run_queued
    from pipeline_engine.ops.repro import ReproOptions
    from pipeline_engine.pipeline.overrides import parse_sweep

    project = Project.find()
    if scheduler and executor is None:
        executor = "dask"  # as `pipe repro --scheduler`
    repro_options = ReproOptions(force=force, keep_going=keep_going, run_cache=not no_run_cache,
                                 executor=executor, scheduler=scheduler)
    sweeps = [parse_sweep(s) for s in set_params]
    results = []
    if set_params or not run_all or targets or name:
        options = ExpRunOptions(name=name, force=force, queue=to_queue or run_all, repro=repro_options,
                                apply=not temp)
        results = run_exps(project, targets, sweeps, options, None if to_queue else _printer())
        for r in results if to_queue else ():
            render.info(f"queued experiment '{render.escape(r.name)}'" + render.escape(_overrides(r.overrides)))
    if run_all:
        results = run_queued(project, jobs=jobs, options=repro_options, listener=_printer() if jobs == 1 else None)
    failed = [r for r in results if r.state.value == "failed"]
    for r in results:
        if r.state.value == "success":
            render.info(f"experiment '{render.escape(r.name)}' done: {r.ref} ({r.rev[:7] if r.rev else ''})"
                        + render.escape(_overrides(r.overrides)))
            if r.saved is not None:
                _say_saved(r.saved)
        elif r.state.value == "failed":
            render.warn(f"experiment '{render.escape(r.name)}' failed: {render.escape(str(r.error))}")
    if failed:
        raise PipeError(f"{len(failed)} of {len(results)} experiment(s) failed",
                        hint=f"see their logs: pipe queue logs {failed[0].name}")


def _printer() -> Any:
    from pipeline_engine.cli.repro import _Printer

    return _Printer()


def _overrides(overrides: Any) -> str:
    return (" [" + ", ".join(o.text for o in overrides) + "]") if overrides else ""


@exp.command("show")
@click.option("-a", "--all-branches", is_flag=True, help="Experiments of every branch's head.")
@click.option("-A", "--all-commits", is_flag=True, help="Experiments of every commit.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option("--md", "as_md", is_flag=True, help="Print a Markdown table.")
@click.option("--sort-by", default=None, metavar="KEY", help="Sort the experiments by this metric or param.")
@click.option("--sort-order", type=click.Choice(["asc", "desc"]), default="asc", help="Sort order.")
@click.option("--only-changed", is_flag=True, help="Only the columns whose values differ.")
@click.option("--drop", default=None, metavar="REGEX", help="Leave out the columns matching REGEX.")
@click.option("--keep", default=None, metavar="REGEX", help="Keep the columns matching REGEX (over --drop).")
@click.option("--precision", type=click.IntRange(0, 20), default=5, metavar="N", help="Round floats to N digits.")
def show(all_branches: bool, all_commits: bool, as_json: bool, as_csv: bool, as_md: bool, sort_by: str | None,
         sort_order: str, only_changed: bool, drop: str | None, keep: str | None, precision: int) -> None:
    """A table of the baseline and its experiments: name, created, state, every metric and param."""
    from pipeline_engine.ops.exp.show import ShowOptions, table
    from pipeline_engine.ops.exp.show import show as show_exps

    rows = show_exps(Project.find(), all_branches=all_branches, all_commits=all_commits)
    if as_json:
        render.print_json([{"name": r.name, "rev": r.rev, "baseline": r.baseline, "created": r.created,
                            "state": r.state or None, "kind": r.kind, "params": dict(r.params),
                            "metrics": dict(r.metrics), "error": r.error or None} for r in rows])
        return
    options = ShowOptions(sort_by=sort_by, descending=sort_order == "desc", only_changed=only_changed,
                          drop=drop, keep=keep)
    header, body = table(rows, options)
    cells = [[_cell(v, precision, created=i == 2) for i, v in enumerate(row)] for row in body]
    if as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[c.replace("├── ", "") for c in row] for row in cells])
        render.out.file.write(render.printable(buffer.getvalue()))  # names and values come from git
    elif as_md:
        render.out.file.write(render.markdown_table(header, cells))
    else:
        render.out.print(render.rows_table(header, cells))


def _cell(value: Any, precision: int, *, created: bool = False) -> str:
    if value is None:
        return "-"
    if created and isinstance(value, float):
        return datetime.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return str(round(value, precision))
    return str(value)


@exp.command("diff")
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option("--all", "show_all", is_flag=True, help="Show unchanged metrics and params as well.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {metrics: {path: {key: {old, new, diff}}}, params: ...}.")
@click.option("--md", "as_md", is_flag=True, help="Print Markdown tables.")
@click.option("--precision", type=click.IntRange(0, 20), default=5, metavar="N", help="Round floats to N digits.")
def diff(a: str | None, b: str | None, show_all: bool, as_json: bool, as_md: bool, precision: int) -> None:
    """Compare the metrics and params of experiment (or revision) A (default HEAD) with B (default: workspace)."""
    from pipeline_engine.ops.exp.diff import diff as diff_exps

    result = diff_exps(Project.find(), a, b, all=show_all)
    if as_json:
        from pipeline_engine.cli.show import changes_json

        render.print_json({"metrics": changes_json(result.metrics.changes),
                           "params": changes_json(result.params.changes)})
        return
    from pipeline_engine.ops.report import diff_frame

    for title, found, change in (("Metric", result.metrics, True), ("Param", result.params, False)):
        if found.changes:
            frame = diff_frame(found.changes, found.a_rev, found.b_rev, title=title, precision=precision,
                               with_change=change)
            render.frame(frame, markdown=as_md)
    if not result.metrics.changes and not result.params.changes:
        render.info(f"no changes between '{render.escape(result.metrics.a_rev)}' and '{render.escape(result.metrics.b_rev)}'")


@exp.command("list")
@click.option("-A", "--all-commits", is_flag=True, help="Experiments of every baseline.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {baseline: [names]}.")
def list_(all_commits: bool, as_json: bool) -> None:
    """The experiments of HEAD (or of every commit), by baseline."""
    from pipeline_engine.ops.exp.show import list_exps

    found = list_exps(Project.find(), all_commits=all_commits)
    if as_json:
        render.print_json(found)
        return
    for baseline, names in found.items():
        render.out.print(f"{baseline[:7]}:")
        for n in names:
            render.out.print(f"\t{render.escape(n)}")


@exp.command("apply")
@click.argument("name")
def apply(name: str) -> None:
    """Bring the experiment's params, lock and metrics into the workspace, and its outs from the cache."""
    from pipeline_engine.ops.exp.apply import apply as apply_exp

    result = apply_exp(Project.find(), name)
    render.info(f"applied experiment '{render.escape(result.name)}' ({result.rev[:7]}): "
                f"{len(result.written)} file(s) written, {len(result.removed)} removed")
    if result.saved is not None:
        _say_saved(result.saved)


def _say_saved(saved: str) -> None:
    render.info(f"the workspace's changes to those files were saved first ({saved[:7]}, "
                f"refs/exps/apply/stash): git restore --source={saved[:7]} -- FILE")


@exp.command("branch")
@click.argument("name")
@click.argument("branch_name")
def branch(name: str, branch_name: str) -> None:
    """Create a git branch at the experiment's commit."""
    from pipeline_engine.ops.exp.apply import branch as branch_exp

    sha = branch_exp(Project.find(), name, branch_name)
    render.info(f"branch '{render.escape(branch_name)}' created at experiment '{render.escape(name)}' ({sha[:7]})")


@exp.command("remove")
@click.argument("names", nargs=-1)
@click.option("-A", "--all-commits", is_flag=True, help="Remove every recorded experiment.")
@click.option("--queue", "queued", is_flag=True, help="Remove every queued and failed experiment.")
def remove(names: tuple[str, ...], all_commits: bool, queued: bool) -> None:
    """Remove experiments: their refs, or their queue entries."""
    from pipeline_engine.ops.exp.remove import remove as remove_exps

    removed = remove_exps(Project.find(), names, all_commits=all_commits, queued=queued)
    render.info(f"removed {len(removed)} experiment(s)" + (": " + ", ".join(removed) if removed else ""))


@exp.command("save")
@click.option("-n", "--name", default=None, help="Name of the experiment (default: a generated one).")
@click.option("-f", "--force", is_flag=True, help="Replace an experiment of the same name.")
def save(name: str | None, force: bool) -> None:
    """Record the workspace as it is (params, lock, metrics) as an experiment of HEAD; nothing runs."""
    from pipeline_engine.ops.exp.save import save as save_exp

    result = save_exp(Project.find(), name=name, force=force)
    render.info(f"experiment '{render.escape(result.name)}' saved: {result.ref}")


def _share_options(fn: Any) -> Any:
    for option in reversed([
        click.argument("git_remote"),
        click.argument("names", nargs=-1),
        click.option("--no-cache", is_flag=True, help="Only the git refs, not the cached objects."),
        click.option("-r", "--remote", default=None, help="The pipe remote for the objects (default: the default)."),
        click.option("-f", "--force", is_flag=True, help="Replace an experiment of the same name with another commit."),
    ]):
        fn = option(fn)
    return fn


@exp.command("push")
@_share_options
def push(git_remote: str, names: tuple[str, ...], no_cache: bool, remote: str | None, force: bool) -> None:
    """Push experiments (default: those of HEAD) to a git remote, and their objects to the pipe remote."""
    from pipeline_engine.ops.exp.share import push as push_exps

    result = push_exps(Project.find(), git_remote, names, cache=not no_cache, remote=remote, force=force)
    render.info(f"pushed {len(result.names)} experiment(s) to '{render.escape(mask_url(git_remote))}' "
                f"({result.objects} object(s) uploaded): {', '.join(result.names)}")


@exp.command("pull")
@_share_options
def pull(git_remote: str, names: tuple[str, ...], no_cache: bool, remote: str | None, force: bool) -> None:
    """Pull experiments (default: those of HEAD) from a git remote, and their objects from the pipe remote."""
    from pipeline_engine.ops.exp.share import pull as pull_exps

    result = pull_exps(Project.find(), git_remote, names, cache=not no_cache, remote=remote, force=force)
    render.info(f"pulled {len(result.names)} experiment(s) from '{render.escape(mask_url(git_remote))}' "
                f"({result.objects} object(s) downloaded): {', '.join(result.names)}")


@exp.command("clean")
def clean() -> None:
    """Remove worktrees and logs that killed runs left behind."""
    from pipeline_engine.ops.exp.remove import clean as clean_exps

    render.info(f"removed {clean_exps(Project.find())} leftover(s)")


@click.group(cls=SuggestingGroup)
def queue() -> None:
    """The experiment queue (pipe exp run --queue): status, logs, start, kill, remove."""


@queue.command("status")
def status() -> None:
    """Queued, running and failed experiments."""
    from pipeline_engine.ops.exp.records import entries

    rows = [(e.name, e.baseline[:7], datetime.datetime.fromtimestamp(e.created).strftime("%Y-%m-%d %H:%M:%S"),
             e.state.value) for e in entries(Project.find())]
    render.out.print(render.rows_table(["Task", "Baseline", "Created", "Status"], rows))


@queue.command("logs")
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Go on printing while the experiment runs.")
def logs(name: str, follow: bool) -> None:
    """The log of an experiment (what its stages printed, and its error)."""
    from pipeline_engine.ops.exp.worker import follow_log

    for chunk in follow_log(Project.find(), name, follow=follow):
        render.out.file.write(chunk)
        render.out.file.flush()


@queue.command("start")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, help="Experiments at once.")
def start(jobs: int) -> None:
    """Run the queue in the background (a worker that survives closing the terminal)."""
    from pipeline_engine.ops.exp.worker import start_worker

    pid = start_worker(Project.find(), jobs=jobs)
    render.info(f"started a worker (pid {pid}) running {jobs} experiment(s) at once; "
                "follow it with 'pipe queue status' and 'pipe queue logs NAME -f'")


@queue.command("kill")
@click.argument("names", nargs=-1, required=True)
def kill(names: tuple[str, ...]) -> None:
    """Stop running experiments; they are recorded as failed."""
    from pipeline_engine.ops.exp.worker import kill as kill_exp

    project = Project.find()
    for name in names:
        kill_exp(project, name)
        render.info(f"asked experiment '{render.escape(name)}' to stop")


@queue.command("remove")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Remove every queued and failed experiment.")
def queue_remove(names: tuple[str, ...], all_: bool) -> None:
    """Remove experiments from the queue."""
    from pipeline_engine.ops.exp.remove import remove as remove_exps

    removed = remove_exps(Project.find(), names, queued=all_, refs=False)
    render.info(f"removed {len(removed)} experiment(s)")
