"""Path safety: every reader of a file from git x every way a path can escape, through the real CLI.

Each case writes a hostile file into a real project (a pointer, pipeline.lock, pipeline.yaml, a
directory manifest in the cache), runs the commands that read it, and asserts that nothing outside
the project, nothing in `.git` and nothing in `.pipe` changed (file digests before and after), and
that a refusal is a clean error (exit 1 naming the path), never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import Cli, Workspace

pytestmark = pytest.mark.reliability

# Lexical escapes: refused from the text alone.
LEXICAL = {
    "absolute": "{outside}/x",
    "dotdot": "../outside/x",
    "nested-dotdot": "sub/../../outside/x",
    "dot": ".",
    "empty": "",
    "git": ".git",
    "git-hooks": ".git/hooks",
    "git-case": ".GIT/hooks",
    "pipe-dir": ".pipe",
    "pipe-cache": ".pipe/cache/objects",
    "nul": "a\x00b",
    "newline": "a\nb",
}
# Real-filesystem escapes: the text is harmless, the symlinks in the workspace are not.
LINKED = {
    "parent-links-outside": ("ext", "{outside}", "ext/x"),
    "parent-links-into-git": ("g", ".git", "g/hooks"),
    "dir-links-outside": ("d", "{outside}", "d"),
    "dir-links-into-git": ("h", ".git", "h"),
}
ESCAPES = sorted(LEXICAL) + sorted(LINKED)


def _digests(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Path -> sha256 of every file under `root` (links by their target), without following links."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if rel.startswith(skip):
                continue
            if os.path.islink(path):
                out[rel] = "link:" + os.readlink(path)
            else:
                with open(path, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


@dataclass
class Scene:
    """A project with tracked payload data and an `outside` directory beside it."""

    ws: Workspace
    cli: Cli
    outside: Path
    payload_oid: str

    def path(self, escape: str) -> str:
        """The hostile path text for `escape`, creating the symlink it needs in the workspace."""
        if escape in LEXICAL:
            return LEXICAL[escape].format(outside=self.outside)
        name, target, path = LINKED[escape]
        os.symlink(target.format(outside=self.outside), self.ws.root / name)
        return path

    def protected(self) -> dict[str, dict[str, str]]:
        """Digests of everything a hostile file must never change."""
        return {
            "outside": _digests(self.outside),
            # git's index and logs change through the commands' own git calls (ls-files refreshes).
            ".git": _digests(self.ws.root / ".git", skip=("index", "logs")),
            ".pipe/cache": _digests(self.ws.root / ".pipe" / "cache" / "objects"),
            ".pipe/config.yaml": _digests(self.ws.root / ".pipe", skip=("cache", "tmp")),
        }


@pytest.fixture
def scene(workspace: Workspace, cli: Cli, tmp_path: Path) -> Scene:
    outside = tmp_path / "outside"
    (outside / "hooks").mkdir(parents=True)
    (outside / "x").write_text("precious\n")
    (outside / "hooks" / "post-commit").write_text("#!/bin/sh\necho precious\n")
    # A payload directory shaped like a git hook, as the reproduction uses.
    workspace.track({"payload": {"hooks": {"post-commit": "#!/bin/sh\ntouch HOOK-RAN\n"}}})
    workspace.add_remote(tmp_path / "remote", "r")
    cli.run("push")
    record = yaml.safe_load(workspace.read("payload.pipe"))["outs"][0]
    os.unlink(workspace.root / "payload.pipe")
    workspace.commit("payload")
    return Scene(workspace, cli, outside, record["oid"])


def _pointer(scene: Scene, path: str, oid: str) -> None:
    record = {"path": path, "hash": "xxh3_128", "oid": oid, "size": 1, "nfiles": 1}
    (scene.ws.root / "evil.pipe").write_text(yaml.safe_dump({"schema": 1, "outs": [record]}))


def _lock(scene: Scene, path: str, oid: str) -> None:
    scene.ws.write_pipeline({"s": {"cmd": "echo hi > o", "outs": ["o"]}})
    record = {"path": path, "hash": "xxh3_128", "oid": oid, "size": 1, "nfiles": 1}
    lock = {"schema": 1, "stages": {"s": {"cmd": "echo hi > o", "outs": [record]}}}
    (scene.ws.root / "pipeline.lock").write_text(yaml.safe_dump(lock))


def _manifest(scene: Scene, relpath: str, oid: str) -> str:
    """Store a hand-made manifest in the cache and point `data.pipe` at it; returns its oid."""
    import xxhash

    body = json.dumps([{"hash": oid, "isexec": False, "relpath": relpath, "size": 9}]).encode()
    moid = xxhash.xxh3_128_hexdigest(body) + ".dir"
    obj = scene.ws.root / ".pipe" / "cache" / "objects" / moid[:2] / moid[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(body)
    _pointer_named(scene, "data.pipe", "data", moid)
    return moid


def _pointer_named(scene: Scene, name: str, path: str, oid: str) -> None:
    record = {"path": path, "hash": "xxh3_128", "oid": oid, "size": 9, "nfiles": 1}
    (scene.ws.root / name).write_text(yaml.safe_dump({"schema": 1, "outs": [record]}))


# reader -> (write the hostile file for a path, the commands that read it)
Writer = Callable[[Scene, str], None]
READERS: dict[str, tuple[Writer, tuple[tuple[str, ...], ...]]] = {
    "pointer": (
        lambda s, p: _pointer(s, p, s.payload_oid),
        (("checkout", "--force"), ("pull",), ("status",), ("remove", "--outs", "evil.pipe"), ("push",)),
    ),
    "lock-out": (
        lambda s, p: _lock(s, p, s.payload_oid),
        (("checkout", "--force"), ("pull",), ("status",), ("gc", "-w", "--dry")),
    ),
    "stage-out": (
        lambda s, p: s.ws.write_pipeline({"s": {"cmd": "echo hi", "outs": [p]}}),
        (("repro",), ("status",), ("dag",)),
    ),
    "stage-dep": (
        lambda s, p: s.ws.write_pipeline({"s": {"cmd": "echo hi > o", "deps": [p], "outs": ["o"]}}),
        (("repro",), ("status",)),
    ),
    "stage-params": (
        lambda s, p: s.ws.write_pipeline({"s": {"cmd": "echo hi > o", "params": [{p: ["k"]}], "outs": ["o"]}}),
        (("repro",),),
    ),
    "stage-wdir": (
        lambda s, p: s.ws.write_pipeline({"s": {"cmd": "echo hi > o", "wdir": p, "outs": ["o"]}}),
        (("repro",),),
    ),
    "manifest-relpath": (
        lambda s, p: _manifest(s, p, "0" * 32),
        (("checkout", "--force"), ("status",), ("pull",)),
    ),
}


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("reader", sorted(READERS))
def test_hostile_path_reaches_nothing_outside_the_data(scene: Scene, reader: str, escape: str) -> None:
    if reader in ("stage-wdir",) and escape in ("dot", "empty"):
        pytest.skip("a wdir of '.' is the project root, which is valid")
    if reader == "manifest-relpath" and escape in ("parent-links-into-git", "dir-links-into-git"):
        pytest.skip("manifest paths are relative to the tracked directory, covered by the other kinds")
    write, commands = READERS[reader]
    path = scene.path(escape)
    write(scene, path)
    before = scene.protected()
    for args in commands:
        result = scene.cli.run(*args, exit_code=None)
        assert result.exit_code in (0, 1), f"pipe {' '.join(args)}: exit {result.exit_code}\n{result.output}"
        # Commands that act on the data must refuse; `status` may report the manifest as unusable.
        if escape in LEXICAL and reader != "stage-wdir" and not (reader.startswith("manifest") and args == ("status",)):
            assert result.exit_code == 1, f"pipe {' '.join(args)} accepted {path!r}:\n{result.output}"
        assert scene.protected() == before, f"pipe {' '.join(args)} changed a protected file via {path!r}"
    assert not (scene.ws.root / "HOOK-RAN").exists()


def test_manifest_hash_naming_a_path_never_reads_it(scene: Scene) -> None:
    secret = scene.outside / "x"
    _manifest(scene, "f", "../../../../../../../../.." + str(secret))
    result = scene.cli.run("checkout", "--force", exit_code=1)
    assert "not valid" in result.output or "oid" in result.output
    assert not (scene.ws.root / "data").exists()


def test_pointer_naming_git_does_not_plant_a_hook_through_pull(scene: Scene) -> None:
    """The issue's first reproduction: a pointer whose path is `.git` and whose data holds hooks/."""
    _pointer(scene, ".git", scene.payload_oid)
    scene.ws.commit("evil")
    clone = scene.ws.clone("victim")
    result = scene.cli.run("pull", exit_code=1)
    assert "evil.pipe" in result.output and ".git" in result.output
    assert not (clone.root / ".git" / "hooks" / "post-commit").exists()


def test_stage_out_naming_git_leaves_the_repository(scene: Scene) -> None:
    scene.ws.write_pipeline({"a": {"cmd": "echo hi", "outs": [".git"]}})
    result = scene.cli.run("repro", exit_code=1)
    assert "pipeline.yaml" in result.output and "'.git'" in result.output
    assert (scene.ws.root / ".git" / "HEAD").is_file()


def test_symlinked_parent_of_stage_out_deletes_nothing_outside(scene: Scene) -> None:
    (scene.outside / "models").mkdir()
    (scene.outside / "models" / "keep").write_text("keep")
    os.symlink(scene.outside, scene.ws.root / "ext")
    scene.ws.write_pipeline({"a": {"cmd": "mkdir -p ext/models", "outs": ["ext/models"]}})
    result = scene.cli.run("repro", exit_code=1)
    assert "symlink" in result.output
    assert (scene.outside / "models" / "keep").read_text() == "keep"


def test_committed_symlink_for_tracked_directory_is_neither_written_nor_emptied(scene: Scene) -> None:
    (scene.ws.root / "payload.pipe").write_text(
        yaml.safe_dump({"schema": 1, "outs": [{"path": "payload", "hash": "xxh3_128", "oid": scene.payload_oid,
                                                "size": 1, "nfiles": 1}]})
    )
    shutil.rmtree(scene.ws.root / "payload")
    os.symlink(scene.outside, scene.ws.root / "payload")
    before = _digests(scene.outside)
    for args in (("checkout", "--force"), ("pull",), ("remove", "--outs", "payload.pipe")):
        result = scene.cli.run(*args, exit_code=None)
        assert result.exit_code in (0, 1)
        assert _digests(scene.outside) == before, f"pipe {' '.join(args)} changed files outside the project"


def test_cache_dir_inside_git_from_a_cloned_config_is_refused(scene: Scene) -> None:
    config = scene.ws.root / ".pipe" / "config.yaml"
    config.write_text(config.read_text() + "cache:\n  dir: ../.git/cache\n")
    scene.ws.write({"f": "x\n"})
    result = scene.cli.run("add", "f", exit_code=1)
    assert "cache.dir" in result.output and "git directory" in result.output
    assert not (scene.ws.root / ".git" / "cache").exists()


@pytest.mark.parametrize("target", [".pipe/config.local.yaml", ".git/config"])
def test_committed_symlink_into_git_or_pipe_is_never_read_cached_or_pushed(scene: Scene, target: str) -> None:
    """A hostile repo links a stage out or dep to the victim's credentials (red-team finding)."""
    (scene.ws.root / ".pipe" / "config.local.yaml").write_text("remotes:\n  mine:\n    url: https://me:hunter2@h/p\n")
    os.symlink(target, scene.ws.root / "t")
    scene.ws.write_pipeline({"s": {"cmd": "true", "outs": [{"t": {"persist": True}}]}})
    scene.cli.run("commit", "-f", exit_code=1)
    scene.cli.run("repro", exit_code=None)
    scene.cli.run("push", exit_code=None)
    secret = (scene.ws.root / target).read_bytes()
    for obj in (scene.ws.root / ".pipe" / "cache" / "objects").rglob("*"):
        assert not obj.is_file() or obj.read_bytes() != secret, f"{target} was cached"
    remote = scene.ws.root.parent / "remote"
    for obj in remote.rglob("*"):
        assert not obj.is_file() or obj.read_bytes() != secret, f"{target} was pushed"


@pytest.mark.parametrize("path", ["x.pipe", "pipeline.yaml", "pipeline.lock", ".gitignore", ".pipeignore"])
def test_a_record_naming_one_of_pipes_own_files_is_refused(scene: Scene, path: str) -> None:
    """Red-team finding: `x.pipe` with `path: x.pipe`, or a lock out `pipeline.yaml`, was overwritten by checkout."""
    _pointer(scene, path, scene.payload_oid)
    before = scene.ws.snapshot()
    result = scene.cli.run("checkout", "--force", exit_code=1)
    assert "pipe's own files" in result.stderr
    assert scene.ws.snapshot() == before


def test_lock_outs_that_pipeline_yaml_does_not_declare_are_not_checked_out(scene: Scene) -> None:
    _lock(scene, "elsewhere", scene.payload_oid)  # the stage declares only 'o'
    scene.cli.run("checkout", "--force", exit_code=None)
    assert not (scene.ws.root / "elsewhere").exists()
