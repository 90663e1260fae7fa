r"""Shared fixtures: a real git repository with a pipe project (`workspace`) and a CLI runner (`cli`).

Build state in one call, then act and assert:

    workspace.track({"data/raw.csv": "a,b\n1,2\n", "data/images": {"1.png": "..."}})  # write + pipe add
    workspace.stage("train", "python train.py", deps=["data/raw.csv"], outs=["model.pkl"], params=["lr"])
    workspace.commit("data and pipeline")
    shas = workspace.history([{"params.yaml": "lr: 1\n"}, {"params.yaml": "lr: 2\n"}])  # one commit each
    store = workspace.add_remote(tmp_path / "store")       # or the `local_remote` fixture
    clone = workspace.clone()                               # a git clone; cwd moves there
    other = make_repo("other", tracked={"d.csv": "1"})      # a second project (fixture), cwd unchanged

Subprocess runs of `pipe` (e2e, reliability) go through `tests.procutil.pipe_process`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import settings

from pipeline_engine.cli import cli as pipe_cli
from pipeline_engine.project import Project

# Timings never decide a test: hypothesis's per-example deadline failed property tests on a loaded machine.
settings.register_profile("pipe", deadline=None)
settings.load_profile("pipe")

_Url = TypeVar("_Url", str, Path)

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


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    """Run in-process `pipe` in `path` (it finds its project from the cwd), then go back."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@dataclass
class Workspace:
    """A temporary git repository with an initialised pipe project; cwd is its root.

    `monkeypatch` is what `clone()` moves the cwd with (restored after the test); a Workspace built
    by hand (`Workspace(path)`) can do everything but clone.
    """

    root: Path
    monkeypatch: pytest.MonkeyPatch | None = field(default=None, repr=False, compare=False)

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

    def pipe(self, *args: str, exit_code: int | None = 0) -> Result:
        """Run `pipe ARGS` in-process in this workspace (whatever the cwd) and check its exit code."""
        with _cwd(self.root):
            return Cli().run(*args, exit_code=exit_code)

    def track(self, files: Mapping[str, Any]) -> list[Path]:
        """Write `files` and `pipe add` each top-level key in one call; returns their pointer paths.

        A key is one tracked path (slashes allowed); a str/bytes value makes it a file, a nested
        dict a directory: `track({"data/raw.csv": "a\\n", "data/images": {"1.png": "1"}})`.
        """
        self.write(files)
        self.pipe("add", *files)
        return [self.root / f"{name}.pipe" for name in files]

    def stage(self, name: str, cmd: str, *, deps: Sequence[Any] = (), outs: Sequence[Any] = (),
              params: Sequence[Any] = (), metrics: Sequence[Any] = ()) -> None:
        """Add (or replace) one stage in pipeline.yaml, keeping the other stages and top-level keys."""
        path = self.root / "pipeline.yaml"
        data = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
        entry: dict[str, Any] = {"cmd": cmd}
        for key, value in (("deps", deps), ("outs", outs), ("params", params), ("metrics", metrics)):
            if value:
                entry[key] = list(value)
        data.setdefault("stages", {})[name] = entry
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def lock(self) -> dict[str, Any]:
        """pipeline.lock as plain data."""
        data: dict[str, Any] = yaml.safe_load(self.read("pipeline.lock"))
        return data

    def history(self, commits: Sequence[Mapping[str, Any]]) -> list[str]:
        """Write each mapping of files (as `write`) and commit it: one commit each; returns their shas.

        E.g. three revisions whose params and metrics differ:
        `history([{"params.yaml": "lr: 1\\n", "metrics.json": '{"acc": 0.5}'}, {...}, {...}])`.
        """
        shas = []
        for number, files in enumerate(commits, 1):
            self.write(files)
            self.commit(f"revision {number}")
            shas.append(self.git("rev-parse", "HEAD").strip())
        return shas

    def add_remote(self, url: _Url, name: str = "store", *, default: bool = True) -> _Url:
        """`pipe remote add [-d] NAME URL`; returns `url` (a Path stays a Path, for looking inside)."""
        self.pipe("remote", "add", *(["-d"] if default else []), name, str(url))
        return url

    def clone(self, name: str = "clone") -> Workspace:
        """`git clone` this repository (its commits, not uncommitted work) next to it; cwd moves there."""
        assert self.monkeypatch is not None, "clone() needs a Workspace from the `workspace` fixture"
        dest = self.root.parent / name
        git(self.root.parent, "clone", "-q", str(self.root), str(dest))
        self.monkeypatch.chdir(dest)
        return Workspace(dest, self.monkeypatch)

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
    return Workspace(root, monkeypatch)


MakeRepo = Callable[..., Workspace]


@pytest.fixture
def make_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _workspace_template: Path) -> MakeRepo:
    """Build another project in one call: `make_repo(name, files=, tracked=, stages=, commits=)`.

    `tmp_path/name` gets git + `pipe init` (committed), then `files` (as `write`), `tracked` (as
    `track`) and `stages` (name -> stage dict, as `write_pipeline`), committed together when any
    is given, then one commit per mapping in `commits` (as `history`). The cwd does not move.
    """

    def build(name: str, *, files: Mapping[str, Any] | None = None, tracked: Mapping[str, Any] | None = None,
              stages: Mapping[str, Any] | None = None, commits: Sequence[Mapping[str, Any]] = ()) -> Workspace:
        repo = Workspace(tmp_path / name, monkeypatch)
        shutil.copytree(_workspace_template, repo.root, symlinks=True)
        repo.write(files or {})
        if tracked:
            repo.track(tracked)
        if stages:
            repo.write_pipeline(stages)
        if files or tracked or stages:
            repo.commit("files, data and stages")
        repo.history(commits)
        return repo

    return build


@pytest.fixture
def local_remote(workspace: Workspace, tmp_path: Path) -> Path:
    """A directory remote named 'store', the workspace's default (not created until a push)."""
    store = tmp_path / "remote-store"
    workspace.add_remote(store)
    return store


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
