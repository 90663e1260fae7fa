"""pipe ls | get | import | update: data from another pipe repository, by git URL."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from pipeline_engine.cli import render
from pipeline_engine.errors import NotAProjectError
from pipeline_engine.project import Project

_rev = click.option("--rev", help="Git revision of the source (branch, tag, commit; default: its HEAD).")


def _maybe_project() -> Project | None:
    try:
        return Project.find()
    except NotAProjectError:
        return None


@click.command("ls")
@click.argument("url")
@click.argument("path", required=False, default="")
@click.option("-R", "--recursive", is_flag=True, help="List files under directories too.")
@_rev
@click.option("--json", "as_json", is_flag=True, help="Print entries as JSON (path, isout, isdir, isexec, size).")
def ls(url: str, path: str, recursive: bool, rev: str | None, as_json: bool) -> None:
    """List the files of the repository at URL (under PATH): git files, and data pipe tracks there (marked)."""
    from pipeline_engine.ops.ls import ls as list_entries

    entries = list_entries(_maybe_project(), url, path, recursive=recursive, rev=rev)
    if as_json:
        render.print_json([asdict(e) for e in entries])
        return
    for e in entries:
        mark = "out " if e.isout else "    "
        render.out.file.write(f"{mark}{render.printable(e.path)}{'/' if e.isdir else ''}\n")


@click.command()
@click.argument("url")
@click.argument("path")
@click.option("-o", "--out", help="Where to write it (default: PATH's name, in the current directory).")
@_rev
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Concurrent downloads.")
def get(url: str, path: str, out: str | None, rev: str | None, jobs: int | None) -> None:
    """Download PATH (tracked data, or a git file) of the repository at URL; nothing is tracked here."""
    from pipeline_engine.ops.get import get as get_path

    result = get_path(url, path, out=out, rev=rev, jobs=jobs, progress=render.progress())
    kind = "tracked data" if result.tracked else "from git"
    render.info(f"wrote '{render.escape(str(result.out))}' ({result.nfiles} file(s), {kind}, at {result.sha[:8]})")


@click.command("import")
@click.argument("url")
@click.argument("path")
@click.option("-o", "--out", help="Where to put it in this project (default: PATH's name, in the current directory).")
@_rev
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Concurrent downloads.")
def import_(url: str, path: str, out: str | None, rev: str | None, jobs: int | None) -> None:
    """Download tracked PATH of the repository at URL and track it here, recording its source in OUT.pipe."""
    from pipeline_engine.ops.imports import import_path

    result = import_path(Project.find(), url, path, out=Path(out) if out else None, rev=rev, jobs=jobs,
                         progress=render.progress())
    render.info(render.escape(f"imported '{result.path}' at {result.sha[:8]} ({result.pointer}); "
                              f"add it to git: 'git add {result.pointer}'"))


@click.command()
@click.argument("pointers", nargs=-1, required=True)
@_rev
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Concurrent downloads.")
def update(pointers: tuple[str, ...], rev: str | None, jobs: int | None) -> None:
    """Move imports (their OUT.pipe files) to the newest commit of their source revision, or to --rev."""
    from pipeline_engine.ops.imports import update as update_imports

    for r in update_imports(Project.find(), pointers, rev=rev, jobs=jobs, progress=render.progress()):
        render.info(render.escape(f"'{r.path}': {'updated to' if r.changed else 'already at'} {r.sha[:8]}"))
