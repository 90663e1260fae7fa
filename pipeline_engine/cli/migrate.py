"""pipe import-dvc: convert a DVC project in place."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline_engine.cli import render


@click.command("import-dvc")
@click.option("--dry", is_flag=True, help="Print the plan; change nothing.")
@click.option("--remove-dvc", is_flag=True, help="Delete dvc.yaml, dvc.lock, *.dvc and .dvcignore afterwards.")
@click.option("--fetch-from-dvc-remote", is_flag=True,
              help="Read data missing from the workspace from the default DVC remote, not DVC's cache.")
def import_dvc(dry: bool, remove_dvc: bool, fetch_from_dvc_remote: bool) -> None:
    """Convert the DVC project in the current directory to pipe, without running any stage."""
    from pipeline_engine.ops.import_dvc import import_dvc as do

    steps = do(Path.cwd(), dry=dry, remove_dvc=remove_dvc, fetch_from_remote=fetch_from_dvc_remote)
    for step in steps:
        render.out.print(f"{'would ' if dry else ''}{render.escape(step.what)}: {render.escape(render.printable(step.detail))}")
    if not dry:
        render.info("converted; review with 'git status', then 'pipe status' (nothing should be changed)")
