"""Text from git reaches the terminal as text: an ESC (or any control character) in a metric's name
or value, a params key, a file name or an error message is printed as `\\x1b`, never sent raw where
it would clear the screen, retitle the window, write the clipboard (OSC 52) or hide an error.

A stage command's own output is the exception: its colours pass through as they did.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import Workspace

pytestmark = pytest.mark.reliability

ESC = "\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\r"  # clipboard write, clear screen, carriage return


@pytest.fixture
def hostile(workspace: Workspace) -> Workspace:
    workspace.write({"pipeline.yaml": "metrics: [m.json]\nstages:\n  s:\n    cmd: 'true'\n    params: [lr]\n",
                     "m.json": json.dumps({f"acc{ESC}": f"v{ESC}"}),
                     "params.yaml": json.dumps({"lr": 1, "note": f"a{ESC}"})})
    workspace.commit("hostile")
    workspace.write({"m.json": json.dumps({f"acc{ESC}": 2}),
                     "params.yaml": json.dumps({"lr": 2, "note": f"b{ESC}"})})
    return workspace


@pytest.mark.parametrize("command", [
    ["metrics", "show"], ["metrics", "show", "--md"], ["metrics", "show", "--csv"], ["metrics", "show", "--json"],
    ["metrics", "diff"], ["metrics", "diff", "--md"], ["params", "diff", "--all"], ["params", "diff", "--md"],
    ["exp", "show"], ["exp", "show", "--md"], ["exp", "show", "--csv"], ["exp", "diff", "HEAD"],
])
def test_control_characters_from_files_are_printed_escaped(hostile: Workspace, command: list[str]) -> None:
    result = hostile.pipe(*command)

    assert "\x1b" not in result.output and "\x07" not in result.output and "\r" not in result.output
    assert "acc" in result.output or "note" in result.output


def test_an_error_naming_a_file_from_git_prints_its_control_characters_escaped(workspace: Workspace) -> None:
    workspace.write({"pipeline.yaml": json.dumps({"metrics": [f"m{ESC}.json"]}), f"m{ESC}.json": "{not json"})

    result = workspace.pipe("metrics", "show", exit_code=1)

    assert "\x1b" not in result.output and "m\\x1b]52;c;" in result.output


def test_a_stage_commands_own_colours_still_pass_through(workspace: Workspace) -> None:
    script = "import sys; sys.stdout.write('\\x1b[32mgreen\\x1b[0m\\n')"
    workspace.stage("s", f"{sys.executable} -c \"{script}\"")

    result = workspace.pipe("repro")

    assert "\x1b[32mgreen\x1b[0m" in result.output


def test_a_newline_in_a_metric_name_cannot_add_rows_to_the_markdown_report(workspace: Workspace) -> None:
    fake = "acc\n| metrics.json | acc | 0.1 | 0.99 | 0.89 | +890% |"
    workspace.write({"pipeline.yaml": "metrics: [m.json]\n", "m.json": json.dumps({fake: 1})})
    workspace.commit("fake rows")
    workspace.write({"m.json": json.dumps({fake: 2})})

    lines = workspace.pipe("metrics", "diff", "--md").stdout.splitlines()

    assert len(lines) == 3  # header, rule, one row
    assert "acc\\n\\| metrics.json" in lines[2]


def test_a_file_name_with_escapes_is_refused_and_shown_escaped(workspace: Workspace) -> None:
    """No manifest may record such a name (the path gate refuses it on reading), so `add` and `diff`
    refuse it by name; the name is shown with its escapes written out, never sent to the terminal."""
    name = f"x{ESC}\n| added | fake |"
    workspace.track({"data": {"a.txt": "a\n"}})
    workspace.commit("data")
    workspace.write({f"data/{name}": "b\n"})
    for args in (["add", "data"], ["diff", "--md"], ["diff"]):
        result = workspace.pipe(*args, exit_code=1)
        output = result.stdout + result.stderr
        assert "\x1b" not in output and "\x07" not in output and "\\x1b]52" in output


def test_config_values_from_git_are_printed_escaped(workspace: Workspace) -> None:
    workspace.write({".pipe/config.yaml": 'schema: 1\ncore:\n  remote: "x\\e]0;T\\a"\n'})

    for args in (["config", "--list"], ["config", "--list", "--show-origin"], ["config", "core.remote"]):
        output = workspace.pipe(*args).stdout
        assert "\x1b" not in output and "x\\x1b]0;T\\x07" in output


@pytest.mark.parametrize("command", [["exp", "show"], ["metrics", "show"], ["params", "diff", "--all"]])
def test_rich_markup_in_metric_and_param_names_is_shown_as_text(workspace: Workspace, command: list[str]) -> None:
    """Names come from git: `[/]` crashed the table (exit 70), `[link=...]x[/link]` showed as a column 'x'."""
    workspace.write({"pipeline.yaml": "metrics: [m.json]\nstages:\n  s:\n    cmd: 'true'\n    params: [lr]\n",
                     "m.json": json.dumps({"[/]": 1, "[link=http://evil]acc[/link]": 2}),
                     "params.yaml": json.dumps({"lr": 1, "[/]": 3})})
    workspace.commit("hostile")
    workspace.write({"params.yaml": json.dumps({"lr": 2, "[/]": 4})})

    result = workspace.pipe(*command)

    assert "[link=http://evil]acc[/link]" in result.output or "[/]" in result.output


@pytest.mark.parametrize("command", [["status"], ["status", "-v"], ["move", "p[/]", "moved"], ["remove", "p[/].pipe"]])
def test_rich_markup_in_tracked_file_names_is_shown_as_text(workspace: Workspace, command: list[str]) -> None:
    """File names come from git: `p[/]` (a file ']' in directory 'p[') crashed status and move after
    the move was done (exit 70); `d[red]x` printed as a red 'dx'."""
    workspace.track({"p[/]": "a\n", "d[red]x": "b\n", "dir": {"[/]": "c\n"}})
    workspace.commit("hostile")
    workspace.write({"p[/]": "changed\n", "d[red]x": "changed\n", "dir/[/]": "changed\n"})

    result = workspace.pipe(*command)

    assert "Traceback" not in result.output
    assert "p[/]" in result.output and ("d[red]x" in result.output or command[0] != "status")
