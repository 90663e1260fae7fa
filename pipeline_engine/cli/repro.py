"""pipe repro | why | dag | commit | freeze | unfreeze: run and inspect the pipeline."""

from __future__ import annotations

import shlex
import threading
from pathlib import Path
from typing import Any

import click

from pipeline_engine.cli import render
from pipeline_engine.cli.transfer import recursive_option
from pipeline_engine.project import Project


def _reasons(reasons: Any) -> str:
    return ", ".join(r.describe() for r in reasons)


class _Printer:
    """Prints each stage's header and commands (DVC: `Running stage 'x':`, `> cmd`) and streams its output.

    Output lines come from worker threads; each is written whole, under one lock. While a stage is
    the only one running, its lines are shown as they are (its header is right above them); once
    another stage runs alongside it, both stages' lines carry a `stage | ` prefix until they end.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._prefixed: set[str] = set()

    def started(self, stage: str, reasons: Any, log_path: Path | None) -> None:
        with self._lock:
            self._running.add(stage)
            if len(self._running) > 1:
                self._prefixed |= self._running
            render.info(f"[bold]Running stage '{render.escape(stage)}'[/] [dim]({render.escape(_reasons(reasons))})[/]:")

    def command(self, stage: str, cmd: str) -> None:
        with self._lock:
            lines = cmd.rstrip("\n").split("\n")
            shown = "\n".join(["> " + lines[0], *("  " + line for line in lines[1:])])
            render.info(render.escape(self._prefix(stage) + shown))

    def output(self, stage: str, line: str) -> None:
        with self._lock:
            render.err.out(self._prefix(stage) + line, end="", highlight=False)

    def _prefix(self, stage: str) -> str:
        return f"{stage} | " if stage in self._prefixed else ""

    def finished(self, outcome: Any) -> None:
        with self._lock:
            self._running.discard(outcome.stage)
            self._prefixed.discard(outcome.stage)
            if outcome.outcome.value == "restored":
                render.info(f"restored '{render.escape(outcome.stage)}' outputs from the cache (command not run)")

    def leftover(self, stage: str, pid: int, *, wait: bool) -> None:
        what = "waiting for" if wait else "stopping"
        with self._lock:
            render.warn(f"{what} the command of stage '{render.escape(stage)}' (process group {pid}) "
                        "that an earlier, killed pipe left running")


def _summary(result: Any) -> None:
    rows = [
        (s.stage, s.outcome.value, f"{s.seconds:.1f}s" if s.seconds else "", _reasons(s.reasons))
        for s in result.stages if s.outcome.value != "unchanged"
    ]
    if not rows:
        render.info("nothing to do: every stage is up to date")
        return
    render.err.print(render.rows_table(["stage", "result", "time", "why"], rows))
    counts: dict[str, int] = {}
    for s in result.stages:
        counts[s.outcome.value] = counts.get(s.outcome.value, 0) + 1
    render.info(", ".join(f"{n} {k}" for k, n in counts.items()))
    if result.pointers:
        # repro cached changed pointer-tracked deps and rewrote their pointers (as DVC does).
        listed = " ".join(render.escape(shlex.quote(p)) for p in result.pointers)
        render.info(f"updated {len(result.pointers)} pointer file(s) of changed deps; to track them: git add {listed}")


@click.command()
@click.argument("targets", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Run the selected stages even if nothing changed.")
@click.option("--dry", is_flag=True, help="Only print what would run, and why.")
@click.option("--downstream", is_flag=True, help="Run the targets and the stages that depend on them.")
@click.option("-s", "--single-item", "single", is_flag=True, help="Run only the targets, not their upstream stages.")
@click.option("-k", "--keep-going", is_flag=True, help="After a failure, go on with stages that do not depend on it.")
@click.option("--force-downstream", is_flag=True, help="Run every stage below one that ran, even if its deps are equal.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Stages to run at once (default: CPUs).")
@click.option("--no-run-cache", is_flag=True, help="Always run changed stages; do not restore outs from the run cache.")
@click.option("--wait", is_flag=True, help="Wait for another pipe process (and for stage commands a killed pipe "
              "left running) to finish, instead of failing (or stopping those commands).")
@click.option("--pull", is_flag=True, help="Fetch missing deps and cached outs from the default remote.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None,
              help="Run stage commands as local processes or as tasks on a Dask cluster (default: executor.type).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="The Dask scheduler, e.g. tcp://HOST:8786 (default: executor.scheduler, else a local cluster).")
@click.option("--no-checkout", is_flag=True, help="Dask executor: leave the outs of the last stages on the "
              "remote (recorded in pipeline.lock; 'pipe pull' brings them).")
def repro(
    targets: tuple[str, ...], force: bool, dry: bool, downstream: bool, single: bool, keep_going: bool,
    force_downstream: bool, jobs: int | None, no_run_cache: bool, wait: bool, pull: bool,
    executor: str | None, scheduler: str | None, no_checkout: bool,
) -> None:
    """Run the stages whose deps, params, cmd or outs changed, and record them in pipeline.lock."""
    from pipeline_engine.ops.repro import ReproOptions
    from pipeline_engine.ops.repro import repro as run_repro
    from pipeline_engine.ops.stage_status import plan_commands

    options = ReproOptions(
        force=force, force_downstream=force_downstream, downstream=downstream, single=single,
        keep_going=keep_going, jobs=jobs, run_cache=not no_run_cache, wait=wait, pull=pull,
        executor="dask" if scheduler and executor is None else executor, scheduler=scheduler,
        checkout=not no_checkout,
    )
    project = Project.find()
    if dry:
        planned = plan_commands(project, targets, force=force, downstream=downstream, single=single)
        decisions = [(d, cmds) for d, cmds in planned if d.runs]
        for d, cmds in decisions:
            render.out.print(f"would run '{render.escape(d.stage)}': {render.escape(_reasons(d.reasons))}")
            for cmd in cmds:
                render.out.print(render.escape(f"> {cmd}"))
        if not decisions:
            render.info("nothing to do: every stage is up to date")
        return
    result = run_repro(project, targets, options, _Printer())
    ctx = click.get_current_context()
    if not (ctx.obj and ctx.obj.get("quiet")):
        _summary(result)
    result.raise_for_failure()


@click.command()
@click.argument("target")
def why(target: str) -> None:
    """Explain why a stage would run, with old and new values."""
    from pipeline_engine.ops.stage_status import why as explain

    for item in explain(Project.find(), target):
        d = item.decision
        if d.frozen:
            render.out.print(f"'{render.escape(d.stage)}' is frozen: it never runs (unfreeze it with 'pipe unfreeze')")
            continue
        if not d.runs:
            render.out.print(f"'{render.escape(d.stage)}' is up to date: nothing it depends on changed")
            continue
        render.out.print(f"'{render.escape(d.stage)}' would run because:")
        for r in d.reasons:
            render.out.print("  - " + render.escape(r.explain()).replace("\n", "\n    "))
        for up in item.upstream:
            render.out.print(f"  upstream '{render.escape(up.stage)}' runs: {render.escape(_reasons(up.reasons))}")
        if item.restorable:
            render.out.print("  its outs for exactly these inputs are in the run cache: "
                             "'pipe repro' will restore them without running the command")


@click.command()
@click.argument("target", required=False)
@click.option("--dot", "fmt", flag_value="dot", help="Graphviz dot.")
@click.option("--mermaid", "fmt", flag_value="mermaid", help="A Mermaid flowchart.")
@click.option("--md", "fmt", flag_value="md", help="A Mermaid flowchart in a Markdown code block.")
@click.option("--outs", is_flag=True, help="Show outs (files) as nodes instead of stages.")
def dag(target: str | None, fmt: str | None, outs: bool) -> None:
    """Show the stage graph (ASCII by default); with TARGET, only it and its upstream stages."""
    from pipeline_engine.ops.dag import DagFormat
    from pipeline_engine.ops.dag import dag as draw

    text = draw(Project.find(), target, fmt=DagFormat(fmt or "ascii"), outs=outs)
    render.out.file.write(text)


@click.command()
@click.argument("targets", nargs=-1)
@recursive_option
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
def commit(targets: tuple[str, ...], force: bool) -> None:
    """Record the current outs of stages in pipeline.lock, as if the stages had run."""
    from pipeline_engine.index.pipeline import has_pipeline
    from pipeline_engine.ops.commit import changed_stages
    from pipeline_engine.ops.commit import commit as record

    project = Project.find()
    if not targets and not has_pipeline(project):  # DVC's commit of .dvc files: here 'pipe add'
        _nothing_to_commit(project, targets, why="there is no pipeline.yaml")
        return
    if not force:
        changed = changed_stages(project, targets)
        if not changed:
            _nothing_to_commit(project, targets)
            return
        for d in changed:
            render.info(f"'{render.escape(d.stage)}': {render.escape(_reasons(d.reasons))}")
        click.confirm("record the current outs of these stages without running them?", abort=True, err=True)
    names = record(project, targets)
    for name in names:
        render.info(f"committed '{render.escape(name)}'")
    if not names:
        _nothing_to_commit(project, targets)


def _nothing_to_commit(project: Project, targets: tuple[str, ...], *,
                       why: str = "every stage matches pipeline.lock") -> None:
    """Say so, naming the pointer-tracked data that changed (DVC's commit records those too; here 'pipe add' does)."""
    from pipeline_engine.ops.commit import changed_pointers

    render.info(f"nothing to commit: {why}")
    modified = [] if targets else changed_pointers(project)
    if modified:
        render.info(render.escape(f"hint: pointer-tracked data changed ({', '.join(modified)}): "
                                  f"'pipe add {' '.join(shlex.quote(m) for m in modified)}' records it"))


@click.command()
@click.argument("targets", nargs=-1, required=True)
def freeze(targets: tuple[str, ...]) -> None:
    """Mark stages frozen: repro never runs them (it only checks their outs exist)."""
    from pipeline_engine.ops.freeze import freeze as set_frozen

    for name in set_frozen(Project.find(), targets, frozen=True):
        render.info(f"froze '{render.escape(name)}'")


@click.command()
@click.argument("targets", nargs=-1, required=True)
def unfreeze(targets: tuple[str, ...]) -> None:
    """Let frozen stages run again."""
    from pipeline_engine.ops.freeze import freeze as set_frozen

    for name in set_frozen(Project.find(), targets, frozen=False):
        render.info(f"unfroze '{render.escape(name)}'")
