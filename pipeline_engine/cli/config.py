"""pipe config: get, set, unset or list config keys at the system, global, project or local level."""

from __future__ import annotations

import click

from pipeline_engine.cli import render
from pipeline_engine.config import SETTINGS

_LEVELS_HELP = """\b
Levels, each overriding the ones before it when read:
  --system   $PIPE_SYSTEM_CONFIG_DIR/config.yaml, else e.g. /etc/xdg/pipe/config.yaml
  --global   $PIPE_GLOBAL_CONFIG_DIR/config.yaml, else e.g. ~/.config/pipe/config.yaml
  --project  .pipe/config.yaml (committed; the default for writing)
  --local    .pipe/config.local.yaml (git-ignored; for credentials)
"""
_EPILOG = (
    "\b\nKeys:\n"
    + "".join(f"  {s.key:<20} {s.help}\n" for s in SETTINGS.values())
    + f"  {'remote.NAME.url':<20} a remote's URL; remote.NAME.OPTION: its options (see 'pipe remote modify')\n\n"
    + _LEVELS_HELP
)


@click.command(epilog=_EPILOG)
@click.option("--system", "levels", flag_value="system", multiple=True, help="Use the system config.")
@click.option("--global", "levels", flag_value="global", multiple=True, help="Use this user's config.")
@click.option("--project", "levels", flag_value="project", multiple=True, help="Use .pipe/config.yaml.")
@click.option("--local", "levels", flag_value="local", multiple=True, help="Use .pipe/config.local.yaml.")
@click.option("-u", "--unset", is_flag=True, help="Remove KEY.")
@click.option("-l", "--list", "list_", is_flag=True, help="List every key set, level by level.")
@click.option("--show-origin", is_flag=True, help="Show the file that sets each value.")
@click.argument("key", required=False)
@click.argument("value", required=False)
def config(
    levels: tuple[str, ...], unset: bool, list_: bool, show_origin: bool, key: str | None, value: str | None
) -> None:
    """Get or set config options: 'pipe config KEY' prints, 'pipe config KEY VALUE' sets.

    Reading without a level merges all levels; writing goes to one (default --project).
    Credentials (in URLs, or secret remote options) go to --local or --global, never to the
    committed project file; printed values have them masked.
    """
    from pipeline_engine.ops import config as ops

    if len(set(levels)) > 1:
        raise click.UsageError(f"use only one of --{', --'.join(sorted(set(levels)))}")
    level = levels[0] if levels else None
    _check_usage(unset=unset, list_=list_, show_origin=show_origin, key=key, value=value)
    control_dir = ops.find_control_dir()
    if list_:
        for entry in ops.list_values(control_dir, level=level):
            prefix = f"{entry.origin}\t" if show_origin else ""
            click.echo(render.printable(f"{prefix}{entry.key}={entry.value}"))  # plain: rich would expand the tab
        return
    assert key is not None  # checked by _check_usage
    if unset:
        written = ops.unset_value(control_dir, key, level=level)
        render.info(f"unset '{key}' in {written}")
    elif value is None:
        entry = ops.get_value(control_dir, key, level=level)
        click.echo(render.printable(f"{entry.origin}\t{entry.value}" if show_origin else entry.value))
    else:
        written = ops.set_value(control_dir, key, value, level=level)
        render.info(f"set '{key}' in {written}")
        if key == "cache.type":
            render.info("files already in the workspace keep their links: 'pipe checkout --relink' updates them")


def _check_usage(*, unset: bool, list_: bool, show_origin: bool, key: str | None, value: str | None) -> None:
    if list_ and (key or value or unset):
        raise click.UsageError("--list takes no KEY, VALUE or --unset")
    if show_origin and (value is not None or unset):
        raise click.UsageError("--show-origin only goes with reading (KEY or --list)")
    if not list_ and not key:
        raise click.UsageError("give a KEY (e.g. core.remote), or --list")
    if unset and value is not None:
        raise click.UsageError("--unset takes a KEY and no VALUE")
