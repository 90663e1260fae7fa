"""Plain messages are written without rich (whose import costs as much as a small command), and
look exactly as rich would print them; anything rich would change still goes through it."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import sys
from pipeline_engine.cli import render
render.info(sys.argv[1])
print("rich imported" if "rich" in sys.modules else "rich not imported", file=sys.stdout)
"""


def _info(message: str) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, message], capture_output=True, text=True, check=True)
    return done.stderr, done.stdout.strip()


@pytest.mark.parametrize("message", ["10000 file(s) written, 0 deleted", "names with \x1bc escapes \x07 are shown"])
def test_a_plain_message_is_printed_without_rich_as_rich_prints_it(message: str) -> None:
    from rich.console import Console

    from pipeline_engine.cli.render import printable

    stderr, imported = _info(message)
    console = Console(highlight=False, soft_wrap=True, force_terminal=False, width=80)
    with console.capture() as captured:
        console.print(printable(message))
    assert stderr == captured.get() and imported == "rich not imported"
    assert "\x1b" not in stderr


@pytest.mark.parametrize(("message", "shown"), [
    ("initialised [bold]here[/]", "initialised here\n"),
    ("a\ttab", "a       tab\n"),
    ("next: 'pipe add <data>'", "next: 'pipe add <data>'\n"),
])
def test_a_message_rich_would_change_still_goes_through_rich(message: str, shown: str) -> None:
    assert _info(message) == (shown, "rich imported")
