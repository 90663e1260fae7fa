"""pipe artifacts list | register | assign | deprecate | show | get: the registry on GTO's git tags."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline_engine.cli import SuggestingGroup, render
from pipeline_engine.project import Project


@click.group(cls=SuggestingGroup)
def artifacts() -> None:
    """Artifacts of pipeline.yaml, their versions and stages (git tags in GTO's format)."""


@artifacts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List the artifacts declared in pipeline.yaml."""
    from pipeline_engine.ops.artifacts import list_artifacts

    found = list_artifacts(Project.find())
    if as_json:
        render.print_json({n: {"path": a.path, "type": a.type, "desc": a.desc, "labels": list(a.labels),
                                "meta": dict(a.meta)} for n, a in found.items()})
        return
    if not found:
        render.info("no artifacts in pipeline.yaml")
        return
    render.out.print(render.rows_table(
        ["name", "path", "type", "desc"],
        [[render.escape(render.printable(str(v or ""))) for v in (n, a.path, a.type, a.desc)] for n, a in found.items()],
    ))


@artifacts.command()
@click.argument("name")
@click.argument("version", required=False)
@click.argument("rev", required=False)
@click.option("--bump-major", "bump", flag_value="major", help="Next major version.")
@click.option("--bump-minor", "bump", flag_value="minor", help="Next minor version.")
@click.option("--bump-patch", "bump", flag_value="patch", help="Next patch version (the default).")
@click.option("-m", "--message", help="The annotated tag's message.")
def register(name: str, version: str | None, rev: str | None, bump: str | None, message: str | None) -> None:
    """Register a version of NAME at commit REV (default HEAD): tag NAME@vX.Y.Z.

    With a --bump-* flag, or when the one argument after NAME is not a version (vX.Y.Z), it is REV.
    """
    from pipeline_engine.ops.artifacts import register as do
    from pipeline_engine.scm.tags import SEMVER_RE

    if version is not None and rev is None and (bump is not None or not SEMVER_RE.match(
            version if version.startswith("v") else f"v{version}")):
        version, rev = None, version
    if version is not None and bump is not None:
        raise click.UsageError("give a VERSION or a --bump-* flag, not both")
    tag = do(Project.find(), name, version, rev or "HEAD", bump=bump, message=message)
    render.out.print(f"Created git tag '{render.escape(tag)}' that registers a new version")


@artifacts.command()
@click.argument("name")
@click.argument("version", required=False)
@click.option("--stage", required=True, help="The stage to assign (e.g. prod).")
@click.option("--rev", default="HEAD", show_default=True, help="Commit to assign when no VERSION is given.")
@click.option("--force", is_flag=True, help="Tag again even when the version is in the stage already.")
@click.option("-m", "--message", help="The annotated tag's message.")
def assign(name: str, version: str | None, stage: str, rev: str, force: bool, message: str | None) -> None:
    """Assign STAGE to VERSION of NAME (or to commit REV): tag NAME#STAGE#N."""
    from pipeline_engine.ops.artifacts import assign as do

    tag = do(Project.find(), name, stage, version, rev, force=force, message=message)
    render.out.print(f"Created git tag '{render.escape(tag)}' that assigns stage '{render.escape(stage)}'")


@artifacts.command()
@click.argument("name")
@click.argument("version", required=False)
@click.option("--stage", help="Unassign this stage instead (tag NAME#STAGE!#N).")
@click.option("-m", "--message", help="The annotated tag's message.")
def deprecate(name: str, version: str | None, stage: str | None, message: str | None) -> None:
    """Deprecate NAME (NAME@deprecated), or deregister one VERSION of it (NAME@VERSION!)."""
    from pipeline_engine.ops.artifacts import deprecate as do

    tag = do(Project.find(), name, version, stage, message=message)
    render.out.print(f"Created git tag '{render.escape(tag)}'")


@artifacts.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(name: str | None, as_json: bool) -> None:
    """Show registered versions and stages: of all artifacts, or of NAME's versions."""
    from pipeline_engine.ops.artifacts import show as do

    arts = do(Project.find(), name)
    if as_json:
        render.print_json({n: a.as_dict() for n, a in arts.items()})
        return
    if name is None:
        stages = sorted({s for a in arts.values() for s in a.stages})
        rows = [[n + (" (deprecated)" if a.deprecated else ""), a.latest or "-",
                 *[a.stages.get(s, "-")[:12] for s in stages]] for n, a in arts.items()]
        render.out.print(render.rows_table(["name", "latest", *[f"#{s}" for s in stages]],
                                           [[render.escape(c) for c in r] for r in rows]))
        return
    d = arts[name].as_dict()
    render.out.print(render.rows_table(
        ["version", "stages", "commit", "created_at", "tag"],
        [[render.escape(v["version"] + ("" if v["active"] else " (deregistered)")), render.escape(", ".join(v["stages"])),
          v["rev"][:7], _when(v["created_at"]), render.escape(v["tag"])] for v in d["versions"]],
    ))


def _when(ts: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@artifacts.command()
@click.argument("url")
@click.argument("name")
@click.option("--version", help="The version to get (default: the latest).")
@click.option("--stage", help="The version in this stage.")
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Where to write it.")
def get(url: str, name: str, version: str | None, stage: str | None, out: Path | None) -> None:
    """Download artifact NAME, as registered in the pipe project at git URL (a path, file://, ssh, https)."""
    from pipeline_engine.errors import NotAProjectError
    from pipeline_engine.ops.artifacts import artifacts_get

    if version is not None and stage is not None:
        raise click.UsageError("give --version or --stage, not both")
    try:
        here: Project | None = Project.find()
    except NotAProjectError:
        here = None
    dest = artifacts_get(url, name, version=version, stage=stage, out=out, project=here)
    render.out.print(f"Downloaded artifact '{render.escape(name)}' to '{render.escape(str(dest))}'")
