"""Push packs small objects by the sizes their manifest records, without a stat each: an object
gone from the cache is still reported by path as not in the cache (and does not stop the push),
one whose cached bytes do not match the record is never sent wrong."""

from __future__ import annotations

from pathlib import Path

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from tests.conftest import Cli, Workspace
from tests.packutil import index_of

FILES = {f"{i:03}.txt": f"file {i}\n" * (20 + i % 7) for i in range(60)}


def _oid(text: str) -> str:
    return hash_bytes(text.encode())


def _cached(workspace: Workspace, name: str) -> Path:
    path = workspace.root / ".pipe/cache/objects" / oid_to_relpath(_oid(FILES[name]))
    path.chmod(0o644)
    return path


def _packed(store: Path) -> set[str]:
    return {r.oid for p in (store / "packs").glob("*.pack") for r in index_of(p).rows}


def test_objects_gone_from_the_cache_are_reported_by_path_and_the_rest_arrive(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    gone = sorted(FILES, key=lambda n: _oid(FILES[n]))[:10]  # the first ten packed: all fail before any succeeds
    for name in gone:
        _cached(workspace, name).unlink()
    result = cli.run("push", exit_code=1)
    assert all(f"data/files/{name}" in result.stderr for name in gone)
    assert result.stderr.count("not in the cache") >= len(gone) and "stopped after" not in result.stderr
    assert _packed(store) == {_oid(t) for n, t in FILES.items() if n not in gone}


def test_a_cached_object_shorter_than_its_record_is_reported_corrupt_and_not_sent(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    path = _cached(workspace, "007.txt")
    path.write_bytes(path.read_bytes()[:-5])
    result = cli.run("push", exit_code=1)
    assert "data/files/007.txt" in result.stderr and "corrupt in the cache" in result.stderr
    assert _packed(store) == {_oid(t) for n, t in FILES.items() if n != "007.txt"}


def test_a_cached_object_longer_than_its_record_sends_only_the_recorded_bytes(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    path = _cached(workspace, "007.txt")
    path.write_bytes(path.read_bytes() + b"trailing damage")
    cli.run("push")
    assert _packed(store) == {_oid(t) for t in FILES.values()}
    workspace.commit("data")
    clone = workspace.clone()
    cli.run("pull")
    assert all((clone.root / "data/files" / n).read_text() == t for n, t in FILES.items())
