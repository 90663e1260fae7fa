"""pipe diff: compare tracked data across git revisions (the commands that read history live here).

Output follows `dvc diff`: `--json` is DVC's shape (`added`, `deleted`, `modified`, `renamed` and,
against the workspace, `not in cache`; hashes only with `--show-hash`), `--md` its Markdown table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pipeline_engine.cli import TargetsCommand, render
from pipeline_engine.project import Project

if TYPE_CHECKING:
    from pipeline_engine.ops.diff import DataDiff, DiffEntry

__all__ = ["diff"]


@click.command(cls=TargetsCommand)
@click.argument("a_rev", required=False, default="HEAD")
@click.argument("b_rev", required=False)
@click.option("--targets", multiple=True, metavar="PATH...",
              help="Compare only these tracked paths (every argument up to the next option).")
@click.option("--json", "as_json", is_flag=True, help="Print DVC's JSON shape on stdout.")
@click.option("--md", "as_md", is_flag=True, help="Print a Markdown table.")
@click.option("--show-hash", is_flag=True, help="Show the oid of each entry.")
@click.option("--hide-missing", is_flag=True, help="Leave out what is not in the cache.")
def diff(a_rev: str, b_rev: str | None, targets: tuple[str, ...], as_json: bool, as_md: bool,
         show_hash: bool, hide_missing: bool) -> None:
    """Show tracked data added, deleted, modified or renamed between A_REV (default HEAD) and B_REV (default: the workspace)."""
    from pipeline_engine.ops.diff import diff as data_diff

    if as_json and as_md:
        raise click.UsageError("choose one of '--json' and '--md'")
    result = data_diff(Project.find(), a_rev, b_rev, targets=targets)
    states = _states(result, hide_missing=hide_missing or b_rev is not None)
    if as_json:
        render.print_json(_as_json(result, states, show_hash=show_hash))
    elif as_md:
        render.out.file.write(_markdown(states, show_hash=show_hash))
    else:
        _print_text(result, states, show_hash=show_hash)


# (state, old side, new side): added entries have no old side; deleted and not-in-cache ones no new side.
_Row = tuple[str, "DiffEntry | None", "DiffEntry | None"]


def _states(result: DataDiff, *, hide_missing: bool) -> dict[str, list[_Row]]:
    lists: dict[str, list[_Row]] = {
        "added": [("added", None, e) for e in result.added],
        "deleted": [("deleted", e, None) for e in result.deleted],
        "renamed": [("renamed", c.old, c.new) for c in result.renamed],
        "modified": [("modified", c.old, c.new) for c in result.modified],
        "not in cache": [("not in cache", e, None) for e in result.not_in_cache],
    }
    if hide_missing:
        del lists["not in cache"]
    return lists


def _as_json(result: DataDiff, states: dict[str, list[_Row]], *, show_hash: bool) -> dict[str, Any]:
    """DVC's shape: `{}` when nothing differs; else every list, entries `{path[, hash]}`."""
    if result.is_empty:
        return {}
    shaped: dict[str, Any] = {}
    for state, rows in states.items():
        shaped[state] = [{"path": _json_path(*row), **({"hash": _json_hash(*row)} if show_hash else {})}
                         for row in rows]
    return shaped


def _json_path(state: str, old: DiffEntry | None, new: DiffEntry | None) -> Any:
    if old is not None and new is not None and state == "renamed":
        return {"old": old.path, "new": new.path}
    return _one(old, new).path


def _json_hash(state: str, old: DiffEntry | None, new: DiffEntry | None) -> Any:
    if old is not None and new is not None and state == "modified":
        return {"old": old.oid, "new": new.oid}
    return _one(old, new).oid


def _one(old: DiffEntry | None, new: DiffEntry | None) -> DiffEntry:
    """The entry that names a row: the old side when there is one (DVC's rule for modified and renamed)."""
    entry = old or new
    assert entry is not None
    return entry


def _shown_path(state: str, old: DiffEntry | None, new: DiffEntry | None) -> str:
    if old is not None and new is not None and state == "renamed":
        return f"{old.path} -> {new.path}"
    return _one(old, new).path


def _digest(state: str, old: DiffEntry | None, new: DiffEntry | None) -> str:
    if old is not None and new is not None and state == "modified":
        return f"{old.oid[:8]}..{new.oid[:8]}"
    return _one(old, new).oid[:8]


def _size(state: str, old: DiffEntry | None, new: DiffEntry | None) -> str:
    if old is not None and new is not None and state == "modified":
        return f"{render.size(old.size)} -> {render.size(new.size)}"
    return render.size(_one(old, new).size)


def _markdown(states: dict[str, list[_Row]], *, show_hash: bool) -> str:
    """DVC's GitHub-flavoured table: Status[, Hash], Path; a header alone when nothing differs."""
    headers = ["Status", "Hash", "Path"] if show_hash else ["Status", "Path"]
    rows = [[row[0], *([_digest(*row)] if show_hash else []), _shown_path(*row)]
            for rows in states.values() for row in rows]
    return render.markdown_table(headers, rows)  # file names from git: one escaped line per cell


def _print_text(result: DataDiff, states: dict[str, list[_Row]], *, show_hash: bool) -> None:
    """A table of changes with sizes, and DVC's `files summary:` line (directories are not counted as files)."""
    if not any(states.values()):
        # the revisions are as the user typed them: `HEAD^{/[/]}` must not be read as rich markup
        render.info(render.escape(render.printable(f"no changes between '{result.a_rev}' and '{result.b_rev}'")))
        return
    columns = ["Status", *(["Hash"] if show_hash else []), "Path", "Size"]
    rows = [[row[0], *([_digest(*row)] if show_hash else []), _shown_path(*row), _size(*row)]
            for rows in states.values() for row in rows]
    render.out.print(render.rows_table(columns, rows, title=f"{result.a_rev} -> {result.b_rev}"))
    counts = {state: sum(1 for row in rows if not _shown_path(*row).endswith("/")) for state, rows in states.items()}
    if any(counts.values()):
        render.out.print("files summary: " + ", ".join(f"{n} {state}" for state, n in counts.items() if n))
