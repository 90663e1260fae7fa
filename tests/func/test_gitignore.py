"""Git hygiene: .gitignore lines ignore exactly the tracked path; hints paste into a shell; file modes; long names."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, Workspace


def _is_ignored(workspace: Workspace, relpath: str) -> bool:
    proc = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", "--", relpath], cwd=workspace.root, check=False
    )
    assert proc.returncode in (0, 1), f"git check-ignore failed for {relpath!r}"
    return proc.returncode == 0


# (name to track, a sibling the unescaped pattern `/<name>` would also have ignored)
TRICKY_NAMES = [
    ("scan[1].csv", "scan1.csv"),
    ("#a", None),
    ("!b", None),
    (" lead", None),
    ("trail ", "trail"),
    ("a*b", "axxb"),
    ("q?", "qz"),
    ("back\\slash", None),
    ("sp ace[x]", "sp acex"),
]


@pytest.mark.parametrize(("name", "sibling"), TRICKY_NAMES, ids=[repr(n) for n, _ in TRICKY_NAMES])
def test_gitignore_line_ignores_exactly_the_tracked_path(
    workspace: Workspace, cli: Cli, name: str, sibling: str | None
) -> None:
    workspace.write({"data": {name: "rows\n", **({sibling: "other\n"} if sibling else {})}})
    cli.run("add", f"data/{name}")
    assert _is_ignored(workspace, f"data/{name}"), (workspace.read("data/.gitignore"), name)
    if sibling:
        assert not _is_ignored(workspace, f"data/{sibling}"), workspace.read("data/.gitignore")
    # What a user does next: the data itself must never be staged.
    workspace.git("add", "-A")
    staged = workspace.git("diff", "--cached", "--name-only", "-z").split("\0")
    assert f"data/{name}.pipe" in staged and f"data/{name}" not in staged, staged

    cli.run("remove", f"data/{name}.pipe")
    assert not _is_ignored(workspace, f"data/{name}")
    assert not (workspace.root / "data/.gitignore").exists()


def test_unignore_also_removes_an_older_unescaped_line(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"a*b": "1", "keep": "2"}})
    cli.run("add", "data/a*b")
    gitignore = workspace.root / "data/.gitignore"
    # As an older pipe wrote it, next to a line of the user's own.
    gitignore.write_text("/a*b\n/a\\*b\n*.log\n")
    cli.run("remove", "data/a*b.pipe")
    assert gitignore.read_text() == "*.log\n"


@pytest.mark.parametrize(
    "name", ["new\nline", "carriage\rreturn", "both\r\n", "tab\tname"], ids=["lf", "cr", "crlf", "tab"]
)
def test_names_git_cannot_ignore_are_refused_before_anything_changes(
    workspace: Workspace, cli: Cli, name: str
) -> None:
    workspace.write({"data": {name: "secret rows\n", "ok.csv": "1\n"}})
    before = workspace.snapshot()
    result = cli.run("add", "data/ok.csv", f"data/{name}", exit_code=1)
    assert "newline or another control character" in result.stderr
    assert "Traceback" not in result.output
    assert workspace.snapshot() == before


@pytest.mark.parametrize("cwd", [".", "data", "data/sub"])
def test_the_git_add_hint_is_shell_quoted_and_works_when_pasted(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch, cwd: str
) -> None:
    names = ["scan[1].csv", "it's here.csv", "$(touch pwned)", "a;b"]
    workspace.write({"data": {"sub": {}, **{n: f"{n}\n" for n in names}}})
    monkeypatch.chdir(workspace.root / cwd)
    result = cli.run("add", *(os.path.relpath(workspace.root / "data" / n) for n in names))
    hint = result.stderr.rpartition("to track the changes with git: ")[2].strip()
    assert hint.startswith("git add "), result.stderr
    subprocess.run(["sh", "-c", hint], cwd=workspace.root / cwd, check=True, capture_output=True)
    staged = set(workspace.git("diff", "--cached", "--name-only", "-z").split("\0")) - {""}
    assert staged == {*(f"data/{n}.pipe" for n in names), "data/.gitignore"}
    assert not list(workspace.root.rglob("pwned"))


def test_no_git_add_hint_without_changes(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"f.csv": "1\n"})
    assert "git add f.csv.pipe .gitignore" in cli.run("add", "f.csv").stderr
    assert "git add" not in cli.run("add", "f.csv").stderr


def test_no_git_add_hint_without_git(bare_dir: Path, cli: Cli) -> None:
    cli.run("init", "--no-scm")
    (bare_dir / "f.csv").write_text("1\n")
    result = cli.run("add", "f.csv")
    assert "git add" not in result.stderr and not (bare_dir / ".gitignore").exists()


# --- file modes: what pipe writes keeps the mode it had, or gets 0666 & ~umask ---


@pytest.fixture
def umask_002() -> Iterator[None]:
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_get_0666_minus_umask(workspace: Workspace, cli: Cli, umask_002: None) -> None:
    workspace.write({"data": {"f.csv": "1\n"}})
    workspace.write_pipeline({"s": {"cmd": "echo hi > out.txt", "outs": ["out.txt"]}})
    cli.run("add", "data/f.csv")
    cli.run("repro")
    cli.run("remote", "add", "r", "/tmp/somewhere")
    cli.run("remote", "modify", "--local", "r", "jobs", "2")
    for written in ("data/f.csv.pipe", "data/.gitignore", "pipeline.lock", ".gitignore",
                    ".pipe/config.local.yaml"):
        assert _mode(workspace.root / written) == 0o664, f"{written}: {oct(_mode(workspace.root / written))}"


def test_replaced_files_keep_their_mode(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"f.csv": "1\n", "g.csv": "2\n"}})
    workspace.write_pipeline({"s": {"cmd": "echo hi > out.txt", "outs": ["out.txt"]}})
    cli.run("add", "data/f.csv")
    cli.run("repro")
    chosen = {"data/.gitignore": 0o640, "data/f.csv.pipe": 0o604, ".pipe/config.yaml": 0o660,
              "pipeline.yaml": 0o755, "pipeline.lock": 0o600}
    for rel, mode in chosen.items():
        os.chmod(workspace.root / rel, mode)
    workspace.write({"data": {"f.csv": "changed\n"}})
    cli.run("add", "data/f.csv", "data/g.csv")          # rewrites the pointer and .gitignore
    cli.run("remote", "add", "r", "/tmp/somewhere")     # rewrites the config
    cli.run("freeze", "s")                              # rewrites pipeline.yaml
    cli.run("unfreeze", "s")
    workspace.write_pipeline({"s": {"cmd": "echo ho > out.txt", "outs": ["out.txt"]}})
    os.chmod(workspace.root / "pipeline.yaml", 0o755)
    cli.run("repro")                                    # rewrites the lock
    for rel, mode in chosen.items():
        assert _mode(workspace.root / rel) == mode, f"{rel}: {oct(_mode(workspace.root / rel))} != {oct(mode)}"
    leftovers = [p for p in workspace.root.rglob(".pipetmp-*") if ".pipe/cache" not in p.as_posix()]
    assert not leftovers


# --- long names: temp names stay short; a pointer name past NAME_MAX is a clear refusal ---


def test_a_245_character_name_can_be_added_and_checked_out(workspace: Workspace, cli: Cli) -> None:
    name = "n" * 245
    workspace.write({"data": {name: "long\n"}})
    cli.run("add", f"data/{name}")
    assert (workspace.root / f"data/{name}.pipe").is_file()
    assert _is_ignored(workspace, f"data/{name}")
    (workspace.root / "data" / name).unlink()
    cli.run("checkout")
    assert (workspace.root / "data" / name).read_text() == "long\n"


def test_a_name_whose_pointer_would_pass_name_max_is_refused(workspace: Workspace, cli: Cli) -> None:
    name = "n" * 251
    workspace.write({"data": {name: "long\n"}})
    before = workspace.snapshot()
    result = cli.run("add", f"data/{name}", exit_code=1)
    assert f"'data/{name}'" in result.stderr and "255 bytes" in result.stderr
    assert "Traceback" not in result.output
    assert workspace.snapshot() == before
