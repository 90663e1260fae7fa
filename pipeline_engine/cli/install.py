"""pipe install: add (or with --uninstall remove) the git hooks that run pipe checkout, status and push."""

from __future__ import annotations

import os

import click

from pipeline_engine.cli import render
from pipeline_engine.project import Project

__all__ = ["install"]


@click.command()
@click.option("--uninstall", is_flag=True, help="Remove pipe's lines from the hooks (the rest of each hook stays).")
def install(uninstall: bool) -> None:
    """Install git hooks: post-checkout runs 'pipe checkout', pre-commit 'pipe status', pre-push 'pipe push'.

    An existing hook is kept and still runs; installing twice changes nothing.
    """
    from pipeline_engine.ops.install import install as install_hooks

    result = install_hooks(Project.find(), uninstall=uninstall)
    for change in result.changes:
        shown = os.path.relpath(change.path)
        render.info(f"{change.hook}: {change.action.value} ({render.escape(shown)})")
    if not uninstall and result.default_remote is None:
        render.warn("the pre-push hook runs 'pipe push', which needs a default remote: until "
                    "'pipe remote add -d NAME URL', 'git push' stops with its error")
