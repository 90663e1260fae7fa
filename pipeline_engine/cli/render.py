"""All terminal output: a stdout Console for data, a stderr Console for messages, progress, tables.

Data (tables, JSON) goes to stdout so `pipe ... --json | jq` works; everything meant for the
person at the terminal goes to stderr. Progress bars appear only on a terminal, and only for
steps that last longer than about a second.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline_engine.core.redact import mask_text
from pipeline_engine.errors import PipeError

if TYPE_CHECKING:
    import pandas

    from pipeline_engine.core.progress import Progress, ProgressTask

__all__ = [
    "configure", "err", "error", "info", "out", "print_json", "progress", "rows_table", "size", "table", "warn",
]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_state = {"quiet": False, "verbose": False}


def configure(*, quiet: bool, verbose: bool) -> None:
    """Apply the global -q / -v flags."""
    _state["quiet"] = quiet
    _state["verbose"] = verbose


def is_verbose() -> bool:
    """True under -v."""
    return _state["verbose"]


def info(message: str) -> None:
    """A progress or result message for people (stderr); silenced by -q."""
    if not _state["quiet"]:
        err.print(message)


def warn(message: str) -> None:
    """A warning (stderr); shown even with -q."""
    err.print(f"[yellow]warning:[/] {message}")


def error(exc: PipeError, *, verbose: bool) -> None:
    """Render a PipeError as `error: message` plus its hint; with -v, the traceback of its cause.

    URLs are masked (`core.redact`) in all three: a library's exception may quote a remote's URL
    with its credentials.
    """
    if verbose:
        err.print(escape(mask_text("".join(traceback.format_exception(exc)))), end="")
    err.print(f"[bold red]error:[/] {escape(mask_text(str(exc)))}")
    if exc.hint:
        err.print(f"[dim]hint:[/] {escape(mask_text(exc.hint))}")


def size(n: int) -> str:
    """A byte count for people: 1.5 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, never coloured."""
    out.file.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def rows_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> Table:
    """A rich Table from plain rows."""
    t = Table(title=title, show_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(escape(str(v)) for v in r))
    return t


def table(df: pandas.DataFrame, *, title: str | None = None) -> Table:
    """A rich Table from a pandas DataFrame (index not shown)."""
    return rows_table([str(c) for c in df.columns], df.itertuples(index=False), title=title)


class _RichTask:
    def __init__(self, owner: RichProgress, description: str, total: int | None, unit: str) -> None:
        self._owner, self._description, self._total, self._unit = owner, description, total, unit
        self._done = 0
        self._started = time.monotonic()
        self._id: Any = None

    def advance(self, n: int = 1) -> None:
        self._done += n
        if self._id is None:
            if time.monotonic() - self._started < self._owner.delay:
                return
            self._id = self._owner.show(self._description, self._total, self._done)
        else:
            self._owner.bar.update(self._id, completed=self._done)

    def close(self) -> None:
        if self._id is not None:
            self._owner.bar.update(self._id, completed=self._done, visible=False)
            self._owner.release()


class RichProgress:
    """Progress protocol backed by rich; bars appear after `delay` seconds, on a terminal only."""

    def __init__(self, *, delay: float = 1.0) -> None:
        self.delay = delay
        self.bar: Any = None
        self._open = 0

    def task(self, description: str, total: int | None = None, *, unit: str = "files") -> ProgressTask:
        if _state["quiet"] or not err.is_terminal:
            from pipeline_engine.core.progress import NullProgress

            return NullProgress().task(description, total, unit=unit)
        return _RichTask(self, description, total, unit)

    def show(self, description: str, total: int | None, done: int) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self.bar is None:
            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=err, transient=True,
            )
            self.bar.start()
        self._open += 1
        return self.bar.add_task(description, total=total, completed=done)

    def release(self) -> None:
        self._open -= 1
        if self._open <= 0 and self.bar is not None:
            self.bar.stop()
            self.bar = None


def progress() -> Progress:
    """The Progress to hand to ops for this command."""
    return RichProgress()
