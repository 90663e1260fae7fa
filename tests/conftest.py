"""Shared fixtures: a real git repository with a pipe project (`workspace`) and a CLI runner (`cli`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from pipeline_engine.cli import cli as pipe_cli
from pipeline_engine.project import Project

GIT_ENV = {
    "GIT_AUTHOR_NAME": "pipe tests",
    "GIT_AUTHOR_EMAIL": "tests@pipe.invalid",
    "GIT_COMMITTER_NAME": "pipe tests",
    "GIT_COMMITTER_EMAIL": "tests@pipe.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read the developer's git config and always have an identity."""
    home = tmp_path_factory.getbasetemp() / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    # nor pipe's global and system config (pipe config --global/--system)
    monkeypatch.setenv("PIPE_GLOBAL_CONFIG_DIR", str(home / "pipe-global"))
    monkeypatch.setenv("PIPE_SYSTEM_CONFIG_DIR", str(home / "pipe-system"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


def git(root: Path, *args: str) -> str:
    """Run git in `root` and return stdout; fails the test on error."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


def write_tree(root: Path, files: Mapping[str, Any]) -> None:
    """Write nested dicts as directories and str/bytes values as files."""
    for name, value in files.items():
        path = root / name
        if isinstance(value, Mapping):
            path.mkdir(parents=True, exist_ok=True)
            write_tree(path, value)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(value, bytes):
                path.write_bytes(value)
            else:
                path.write_text(value)


@dataclass
class Workspace:
    """A temporary git repository with an initialised pipe project; cwd is its root."""

    root: Path

    def write(self, files: Mapping[str, Any]) -> None:
        """Write files, e.g. `write({"data": {"raw.csv": "a,b\\n"}})`."""
        write_tree(self.root, files)

    def write_pipeline(self, stages: Mapping[str, Any], **top: Any) -> None:
        """Write pipeline.yaml with `stages` and optional top-level keys (vars, params, ...)."""
        (self.root / "pipeline.yaml").write_text(yaml.safe_dump({**top, "stages": dict(stages)}, sort_keys=False))

    def read(self, relpath: str) -> str:
        """A file's text."""
        return (self.root / relpath).read_text()

    def git(self, *args: str) -> str:
        """Run git in the workspace."""
        return git(self.root, *args)

    def commit(self, message: str = "commit") -> None:
        """Stage everything git does not ignore and commit it."""
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def project(self) -> Project:
        """A freshly opened Project for the workspace."""
        return Project(self.root)

    def snapshot(self) -> dict[str, bytes]:
        """Every file outside .git/ and the cache, for 'nothing changed' assertions."""
        out: dict[str, bytes] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root)
            dirnames[:] = [d for d in dirnames if not (rel == Path(".") and d == ".git")]
            if rel.parts[:2] == (".pipe", "tmp"):
                continue
            for f in filenames:
                p = Path(dirpath) / f
                out[(rel / f).as_posix()] = p.read_bytes() if not p.is_symlink() else os.readlink(p).encode()
        return out


@pytest.fixture(scope="session")
def _workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "repo"
    root.mkdir()
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, env=env)
    subprocess.run(["git", "config", "user.name", "pipe tests"], cwd=root, check=True)
    subprocess.run(["git", "config", "user.email", "tests@pipe.invalid"], cwd=root, check=True)
    Project.init(root)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=root, check=True, env=env)
    return root


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _workspace_template: Path) -> Workspace:
    """A git repo with `pipe init` done and committed; cwd is its root."""
    root = tmp_path / "ws"
    shutil.copytree(_workspace_template, root, symlinks=True)
    monkeypatch.chdir(root)
    return Workspace(root)


@pytest.fixture
def git_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository without a pipe project; cwd is its root."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def bare_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory outside any git repository; cwd is it."""
    root = tmp_path / "bare"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return root


class Cli:
    """Runs `pipe` in-process through click's CliRunner."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def run(self, *args: str, exit_code: int | None = 0, input: str | None = None) -> Result:
        """Invoke `pipe ARGS`; assert the exit code (None to skip) with the output in the message."""
        result = self.runner.invoke(pipe_cli, list(args), catch_exceptions=False, input=input)
        if exit_code is not None:
            assert result.exit_code == exit_code, (
                f"pipe {' '.join(args)} exited {result.exit_code}, expected {exit_code}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result


@pytest.fixture
def cli() -> Iterator[Cli]:
    """The `pipe` CLI, in-process."""
    yield Cli()
