"""pipe init | add | checkout | remove | gc | cache verify."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline_engine.cli import SuggestingGroup, render
from pipeline_engine.cli.transfer import recursive_option, scope_options
from pipeline_engine.project import Project

if TYPE_CHECKING:
    from pipeline_engine.ops.cloud import RemoteGcResult
    from pipeline_engine.ops.gc import Unreadable


def _project() -> Project:
    return Project.find()


@click.command()
@click.option("--no-scm", is_flag=True, help="Use pipe without git (no .gitignore handling).")
@click.option("-f", "--force", is_flag=True, help="Reinitialise an existing project (keeps the cache).")
def init(no_scm: bool, force: bool) -> None:
    """Create the .pipe/ control directory in the current directory."""
    project = Project.init(Path.cwd(), scm=not no_scm, force=force)
    render.info(f"initialised pipe project in [bold]{render.escape(str(project.root))}[/]")
    if not no_scm:
        render.info("next: 'pipe add <data>' and 'git add .pipe .gitignore'")


@click.command()
@click.argument("paths", nargs=-1, required=True)
def add(paths: tuple[str, ...]) -> None:
    """Track files or directories: cache them and write <path>.pipe pointers."""
    from pipeline_engine.ops.add import add as add_paths
    from pipeline_engine.ops.add import git_add_command

    project = _project()
    results = add_paths(project, paths, progress=render.progress())
    for r in results:
        files = f", {r.out.nfiles} files" if r.out.nfiles is not None else ""
        render.info(render.escape(f"{r.outcome.value:>9}  {r.relpath} ({render.size(r.out.size)}{files}) -> {r.pointer}"))
    command = git_add_command(project, results)
    if command:
        render.info(f"[dim]to track the changes with git: {render.escape(command)}[/]")


@click.command()
@click.argument("targets", nargs=-1)
@recursive_option
@click.option("-f", "--force", is_flag=True, help="Overwrite changes that are not in the cache; delete extra files.")
@click.option("--relink", is_flag=True, help="Recreate every link even where the content already matches.")
@click.option("--allow-missing", is_flag=True, help="Skip files whose objects are not in the cache (a warning, not an error).")
def checkout(targets: tuple[str, ...], force: bool, relink: bool, allow_missing: bool) -> None:
    """Make tracked paths in the workspace match their pointers, from the cache."""
    from pipeline_engine.ops.checkout import checkout as checkout_targets

    results = checkout_targets(_project(), targets, force=force, relink=relink, allow_missing=allow_missing,
                               progress=render.progress())
    written = sum(len(r.written) for r in results)
    deleted = sum(len(r.deleted) for r in results)
    for r in results:
        for extra in r.kept_extra:
            render.warn(render.escape(f"kept '{extra}': not in the tracked version (use --force to delete it)"))
        for changed in r.kept_changed:
            render.warn(render.escape(f"kept '{changed}': nothing tracks it at this revision, but it changed since pipe "
                                  "placed it or its content is not in the cache"))
        for path, oid in r.missing:
            render.warn(render.escape(f"skipped '{path}': its object '{oid}' is not in the cache ('pipe pull' fetches it)"))
    render.info(f"{written} file(s) written, {deleted} deleted" if written or deleted else "workspace already matches")


@click.command()
@click.argument("src")
@click.argument("dst")
def move(src: str, dst: str) -> None:
    """Move data tracked by a pointer file, with its pointer and ignore entry (as 'dvc move')."""
    from pipeline_engine.ops.move import git_add_command
    from pipeline_engine.ops.move import move as move_data

    project = _project()
    moved = move_data(project, src, dst)
    render.info(render.escape(f"moved {moved.src} -> {moved.dst} ({moved.old} -> {moved.new})"))
    command = git_add_command(project, moved)
    if command:
        render.info(render.escape(f"to track the move with git: {command}"))


@click.command()
@click.argument("pointers", nargs=-1, required=True)
@click.option("--outs", is_flag=True, help="Delete the tracked data (or the stage's outs) from the workspace too.")
@click.option("-f", "--force", is_flag=True, help="With --outs: delete data even if its changes are not in the cache.")
def remove(pointers: tuple[str, ...], outs: bool, force: bool) -> None:
    """Stop tracking: delete .pipe pointers, or stages from pipeline.yaml (the data stays unless --outs)."""
    from pipeline_engine.ops.remove import remove as remove_pointers

    for r in remove_pointers(_project(), pointers, outs=outs, force=force):
        paths = ", ".join(r.paths)
        render.info(render.escape(f"removed {r.what}" + (f" and {paths}" if r.data_deleted else f" ({paths} kept)"
                                                         if paths else "")))


@click.command()
@click.option("-w", "--workspace", is_flag=True, help="Keep objects the current workspace references.")
@scope_options("Keep")
@click.option("--all-experiments", is_flag=True, help="Keep what every experiment (refs/exps/) and queued experiment uses too.")
@click.option("-p", "--projects", multiple=True, metavar="PATH",
              help="Also keep what another project sharing this cache uses (repeat for each).")
@click.option("-c", "--cloud", is_flag=True, help="Also delete unreferenced objects from the remote.")
@click.option("-r", "--remote", help="Remote for --cloud (default: core.remote).")
@click.option("--skip-failed", is_flag=True,
              help="Proceed when some pointer, lock or manifest cannot be read (what it names is not kept).")
@click.option("--dry", is_flag=True, help="Only report what would be removed (with -v: each object).")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("-v", "--verbose", "names", is_flag=True, help="List every object removed (or, with --dry, to remove).")
@click.pass_context
def gc(ctx: click.Context, workspace: bool, all_branches: bool, all_tags: bool, all_commits: bool,
       revs: tuple[str, ...], num: int | None, all_experiments: bool, projects: tuple[str, ...], cloud: bool,
       remote: str | None, skip_failed: bool, dry: bool, force: bool, names: bool) -> None:
    """Delete cache objects (and with --cloud, remote objects) that the chosen scope does not use.

    The workspace is always kept; -a/-T/-A/--rev/--all-experiments keep what those git revisions use too.
    """
    from pipeline_engine.ops.gc import GcOptions
    from pipeline_engine.ops.gc import gc as collect
    from pipeline_engine.ops.gc import scope_of as gc_scope

    project = _project()
    options = GcOptions(workspace=workspace, all_branches=all_branches, all_tags=all_tags, all_commits=all_commits,
                        revs=revs, num=num, all_experiments=all_experiments, cloud=cloud, remote=remote, dry=dry, skip_failed=skip_failed,
                        projects=projects)
    gc_scope(options)  # no scope, or -n without --rev: the error comes before any question
    warned = False
    if not (dry or force):
        preview = collect(project, replace(options, dry=True))
        _warn_skipped(preview.skipped)
        warned = True
        if not preview.removed and not (preview.cloud and (preview.cloud.removed or preview.cloud.packs.orphans_removed)):
            render.info("nothing to remove")
            return
        question = f"remove {len(preview.removed)} object(s), {render.size(preview.bytes)}, from the cache"
        if preview.cloud is not None:
            question += f", and {len(preview.cloud.removed)} object(s) from the remote '{preview.cloud.remote}'"
        click.confirm(question + "?", abort=True, err=True)
    result = collect(project, options)
    if not warned:
        _warn_skipped(result.skipped)
    verb = "would remove" if dry else "removed"
    if names or bool(ctx.obj and ctx.obj.get("verbose")):
        for oid in result.removed:
            render.out.print(render.escape(f"{oid}  {project.store.path_of(oid)}"))
        if result.cloud is not None:
            for oid in result.cloud.removed:
                render.out.print(render.escape(f"{oid}  remote '{result.cloud.remote}'"))
    render.info(f"{verb} {len(result.removed)} object(s), {render.size(result.bytes)}; {result.kept} kept")
    if result.cloud is not None:
        render.info(f"remote '{render.escape(result.cloud.remote)}': {verb} {len(result.cloud.removed)} object(s); "
                    f"{result.cloud.kept} kept")
        _report_packs(result.cloud, dry=dry)


def _report_packs(cloud: RemoteGcResult, *, dry: bool) -> None:
    """What gc --cloud did to the remote's packs, and its rule for packs without an index."""
    packs, where = cloud.packs, f"remote '{cloud.remote}'"
    if packs.deleted or packs.repacked or packs.dead_left:
        render.info(f"{where}: packs: {'would delete' if dry else 'deleted'} {len(packs.deleted)}, "
                    f"{'would repack' if dry else 'repacked'} {len(packs.repacked)} (less than half used); "
                    f"{packs.dead_left} unused object(s) stay in packs still more than half used")
    if packs.orphans_removed:
        render.info(f"{where}: {'would remove' if dry else 'removed'} {len(packs.orphans_removed)} pack(s) "
                    "without an index, older than 1 hour (left by an interrupted push)")
    if packs.orphans_young:
        render.info(f"{where}: kept {len(packs.orphans_young)} pack(s) without an index, younger than 1 hour "
                    "(a push may still be uploading its index); gc removes them once older")
    for problem in packs.problems:
        render.warn(render.escape(problem))


def _warn_skipped(skipped: Sequence[Unreadable]) -> None:
    for u in skipped:
        render.warn(render.escape(f"skipped (--skip-failed) {u}"))


@click.group(cls=SuggestingGroup)
def cache() -> None:
    """Inspect the local cache."""


@cache.command()
def verify() -> None:
    """Re-hash every cached object; quarantine corrupt ones (exit 1 if any)."""
    from pipeline_engine.errors import CacheError
    from pipeline_engine.ops.verify import verify as verify_cache

    result = verify_cache(_project(), progress=render.progress())
    for oid, where in result.corrupt:
        render.warn(f"object '{oid}' is corrupt; moved to {where}")
    if result.corrupt:
        raise CacheError(
            f"{len(result.corrupt)} of {result.checked} object(s) are corrupt",
            hint="'pipe pull' fetches good copies from the remote, or re-add the data",
        )
    render.info(f"all {result.checked} object(s) intact")
