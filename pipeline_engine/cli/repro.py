"""pipe repro | why | dag | commit | freeze | unfreeze: run and inspect the pipeline."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from pipeline_engine.cli import render
from pipeline_engine.project import Project


def _reasons(reasons: Any) -> str:
    return ", ".join(r.describe() for r in reasons)


class _Printer:
    """Prints stage progress; with log files, shows each stage's output under its name when it ends."""

    def __init__(self, *, logs: bool) -> None:
        self._logs = logs
        self._lock = threading.Lock()

    def started(self, stage: str, reasons: Any, log_path: Path | None) -> None:
        with self._lock:
            render.info(f"[bold]running[/] '{escape(stage)}' [dim]({escape(_reasons(reasons))})[/]")

    def finished(self, outcome: Any) -> None:
        with self._lock:
            if outcome.log_path is not None and outcome.log_path.exists():
                text = outcome.log_path.read_text(encoding="utf-8", errors="replace")
                if text:
                    render.err.rule(f"output of '{escape(outcome.stage)}'", align="left", style="dim")
                    render.err.out(text, end="" if text.endswith("\n") else "\n", highlight=False)
            if outcome.outcome.value == "restored":
                render.info(f"restored '{escape(outcome.stage)}' outputs from the cache (command not run)")


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
@click.option("--wait", is_flag=True, help="Wait for another pipe process to finish instead of failing.")
def repro(
    targets: tuple[str, ...], force: bool, dry: bool, downstream: bool, single: bool, keep_going: bool,
    force_downstream: bool, jobs: int | None, no_run_cache: bool, wait: bool,
) -> None:
    """Run the stages whose deps, params, cmd or outs changed, and record them in pipeline.lock."""
    from pipeline_engine.ops.repro import ReproOptions, plan_stages
    from pipeline_engine.ops.repro import repro as run_repro

    options = ReproOptions(
        force=force, force_downstream=force_downstream, downstream=downstream, single=single,
        keep_going=keep_going, jobs=jobs, run_cache=not no_run_cache, wait=wait,
    )
    project = Project.find()
    if dry:
        decisions = [d for d in plan_stages(project, targets, options) if d.runs]
        for d in decisions:
            render.out.print(f"would run '{escape(d.stage)}': {escape(_reasons(d.reasons))}")
        if not decisions:
            render.info("nothing to do: every stage is up to date")
        return
    result = run_repro(project, targets, options, _Printer(logs=(jobs or 2) > 1))
    _summary(result)
    result.raise_for_failure()
