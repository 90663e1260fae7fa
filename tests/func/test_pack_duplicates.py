"""An object held by two packs (two pushes of the same objects at once): present while either pack
holds it, removed from both, kept once by gc's repacking, never counted as removed while a pack has it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.remote.open import open_remote
from pipeline_engine.remote.remote import Remote
from tests.conftest import Cli, Workspace
from tests.packutil import index_of

BIG = {f"a{i}.bin": f"a{i}" * 400 for i in range(4)}  # most of the first pack's bytes
SHARED = {f"b{i}.txt": f"shared {i}\n" for i in range(4)}
OTHER = {f"c{i}.txt": f"other {i}\n" for i in range(2)}


def _oids(files: dict[str, str]) -> set[str]:
    return {hash_bytes(t.encode()) for t in files.values()}


def _remote(store: Path) -> Remote:
    return open_remote("check", str(store), {}, base_dir=store)


def _overlapping_packs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A remote with pack 1 = BIG + SHARED and pack 2 = SHARED + OTHER (as two concurrent pushes leave it)."""
    src = tmp_path / "src"
    src.mkdir()
    files = {**BIG, **SHARED, **OTHER}
    for name, text in files.items():
        (src / name).write_text(text)
    store, other = tmp_path / "store", tmp_path / "other"

    def push(to: Path, names: dict[str, str]) -> Path:
        assert _remote(to).put_many([(hash_bytes(t.encode()), src / n) for n, t in names.items()]) == {}
        (pack,) = (to / "packs").glob("*.pack")
        return pack

    first = push(store, {**BIG, **SHARED})
    second = push(other, {**SHARED, **OTHER})
    for f in (second, second.with_suffix(".idx")):
        shutil.copy(f, store / "packs" / f.name)
    return store, first, store / "packs" / second.name


def test_an_object_in_two_packs_stays_while_either_holds_it(tmp_path: Path) -> None:
    store, first, second = _overlapping_packs(tmp_path)
    rem = _remote(store)
    by_pack = rem.packs.rows_by_pack()
    assert _oids(SHARED) <= set(by_pack[first.stem]) and _oids(SHARED) <= set(by_pack[second.stem])
    for doomed in (first, second):  # whichever pack goes first, the other still serves the shared objects
        rem = _remote(store)
        assert rem.missing(_oids(SHARED)) == set()
        keep = {f: f.read_bytes() for f in (doomed, doomed.with_suffix(".idx"))}
        for f in (doomed.with_suffix(".idx"), doomed):
            f.unlink()
        rem.packs.refresh()  # the same Remote lists again after another process deleted the pack
        assert rem.missing(_oids(SHARED)) == set()
        dest = tmp_path / "got"
        oid = hash_bytes(SHARED["b1.txt"].encode())
        rem.get(oid, dest)
        assert dest.read_text() == SHARED["b1.txt"]
        dest.unlink()
        for f, data in keep.items():
            f.write_bytes(data)


def test_remove_takes_an_object_out_of_every_pack_holding_it(tmp_path: Path) -> None:
    store, _, _ = _overlapping_packs(tmp_path)
    gone = hash_bytes(SHARED["b0.txt"].encode())
    _remote(store).remove([gone])
    fresh = _remote(store)
    assert gone not in set(fresh.iter_oids())
    assert fresh.missing(_oids(SHARED) | _oids(OTHER) | _oids(BIG)) == {gone}


def test_gc_keeps_a_live_object_of_two_packs_once_and_everything_live_fetchable(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    workspace.track({"data/a": BIG, "data/b": SHARED})
    store = workspace.add_remote(tmp_path / "remote-store")
    cli.run("remote", "modify", "store", "pack_threshold", "4096")
    cli.run("push")
    (first,) = [p for p in (store / "packs").glob("*.pack") if _oids(BIG) <= {r.oid for r in index_of(p).rows}]
    # Another clone pushes b and c at the same time to the same remote: its packs repeat b.
    workspace.track({"data/c": OTHER})
    side = workspace.add_remote(tmp_path / "side", name="side", default=False)
    cli.run("remote", "modify", "side", "pack_threshold", "4096")
    cli.run("push", "-r", "side", "data/b", "data/c")
    for f in [*(side / "packs").iterdir(), *side.glob("??/*")]:
        dest = store / f.relative_to(side)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
    (second,) = [p for p in (store / "packs").glob("*.pack") if _oids(OTHER) <= {r.oid for r in index_of(p).rows}]
    assert _oids(SHARED) <= {r.oid for r in index_of(second).rows} & {r.oid for r in index_of(first).rows}
    shutil.rmtree(workspace.root / "data/a")
    (workspace.root / "data/a.pipe").unlink()
    workspace.commit("b and c")
    result = cli.run("gc", "-w", "-c", "-f")
    assert "deleted" in result.stderr, result.stderr
    assert not first.exists() and second.exists(), "the pack of mostly dead objects goes, its live ones are kept once"
    held = [r.oid for p in (store / "packs").glob("*.pack") for r in index_of(p).rows]
    assert len(held) == len(set(held)), "every object in one pack only"
    assert _oids(SHARED) | _oids(OTHER) <= set(held)
    assert not _oids(BIG) & set(_remote(store).iter_oids())
    clone = workspace.clone()
    cli.run("pull")
    for name, text in {**SHARED}.items():
        assert (clone.root / "data/b" / name).read_text() == text
    assert (clone.root / "data/c/c1.txt").read_text() == OTHER["c1.txt"]


def test_gc_does_not_count_as_removed_a_dead_object_another_pack_keeps(tmp_path: Path) -> None:
    from pipeline_engine.remote.prune import prune_packs

    store, first, second = _overlapping_packs(tmp_path)
    b0 = hash_bytes(SHARED["b0.txt"].encode())
    keep = _oids(OTHER) | _oids(SHARED) - {b0}  # BIG and b0 are dead
    result = prune_packs(_remote(store).packs, keep, dry=False)
    # pack 1 (mostly BIG) goes: its live objects are all in pack 2, which is mostly live and stays
    assert [Path(p).name for p in result.deleted] == [first.name] and not first.exists() and second.exists()
    assert b0 in set(_remote(store).iter_oids())
    assert b0 not in result.removed, "an object still in pack 2 is not reported removed"
    assert set(result.removed) == _oids(BIG)
