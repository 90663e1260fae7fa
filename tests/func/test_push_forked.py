"""Push to a local remote with packs built by forked processes (`remote.packwrite`): everything
round-trips, an object failing in a child is reported by path like any other, a child that dies
has its share done again, and an interrupt leaves no pack visible without its index and no
built pack behind in the remote's tmp/."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from pipeline_engine.ops.transfer import push
from pipeline_engine.remote import packed, packwrite
from pipeline_engine.remote.pack import MAX_ROWS
from tests.conftest import Cli, Workspace
from tests.packutil import index_of

FILES = {f"{i:03}.txt": f"file {i}\n" * (20 + i % 7) for i in range(60)}  # 140-270 bytes each


@pytest.fixture
def builders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Pushes of 40+ objects to a local remote fork one builder per share, on 2 idle cores (whatever
    the runner has) as if no other thread ran (the runner's do); returns a file where each
    building process writes its pid."""
    monkeypatch.setattr(packwrite, "FORK_MIN", 20)
    monkeypatch.setattr("pipeline_engine.core.forked.threading.active_count", lambda: 1)
    monkeypatch.setattr("pipeline_engine.core.forked.os.sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(packwrite, "free_cores", lambda: 2)
    pids = tmp_path / "builder-pids"
    real = packwrite.build

    def build(packs: packed.Packs, group: object, sink: packwrite.Sink) -> packwrite.Built | None:
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(packs, group, sink)  # type: ignore[arg-type]

    monkeypatch.setattr(packwrite, "build", build)
    return pids


def _pids(path: Path) -> set[int]:
    return {int(line) for line in path.read_text().split()} if path.exists() else set()


def _oid(text: str) -> str:
    return hash_bytes(text.encode())


def _child_share(names: list[str]) -> list[str]:
    """The names whose objects the child builds: the upper half of the oids (shares are oid ranges)."""
    return sorted(names, key=lambda n: _oid(FILES[n]))[len(names) // 2 + 5:]


def test_packs_built_by_two_processes_round_trip(workspace: Workspace, cli: Cli, tmp_path: Path, builders: Path) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    cli.run("push")
    assert len(_pids(builders)) == 2 and os.getpid() in _pids(builders), "one share here, one in a child"
    packs = sorted((store / "packs").glob("*.pack"))
    assert len(packs) == 2 and all(p.with_suffix(".idx").exists() for p in packs)
    rows = sorted(r.oid for p in packs for r in index_of(p).rows)
    assert rows == sorted(_oid(t) for t in FILES.values()), "every object once, in one of the two packs"
    assert not list((store / "tmp").iterdir()), "nothing left in the remote's tmp/"
    cli.run("status", "--cloud", "--exit-code")
    workspace.commit("data")
    clone = workspace.clone()
    cli.run("pull")
    assert all((clone.root / "data/files" / n).read_text() == t for n, t in FILES.items())
    cli.run("status", "--cloud", "--exit-code")


def test_objects_failing_in_a_child_are_reported_by_path_and_the_rest_arrive(
    workspace: Workspace, cli: Cli, tmp_path: Path, builders: Path
) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    corrupt, unreadable = _child_share(list(FILES))[:2]
    cache = workspace.root / ".pipe/cache/objects"
    damaged = cache / oid_to_relpath(_oid(FILES[corrupt]))
    damaged.chmod(0o644)
    damaged.write_text("X" * len(FILES[corrupt]))  # same size, other bytes: found out only as it is packed
    blocked = cache / oid_to_relpath(_oid(FILES[unreadable]))
    blocked.chmod(0o644)
    blocked.unlink()
    blocked.mkdir()  # opens, then cannot be read
    result = cli.run("push", exit_code=1)
    assert len(_pids(builders)) == 2
    assert f"data/files/{corrupt}" in result.stderr and "corrupt in the cache" in result.stderr
    assert f"data/files/{unreadable}" in result.stderr
    pushed = {r.oid for p in (store / "packs").glob("*.pack") for r in index_of(p).rows}
    expected = {_oid(t) for n, t in FILES.items() if n not in (corrupt, unreadable)}
    assert pushed == expected
    assert not list((store / "tmp").iterdir())
    assert not any(p.suffix == ".dir" for p in store.rglob("*")), "no manifest whose files are missing"


def test_a_child_that_dies_has_its_share_built_here(
    workspace: Workspace, cli: Cli, tmp_path: Path, builders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    here = os.getpid()
    real = packwrite.build

    def build(packs: packed.Packs, group: object, sink: packwrite.Sink) -> packwrite.Built | None:
        if os.getpid() != here:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(packs, group, sink)  # type: ignore[arg-type]

    monkeypatch.setattr(packwrite, "build", build)
    (result,) = push(workspace.project())
    assert result.transferred == len(FILES) + 1 and not result.failed
    assert _pids(builders) == {here}, "the child died before building; both shares were built here"
    rows = sorted(r.oid for p in (store / "packs").glob("*.pack") for r in index_of(p).rows)
    assert rows == sorted(_oid(t) for t in FILES.values())
    cli.run("status", "--cloud", "--exit-code")


def test_an_interrupt_while_packs_are_published_leaves_each_visible_pack_with_its_index(
    workspace: Workspace, cli: Cli, tmp_path: Path, builders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    real = packed.Packs.upload
    calls: list[Path] = []

    def upload(self: packed.Packs, local_pack: Path, index: object) -> None:
        calls.append(local_pack)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(self, local_pack, index)  # type: ignore[arg-type]

    monkeypatch.setattr(packed.Packs, "upload", upload)
    with pytest.raises(KeyboardInterrupt):
        push(workspace.project())
    assert len(_pids(builders)) == 2 and len(calls) == 2
    visible = sorted((store / "packs").iterdir())
    assert [p.suffix for p in visible] == [".idx", ".pack"], "the first pack is up with its index, the second not"
    assert not list((store / "tmp").iterdir()), "the built pack that was not published is not left behind"
    monkeypatch.setattr(packed.Packs, "upload", real)
    (result,) = push(workspace.project())
    assert not result.failed
    cli.run("status", "--cloud", "--exit-code")


def test_an_interrupt_while_shares_are_built_makes_no_pack_visible(
    workspace: Workspace, tmp_path: Path, builders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    here = os.getpid()
    real = packwrite.build

    def build(packs: packed.Packs, group: object, sink: packwrite.Sink) -> packwrite.Built | None:
        if os.getpid() == here:
            raise KeyboardInterrupt  # the children are stopped and reaped before it propagates
        return real(packs, group, sink)  # type: ignore[arg-type]

    monkeypatch.setattr(packwrite, "build", build)
    with pytest.raises(KeyboardInterrupt):
        push(workspace.project())
    assert not (store / "packs").exists() or not list((store / "packs").iterdir())


def test_a_busy_machine_builds_in_one_process(
    workspace: Workspace, tmp_path: Path, builders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packwrite, "free_cores", lambda: 1)  # another process runs on the other core
    workspace.track({"data/files": FILES})
    workspace.add_remote(tmp_path / "remote-store")
    (result,) = push(workspace.project())
    assert not result.failed and _pids(builders) == {os.getpid()}


def test_shares_split_the_bytes_evenly_in_oid_order_within_the_pack_limits() -> None:
    items = [(f"{i:032x}", f"/f{i}", 100 + 50 * (i % 3)) for i in range(99, -1, -1)] + [("0" * 32, "/again", 100)]
    whole = sum(100 + 50 * (i % 3) for i in range(100))

    def size(group: Sequence[tuple[str, object, int]]) -> int:
        return sum(n for _, _, n in group)

    halves = packwrite.group_items(items, pack_size=10**9, shares=2)
    assert len(halves) == 2 and abs(size(halves[0]) - whole / 2) <= 200, "about half the bytes each"
    flat = [oid for g in halves for oid, _, _ in g]
    assert flat == sorted({oid for oid, _, _ in items}), "sorted, each oid once"
    assert halves[0][0][1] == "/f0", "the first of an oid's paths"
    small = packwrite.group_items(items, pack_size=2500, shares=2)
    assert all(size(g) <= 2500 for g in small) and len(small) > 2
    assert not any(g[0][0] < halves[1][0][0] <= g[-1][0] for g in small), "no pack spans two shares"
    assert len(packwrite.group_items(items, pack_size=10**9)) == 1
    assert len(packwrite.group_items(items, pack_size=10**9, shares=2)[0]) <= MAX_ROWS
