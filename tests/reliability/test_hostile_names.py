"""File names a manifest, pointer or lock file cannot hold: a control character, or bytes that are not UTF-8.

Linux allows any byte but `/` and NUL in a name. `pipe add` stored a directory holding `new\\nline`
in a manifest that the path gate then refused to read (the data could never be checked out
again), and a name that is not UTF-8 crashed it (exit 70). Both are refused by name, before
anything is written.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import Cli, Workspace

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize(("name", "shown"), [("new\nline", "d/new\\x0aline"), (os.fsdecode(b"\xff\xfe"), "d/\\xff\\xfe"),
                                             ("sub\x1b/x", "d/sub\\x1b/x")])
def test_adding_a_directory_holding_a_name_no_manifest_can_record_is_refused_by_name(
    workspace: Workspace, cli: Cli, name: str, shown: str
) -> None:
    workspace.write({"d": {"a.txt": "a\n"}})
    (workspace.root / "d" / name).parent.mkdir(exist_ok=True)
    (workspace.root / "d" / name).write_text("x\n")
    result = cli.run("add", "d", exit_code=1)
    assert f"'{shown}' has a name that is not UTF-8 or holds a control character" in result.stderr, result.stderr
    assert not (workspace.root / "d.pipe").exists()


def test_a_tracked_directory_stays_restorable_once_the_bad_name_is_excluded(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"a.txt": "a\n", "new\nline": "x\n", ".pipeignore": "new*\n"}})
    cli.run("add", "d")
    shutil.rmtree(workspace.root / "d")
    cli.run("checkout")
    assert workspace.read("d/a.txt") == "a\n"


def test_adding_a_file_whose_name_is_not_utf8_is_refused_by_name(workspace: Workspace, cli: Cli) -> None:
    name = os.fsdecode(b"data-\xff")
    (workspace.root / name).write_text("x\n")
    result = cli.run("add", name, exit_code=1)
    assert "'data-\\xff' is not a UTF-8 name" in result.stderr, result.stderr
    assert not any(p.name.endswith(".pipe") and p.is_file() for p in workspace.root.iterdir())
