"""pipe stage add: write a stage into pipeline.yaml."""

from __future__ import annotations

import click

from pipeline_engine.cli import SuggestingGroup, render
from pipeline_engine.project import Project


@click.group(cls=SuggestingGroup)
def stage() -> None:
    """Edit the stages of pipeline.yaml."""


@stage.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-n", "--name", required=True, help="Stage name.")
@click.option("-d", "--deps", multiple=True, help="A path the command reads.")
@click.option("-o", "--outs", multiple=True, help="A path the command writes (cached).")
@click.option("-O", "--outs-no-cache", multiple=True, help="An out that is not cached.")
@click.option("--outs-persist", multiple=True, help="An out that is not deleted before the command runs.")
@click.option("-p", "--params", multiple=True, help="Params keys (`lr,train.epochs`) or `file.yaml:key1,key2`.")
@click.option("-m", "--metrics", multiple=True, help="A metrics file (cached).")
@click.option("-M", "--metrics-no-cache", multiple=True, help="A metrics file that is not cached.")
@click.option("--plots", multiple=True, help="A plots file.")
@click.option("-w", "--wdir", default=None, help="Directory the command runs in.")
@click.option("-e", "--env", multiple=True, help="An environment variable the stage depends on.")
@click.option("--always-changed", is_flag=True, help="Run the stage on every repro.")
@click.option("--desc", default=None, help="A description of the stage.")
@click.option("-f", "--force", is_flag=True, help="Replace a stage with the same name.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def add(
    name: str, deps: tuple[str, ...], outs: tuple[str, ...], outs_no_cache: tuple[str, ...],
    outs_persist: tuple[str, ...], params: tuple[str, ...], metrics: tuple[str, ...],
    metrics_no_cache: tuple[str, ...], plots: tuple[str, ...], wdir: str | None, env: tuple[str, ...],
    always_changed: bool, desc: str | None, force: bool, command: tuple[str, ...],
) -> None:
    """Add a stage running COMMAND to pipeline.yaml (comments and layout are kept)."""
    from pipeline_engine.ops.stage_add import NewStage, stage_add

    new = NewStage(
        name=name, cmd=" ".join(command), deps=deps, outs=outs, outs_no_cache=outs_no_cache,
        outs_persist=outs_persist, params=params, metrics=metrics, metrics_no_cache=metrics_no_cache,
        plots=plots, wdir=wdir, env=env, always_changed=always_changed, desc=desc,
    )
    stage_add(Project.find(), new, force=force)
    render.info(f"added stage '{render.escape(name)}' to pipeline.yaml; run it with 'pipe repro {render.escape(name)}'")
