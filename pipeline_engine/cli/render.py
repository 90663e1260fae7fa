"""All terminal output: a stdout Console for data, a stderr Console for messages, progress, tables.

Data (tables, JSON) goes to stdout so `pipe ... --json | jq` works; everything meant for the
person at the terminal goes to stderr. Progress bars appear only on a terminal, and only for
steps that last longer than about a second.

rich costs ~14 ms to import, as much as some whole commands' work: the consoles `out` and `err`
are made on first use, and a plain message (no markup, nothing rich would change) is written
without them.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pipeline_engine.core.redact import mask_text
from pipeline_engine.errors import PipeError

if TYPE_CHECKING:
    import pandas
    from rich.console import Console
    from rich.table import Table

    from pipeline_engine.core.progress import Progress, ProgressTask

    out: Console  # made on first use (module __getattr__)
    err: Console

__all__ = [
    "configure", "err", "error", "escape", "frame", "info", "markdown_table", "out", "print_json", "printable", "progress",
    "rows_table", "size", "table", "warn",
]

# Control characters other than tab and newline, written as `\xNN`: metric keys and values, file names
# and revision labels come from git, and an ESC in one must not drive the user's terminal (clear the
# screen, retitle the window, write the clipboard, hide an error).
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c not in (0x09, 0x0A)}


def printable(text: str) -> str:
    """`text` with every control character but tab and newline written out as `\\xNN`."""
    return text.translate(_CONTROL)


def escape(text: str) -> str:
    """`text` with rich markup in it escaped, so it prints as written (`rich.markup.escape`)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


_made_lock = threading.Lock()


def __getattr__(name: str) -> Console:
    """`out` and `err`, made (and rich imported) the first time either is asked for."""
    if name not in ("out", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _made_lock:
        if name not in globals():
            from rich.console import Console

            class _Console(Console):
                """A rich Console that writes control characters in the text it is given as visible
                escapes. `out()` is the exception: it relays a stage command's own output (its
                colours, its `\\r` bars)."""

                _raw = threading.local()

                def render_str(self, text: str, **options: Any) -> Any:
                    return super().render_str(text if getattr(self._raw, "on", False) else printable(text), **options)

                def out(self, *objects: Any, **options: Any) -> None:
                    self._raw.on = True
                    try:
                        super().out(*objects, **options)
                    finally:
                        self._raw.on = False

            globals()[name] = _Console(stderr=name == "err", highlight=False, soft_wrap=True)
    console: Console = globals()[name]
    return console


def _may_be_terminal() -> bool:
    """False when rich would surely not call stderr a terminal (so no console need be made to ask)."""
    return sys.stderr.isatty() or any(v in os.environ for v in ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE"))


def _err() -> Console:
    return __getattr__("err")


def _out() -> Console:
    return __getattr__("out")


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
    if _state["quiet"]:
        return
    if "err" not in globals() and not any(c in message for c in "[:\t"):
        # Nothing rich would change (markup, emoji codes, tabs), and no bar of its is on screen.
        sys.stderr.write(printable(message) + "\n")
        sys.stderr.flush()
    else:
        _err().print(message)


def warn(message: str) -> None:
    """A warning (stderr); shown even with -q."""
    _err().print(f"[yellow]warning:[/] {message}")


def error(exc: PipeError, *, verbose: bool) -> None:
    """Render a PipeError as `error: message` plus its hint; with -v, the traceback of its cause.

    URLs are masked (`core.redact`) in all three: a library's exception may quote a remote's URL
    with its credentials.
    """
    err = _err()
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
    _out().file.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def rows_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> Table:
    """A rich Table from plain rows: headers, title and cells are text, never markup (metric and
    param names come from git: `[/]` raised MarkupError, `[link=...]` disguised a column)."""
    from rich.table import Table  # here: most commands print no table, and rich.table costs ~4 ms

    t = Table(title=escape(title) if title is not None else None, show_edge=False, header_style="bold")
    for c in columns:
        t.add_column(escape(str(c)))
    for r in rows:
        t.add_row(*(escape(str(v)) for v in r))
    return t


def table(df: pandas.DataFrame, *, title: str | None = None) -> Table:
    """A rich Table from a pandas DataFrame (index not shown)."""
    return rows_table([str(c) for c in df.columns], df.itertuples(index=False), title=title)


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (DVC's `--md`), columns padded to their widest cell.

    A cell is one line: a newline in a metric's name (from git, bound for a pull-request comment)
    would end the row and start rows of its own.
    """
    cells = [[_md_cell(c) for c in columns], *([_md_cell(v) for v in r] for r in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    text = [f"| {' | '.join(c.ljust(w) for c, w in zip(line, widths, strict=True))} |" for line in cells]
    text.insert(1, f"|{'|'.join('-' * (w + 2) for w in widths)}|")
    return "\n".join(text) + "\n"


def _md_cell(value: Any) -> str:
    return printable(str(value)).replace("\n", "\\n").replace("|", "\\|")


def frame(df: pandas.DataFrame, *, markdown: bool = False, csv: bool = False) -> None:
    """Print a DataFrame of display strings on stdout: a rich table, or Markdown, or CSV (`--md`, `--csv`)."""
    if csv:
        _out().file.write(printable(df.to_csv(index=False).replace("\r\n", "\n")))
    elif markdown:
        _out().file.write(markdown_table(list(df.columns), df.itertuples(index=False)))
    else:
        _out().print(table(df))


class _RichTask:
    """One bar of a RichProgress; every update goes through the owner's lock (tasks advance from worker threads)."""

    def __init__(self, owner: RichProgress, description: str, total: int | None, unit: str) -> None:
        self.owner, self.description, self.total, self.unit = owner, description, total, unit
        self.done = 0
        self.nbytes = 0
        self.started = time.monotonic()
        self.id: Any = None
        self.closed = False

    def advance(self, n: int = 1, *, nbytes: int = 0) -> None:
        self.owner.advance(self, n, nbytes)

    def close(self) -> None:
        self.owner.close(self)


def _byte_rate(task: Any) -> str:
    """`12.0 MiB, 4.0 MiB/s` for a bar that has seen bytes; empty otherwise."""
    nbytes = int(task.fields.get("nbytes", 0))
    if not nbytes:
        return ""
    elapsed = task.elapsed or 0.0
    rate = f", {size(int(nbytes / elapsed))}/s" if elapsed > 0 else ""
    return f"{size(nbytes)}{rate}"


# Seconds between two redraws of the progress bars.
_REDRAW = 0.1


class RichProgress:
    """Progress protocol backed by rich; bars appear after `delay` seconds, on a terminal only.

    Tasks are created, advanced and closed from several threads at once (hashing and transfers run
    in pools, `repro -j` hashes the outs of several stages together). One lock serialises the
    decision to start or stop the single rich display: without it two threads could each start
    one, and the display no one stopped kept its bars frozen on the terminal.

    The bars are redrawn by `advance` (at most every `_REDRAW` seconds), not by rich's refresh
    thread: a command with a thread of its own may not fork (`core.forked`), and a 1M-file add
    in a terminal would otherwise lose its second core once its bar appeared.
    """

    def __init__(self, *, delay: float = 1.0, console: Console | None = None) -> None:
        self.delay = delay
        self._console = console
        self.bar: Any = None
        self._open = 0
        self._lock = threading.Lock()
        self._drawn = 0.0  # when the bars were last drawn (time.monotonic)

    @property
    def console(self) -> Console:
        """The console the bars are drawn on (made on first use: see the module docstring)."""
        if self._console is None:
            self._console = _err()
        return self._console

    def task(self, description: str, total: int | None = None, *, unit: str = "files") -> ProgressTask:
        if _state["quiet"] or not (_may_be_terminal() if self._console is None else self.console.is_terminal):
            from pipeline_engine.core.progress import NullProgress

            return NullProgress().task(description, total, unit=unit)
        return _RichTask(self, description, total, unit)

    def advance(self, task: _RichTask, n: int, nbytes: int) -> None:
        """Count `n` units and `nbytes` bytes for `task`; show its bar once it has lasted `delay`."""
        with self._lock:
            if task.closed:
                return
            task.done += n
            task.nbytes += nbytes
            if task.id is None:
                if time.monotonic() - task.started < self.delay:
                    return
                task.id = self._show(task)
            else:
                self.bar.update(task.id, completed=task.done, nbytes=task.nbytes)
            now = time.monotonic()
            if now - self._drawn >= _REDRAW:
                self._drawn = now
                self.bar.refresh()

    def close(self, task: _RichTask) -> None:
        """Finish `task`; the display stops with the last open bar (transient: nothing is left behind)."""
        with self._lock:
            if task.closed:
                return
            task.closed = True
            if task.id is None:
                return
            self.bar.remove_task(task.id)
            self._open -= 1
            if self._open == 0:
                self.bar.stop()
                self.bar = None

    def _show(self, task: _RichTask) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self.bar is None:
            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
                _byte_rate_column(), TimeRemainingColumn(), console=self.console, transient=True,
                auto_refresh=False,  # redrawn by `advance`: no refresh thread (see the class docstring)
            )
            self.bar.start()
        self._open += 1
        return self.bar.add_task(
            task.description, total=task.total, completed=task.done, unit=task.unit, nbytes=task.nbytes
        )


def _byte_rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class ByteRateColumn(ProgressColumn):
        """Bytes done and their rate, for bars whose work is data (hashing, transfers)."""

        def render(self, task: Any) -> Text:
            return Text(_byte_rate(task))

    return ByteRateColumn()


def progress() -> Progress:
    """The Progress to hand to ops for this command; PIPE_PROGRESS_DELAY sets the seconds before a bar shows."""
    try:
        delay = float(os.environ.get("PIPE_PROGRESS_DELAY", "1"))
    except ValueError:
        delay = 1.0
    return RichProgress(delay=delay)
