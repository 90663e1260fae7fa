""".pipeignore (gitignore syntax, as DVC's .dvcignore): files it matches are not part of a directory's hash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Cli, Workspace
from tests.func.repro_helpers import Counter


def _nfiles(workspace: Workspace, pointer: str) -> int:
    return int(yaml.safe_load(workspace.read(pointer))["outs"][0]["nfiles"])


def test_add_skips_ignored_files_and_directories(workspace: Workspace, cli: Cli) -> None:
    workspace.write({
        ".pipeignore": "# editor files\n*.swp\nscratch/\n",
        "d": {"a.txt": "a", "a.txt.swp": "x", "scratch": {"big": "x"}, "sub": {"b.txt": "b", "keep.swp": "k"}},
    })
    (workspace.root / "d/sub/.pipeignore").write_text("!keep.swp\n")
    cli.run("add", "d")
    # a.txt, sub/b.txt, sub/keep.swp (re-included by the nested file), sub/.pipeignore itself
    assert _nfiles(workspace, "d.pipe") == 4
    shutil_rm = workspace.root / "d/a.txt.swp"
    shutil_rm.write_text("changed")  # an ignored file changing is no change
    assert "up to date" in cli.run("status").output
    (workspace.root / "d/a.txt").write_text("changed")
    assert "modified" in cli.run("status", exit_code=None).output


def test_add_refuses_a_path_the_pipeignore_hides_naming_the_rule(workspace: Workspace, cli: Cli) -> None:
    # DVC refuses `dvc add` of a path .dvcignore matches: nothing is tracked or git-ignored
    workspace.write({
        ".pipeignore": "*.log\n\n!keep.log\nlogs/\n",
        "d": {"x.log": "x", "keep.log": "k", "logs": {"q": "q"}, "tmp1": "t", ".pipeignore": "tmp*\n"},
    })
    before = workspace.snapshot()
    for path, rule in (("d/x.log", ".pipeignore: '*.log'"), ("d/logs", ".pipeignore: 'logs/'"),
                       ("d/logs/q", ".pipeignore: 'logs/'"), ("d/tmp1", "d/.pipeignore: 'tmp*'")):
        assert f"'{path}' is ignored by {rule}" in cli.run("add", path, exit_code=1).stderr
    assert workspace.snapshot() == before
    cli.run("add", "d/keep.log")  # negated: tracked as usual


def test_a_nested_pipeignore_applies_only_below_its_directory(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"x.log": "1", "inner": {".pipeignore": "*.log\n", "y.log": "2", "z": "3"}}})
    cli.run("add", "d")
    assert _nfiles(workspace, "d.pipe") == 3  # x.log, inner/.pipeignore, inner/z


def test_checkout_force_keeps_ignored_files(workspace: Workspace, cli: Cli) -> None:
    workspace.write({".pipeignore": "*.tmp\n", "d": {"a": "a"}})
    cli.run("add", "d")
    workspace.write({"d": {"mine.tmp": "keep", "extra": "goes"}})
    cli.run("checkout", "--force", "d")
    assert (workspace.root / "d/mine.tmp").read_text() == "keep"
    assert not (workspace.root / "d/extra").exists()


def test_a_pycache_appearing_in_a_dir_dep_does_not_rerun_when_ignored(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    counter = Counter(tmp_path / "counts")
    workspace.write({".pipeignore": "__pycache__/\n", "src": {"mod.py": "X = 1\n"}})
    workspace.write_pipeline({
        "s": {"cmd": counter.cmd("s", "mkdir -p src/__pycache__ && echo c > src/__pycache__/mod.pyc && cp src/mod.py out.txt"),
              "deps": ["src"], "outs": ["out.txt"]},
    })
    cli.run("repro")
    assert (workspace.root / "src/__pycache__/mod.pyc").exists()
    cli.run("repro")
    assert counter.snapshot() == {"s": 1}
    (workspace.root / "src/mod.py").write_text("X = 2\n")
    cli.run("repro")
    assert counter.snapshot() == {"s": 2}


@pytest.mark.parametrize("with_ignore", [False, True])
def test_status_imports_pathspec_only_when_a_pipeignore_exists(workspace: Workspace, cli: Cli, with_ignore: bool) -> None:
    workspace.write({"d": {"a": "a"}})
    cli.run("add", "d")
    if with_ignore:
        workspace.write({".pipeignore": "*.tmp\n"})
    (workspace.root / "d/b").write_text("b")  # status must scan the directory again
    probe = ("import sys\nfrom pipeline_engine.cli import cli\n"
             "try:\n    cli.main(args=['status'], prog_name='pipe', standalone_mode=False)\n"
             "except BaseException:\n    pass\n"
             "print('PATHSPEC' if 'pathspec' in sys.modules else 'LIGHT')\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=workspace.root, capture_output=True, text=True,
                         check=False)
    assert out.stdout.strip().endswith("PATHSPEC" if with_ignore else "LIGHT"), (out.stdout, out.stderr)
