"""Corruption: damaged cache objects and manifests never reach the workspace, for every cache type.

Each trial tracks a directory and two single files, pushes them to a local remote, then damages
one object (a byte flipped, the file truncated, or deleted): a file of the directory, a single
file, or the directory's manifest, chosen by a seeded random generator. Then:

- `status` never says "up to date" while a workspace file's bytes differ from its recorded oid;
- `checkout` exits 1 naming the damaged path with the hint `pipe pull`, writes every other path,
  writes no wrong byte anywhere, and a corrupt object is in the quarantine (not in the cache);
- `pull` then fetches the object again and checks it out: every byte right, status clean,
  `cache verify` clean.

Remote damage: a corrupt or missing object on the remote is reported by `fetch`/`pull` with its
path and oid; nothing corrupt enters the cache and the other objects are fetched.
Trials per case: PIPE_TRIALS (default 1); the seed is in every assertion message.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from tests.conftest import Cli, Workspace

pytestmark = pytest.mark.reliability

CACHE_TYPES = ["copy", "reflink,copy", "hardlink", "symlink"]
DAMAGES = ["flip", "truncate", "delete"]
TARGETS = ["dir-file", "single-file", "manifest"]
TRIALS = int(os.environ.get("PIPE_TRIALS", "1"))


def _data(rng: random.Random) -> dict[str, bytes]:
    files = {f"data/images/{i:02}.bin": rng.randbytes(rng.randint(1, 3000)) for i in range(8)}
    files["data/model.bin"] = rng.randbytes(5000)
    files["data/labels.csv"] = b"id,label\n" + b"".join(f"{i},{i % 3}\n".encode() for i in range(200))
    return files


def _configure(workspace: Workspace, cache_type: str, remote: Path) -> None:
    config = workspace.root / ".pipe/config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data.setdefault("cache", {})["type"] = cache_type
    config.write_text(yaml.safe_dump(data))
    workspace.add_remote(remote)


def _track(workspace: Workspace, cli: Cli, files: dict[str, bytes]) -> None:
    workspace.write(files)
    cli.run("add", "data/images", "data/model.bin", "data/labels.csv")
    cli.run("push")
    workspace.commit("data")


def _obj(workspace: Workspace, oid: str) -> Path:
    return workspace.root / ".pipe/cache/objects" / oid_to_relpath(oid)


def _manifest_oid(workspace: Workspace) -> str:
    return str(yaml.safe_load((workspace.root / "data/images.pipe").read_text())["outs"][0]["oid"])


def _damage(path: Path, how: str, rng: random.Random) -> None:
    os.chmod(path, 0o644)
    data = path.read_bytes()
    if how == "flip":
        at = rng.randrange(len(data))
        path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    elif how == "truncate":
        path.write_bytes(data[: rng.randrange(len(data))])
    else:
        path.unlink()


def _wrong_bytes(workspace: Workspace, files: dict[str, bytes]) -> list[str]:
    """Tracked workspace files that exist with content other than what was tracked."""
    return [rel for rel, content in files.items()
            if (workspace.root / rel).exists() and (workspace.root / rel).read_bytes() != content]


def _status_clean(cli: Cli) -> bool:
    result = cli.run("status", "--exit-code", exit_code=None)
    return result.exit_code == 0


def _remove_data(workspace: Workspace) -> None:
    for rel in ("data/images", "data/model.bin", "data/labels.csv"):
        path = workspace.root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_damaged_cache_object_is_reported_quarantined_and_repaired_by_pull(
    workspace: Workspace, cli: Cli, tmp_path: Path, cache_type: str, damage: str, target: str
) -> None:
    for trial in range(TRIALS):
        seed = random.randrange(2**32)
        rng = random.Random(seed)
        where = f"seed={seed} trial={trial} cache.type={cache_type} damage={damage} target={target}"
        if trial:
            _remove_data(workspace)
            for name in ("data/images.pipe", "data/model.bin.pipe", "data/labels.csv.pipe"):
                (workspace.root / name).unlink(missing_ok=True)
            shutil.rmtree(workspace.root / ".pipe/cache", ignore_errors=True)
        else:
            _configure(workspace, cache_type, tmp_path / "remote")
        files = _data(rng)
        _track(workspace, cli, files)
        if target == "manifest":
            oid, damaged = _manifest_oid(workspace), "data/images"
        elif target == "single-file":
            damaged = rng.choice(["data/model.bin", "data/labels.csv"])
            oid = hash_bytes(files[damaged])
        else:
            damaged = rng.choice(sorted(r for r in files if r.startswith("data/images/")))
            oid = hash_bytes(files[damaged])
        _damage(_obj(workspace, oid), damage, rng)

        # Linked workspace files may share the damaged bytes: status must then not say up to date.
        if _wrong_bytes(workspace, files):
            assert not _status_clean(cli), f"status clean over wrong bytes ({where})"

        _remove_data(workspace)
        result = cli.run("checkout", exit_code=None)
        assert result.exit_code == 1, f"checkout exited {result.exit_code} ({where}): {result.stderr}"
        assert "pipe pull" in result.stderr, where
        assert damaged in result.stderr or (target == "manifest" and "data/images" in result.stderr), (
            f"damaged path not named ({where}): {result.stderr}"
        )
        assert "Traceback" not in result.stderr, where
        assert _wrong_bytes(workspace, files) == [], f"wrong bytes written ({where})"
        intact = [r for r in files if not (r == damaged or r.startswith(damaged + "/"))]
        if target == "manifest":
            intact = [r for r in intact if not r.startswith("data/images/")]
        absent = [r for r in intact if not (workspace.root / r).exists()]
        assert absent == [], f"good paths not checked out ({where})"
        assert not _obj(workspace, oid).exists() or damage == "delete", f"damaged object left in the cache ({where})"
        quarantined = workspace.root / ".pipe/cache/quarantine" / oid
        assert quarantined.exists() == (damage != "delete"), f"quarantine ({where})"
        assert not _status_clean(cli), f"status clean after a refused checkout ({where})"

        pulled = cli.run("pull", exit_code=None)
        assert pulled.exit_code == 0, f"pull exited {pulled.exit_code} ({where}): {pulled.stderr}"
        assert _wrong_bytes(workspace, files) == [], f"wrong bytes after pull ({where})"
        assert all((workspace.root / r).exists() for r in files), f"not all paths restored ({where})"
        assert _status_clean(cli), f"status not clean after pull ({where})"
        cli.run("cache", "verify")


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_checkout_after_cache_verify_and_pull_repairs(
    workspace: Workspace, cli: Cli, tmp_path: Path, cache_type: str
) -> None:
    """The issue's other route: `cache verify` quarantines, `pull` fetches, `checkout` writes."""
    seed, files, _ = _tracked_then_damaged(workspace, cli, tmp_path, cache_type, kinds=("flip",))
    assert "corrupt" in cli.run("cache", "verify", exit_code=1).stderr, f"seed={seed}"
    cli.run("pull")
    cli.run("checkout")
    assert _wrong_bytes(workspace, files) == [] and all((workspace.root / r).exists() for r in files), f"seed={seed}"
    assert _status_clean(cli), f"seed={seed}"


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_remote_object_damage_is_reported_by_path_and_oid(
    workspace: Workspace, cli: Cli, tmp_path: Path, damage: str
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    remote = tmp_path / "remote"
    _configure(workspace, "copy", remote)
    cli.run("remote", "modify", "store", "pack_threshold", "0")  # loose objects (packs: test_pack_reliability.py)
    files = _data(rng)
    _track(workspace, cli, files)
    damaged = rng.choice(sorted(files))
    oid = hash_bytes(files[damaged])
    _damage(remote / oid_to_relpath(oid), damage, rng)
    clone = workspace.clone()
    for verb in ("fetch", "pull"):
        result = cli.run(verb, exit_code=1)
        assert damaged in result.stderr and oid in result.stderr, f"seed={seed} {verb}: {result.stderr}"
    assert not (clone.root / ".pipe/cache/objects" / oid_to_relpath(oid)).exists(), f"seed={seed}"
    cli.run("cache", "verify")
    # pull checks out every out whose objects all arrived: a damaged image holds back its directory.
    held_back = "data/images/" if damaged.startswith("data/images/") else damaged
    others = [r for r in files if not r.startswith(held_back)]
    assert _wrong_bytes(clone, files) == [], f"seed={seed}"
    assert all((clone.root / r).exists() for r in others), f"seed={seed}: other paths not pulled"


def test_manifest_listing_foreign_paths_is_never_written(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    """A manifest that hashes right but is hostile (from a remote) is refused before any write."""
    workspace.write({"data": {"images": {"a.bin": "a"}}})
    cli.run("add", "data/images")
    rows = [{"hash": hash_bytes(b"a"), "isexec": False, "relpath": "../../escape.txt", "size": 1}]
    raw = json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()
    from pipeline_engine.project import Project

    oid = Project(workspace.root).store.put_bytes(raw, suffix=".dir")
    pointer = workspace.root / "data/images.pipe"
    data = yaml.safe_load(pointer.read_text())
    data["outs"][0]["oid"] = oid
    pointer.write_text(yaml.safe_dump(data))
    shutil.rmtree(workspace.root / "data/images")
    result = cli.run("checkout", exit_code=1)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "escape.txt").exists() and not (workspace.root.parent / "escape.txt").exists()


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_pull_over_a_corrupt_cache_object_repairs_it_in_one_go(
    workspace: Workspace, cli: Cli, tmp_path: Path, cache_type: str
) -> None:
    """`pull` trusts objects already in the cache; checkout finds the corrupt one, pull fetches it again."""
    seed, files, _ = _tracked_then_damaged(workspace, cli, tmp_path, cache_type, kinds=("flip", "truncate"))
    cli.run("pull")
    assert (workspace.root / ".pipe" / "cache" / "quarantine").is_dir(), f"seed={seed}: nothing was quarantined"
    assert _wrong_bytes(workspace, files) == [] and all((workspace.root / r).exists() for r in files), f"seed={seed}"
    assert _status_clean(cli), f"seed={seed}"


def _tracked_then_damaged(
    workspace: Workspace, cli: Cli, tmp_path: Path, cache_type: str, *, kinds: tuple[str, ...]
) -> tuple[int, dict[str, bytes], str]:
    """Track random files (pushed to a remote), delete them, damage one cached object: (seed, files, damaged)."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    _configure(workspace, cache_type, tmp_path / "remote")
    files = _data(rng)
    _track(workspace, cli, files)
    _remove_data(workspace)
    damaged = rng.choice(sorted(files))
    _damage(_obj(workspace, hash_bytes(files[damaged])), rng.choice(kinds), rng)
    return seed, files, damaged


def test_a_hash_memo_that_is_not_a_database_is_set_aside_and_started_again(workspace: Workspace) -> None:
    """`.pipe/tmp/memo.sqlite` overwritten (a bad copy, a disk tool) made every command exit 70 with
    sqlite's 'file is not a database'; it only remembers hashes, so a new one is started."""
    workspace.track({"data": {"a.txt": "a\n", "b.txt": "b\n"}})
    workspace.commit("data")
    memo = workspace.root / ".pipe/tmp/memo.sqlite"
    for leftover in memo.parent.glob("memo.sqlite*"):
        leftover.unlink()
    memo.write_bytes(b"not sqlite\n" * 500)
    shutil.rmtree(workspace.root / "data")

    workspace.pipe("checkout")

    assert workspace.read("data/b.txt") == "b\n"
    assert "up to date" in workspace.pipe("status").stderr
    assert (workspace.root / ".pipe/tmp/memo.sqlite.corrupt").read_bytes().startswith(b"not sqlite")
