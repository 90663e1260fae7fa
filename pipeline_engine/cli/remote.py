"""pipe remote add | modify | list | remove | default: configure where push and pull go."""

from __future__ import annotations

import click

from pipeline_engine.cli import SuggestingGroup, render
from pipeline_engine.project import Project

_local = click.option(
    "--local", is_flag=True, help="Write to .pipe/config.local.yaml (git-ignored; for secrets)."
)


@click.group(cls=SuggestingGroup)
def remote() -> None:
    """Configure remote storage for push, pull and fetch."""


@remote.command()
@click.option("-d", "--default", "default", is_flag=True, help="Also make it the default remote.")
@_local
@click.option("-f", "--force", is_flag=True, help="Replace an existing remote of that name.")
@click.argument("name")
@click.argument("url")
def add(default: bool, local: bool, force: bool, name: str, url: str) -> None:
    """Add remote NAME at URL (a path, s3://bucket/prefix, gs://, az://, ssh://, ...)."""
    from pipeline_engine.core.redact import mask_url
    from pipeline_engine.ops.remote import add_remote

    add_remote(Project.find(), name, url, default=default, local=local, force=force)
    render.info(render.escape(f"added remote '{name}' -> {mask_url(url)}") + (" (default)" if default else ""))


@remote.command()
@_local
@click.option("-u", "--unset", is_flag=True, help="Remove the option instead of setting it.")
@click.argument("name")
@click.argument("key")
@click.argument("value", required=False)
def modify(local: bool, unset: bool, name: str, key: str, value: str | None) -> None:
    """Set option KEY of remote NAME to VALUE (endpoint_url, region, profile, jobs, ...)."""
    from pipeline_engine.ops.remote import modify_remote

    written = modify_remote(Project.find(), name, key, value, unset=unset, local=local)
    render.info(f"{'unset' if unset else 'set'} '{key}' of remote '{name}' in {written}")


@remote.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
def list_(as_json: bool) -> None:
    """List the configured remotes (secrets are never shown)."""
    from pipeline_engine.ops.remote import list_remotes

    infos = list_remotes(Project.find())
    if as_json:
        render.print_json(
            [
                {"name": r.name, "url": r.url, "default": r.is_default, "options": dict(r.options)}
                for r in infos
            ]
        )
        return
    if not infos:
        render.info("no remotes (add one with 'pipe remote add -d NAME URL')")
        return
    for r in infos:
        options = " ".join(f"{k}={v}" for k, v in r.options)
        render.out.print(
            f"{r.name}\t{r.url}"
            + ("\t(default)" if r.is_default else "")
            + (f"\t{options}" if options else ""),
            markup=False,
        )


@remote.command()
@click.argument("name")
def remove(name: str) -> None:
    """Remove remote NAME from the config (its data stays where it is)."""
    from pipeline_engine.ops.remote import remove_remote

    remove_remote(Project.find(), name)
    render.info(f"removed remote '{name}'")


@remote.command()
@_local
@click.option("-u", "--unset", is_flag=True, help="Unset the default remote.")
@click.argument("name", required=False)
def default(local: bool, unset: bool, name: str | None) -> None:
    """Show the default remote, or make NAME the default."""
    from pipeline_engine.ops.remote import set_default_remote

    project = Project.find()
    if name is None and not unset:
        current = project.config.default_remote
        if current is None:
            render.info("no default remote (set one with 'pipe remote default NAME')")
        else:
            render.out.print(current, markup=False)
        return
    set_default_remote(project, None if unset else name, local=local)
    render.info("unset the default remote" if unset else f"default remote is now '{name}'")
