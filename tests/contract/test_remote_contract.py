"""One contract for every kind of remote: round trips, idempotence, missing and corrupt objects, layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import Oid, hash_bytes
from pipeline_engine.errors import CorruptObjectError, ObjectNotFoundError, RemoteError
from pipeline_engine.remote.remote import Lookup, Remote
from tests.contract.conftest import is_packed


def _objects(tmp_path: Path, count: int) -> dict[Oid, Path]:
    """`count` distinct small files, keyed by their oid."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    out: dict[Oid, Path] = {}
    for i in range(count):
        data = f"object {i}\n".encode() * (i % 7 + 1)
        path = src / f"f{i}"
        path.write_bytes(data)
        out[hash_bytes(data)] = path
    return out


@pytest.mark.parametrize("lookup", [None, *Lookup])
def test_every_existence_lookup_gives_the_same_answer(
    remote: Remote, tmp_path: Path, lookup: Lookup | None
) -> None:
    objects = _objects(tmp_path, 80)
    stored = list(objects)[::2]
    failures = remote.put_many([(o, objects[o]) for o in stored])
    assert failures == {}
    absent = {hash_bytes(f"absent {i}".encode()) for i in range(40)}
    assert remote.missing(set(objects) | absent, lookup=lookup) == (set(objects) - set(stored)) | absent
    assert remote.missing(set(stored[:3]) | set(list(absent)[:3]), lookup=lookup) == set(list(absent)[:3])


def test_get_many_reports_missing_objects_and_transfers_the_rest(remote: Remote, tmp_path: Path) -> None:
    objects = _objects(tmp_path, 4)
    oids = list(objects)
    remote.put_many([(o, objects[o]) for o in oids[:3]])
    missing = hash_bytes(b"never pushed")
    done: list[str] = []
    failures = remote.get_many(
        [(o, tmp_path / f"got-{o}") for o in [*oids[:3], missing]], on_done=lambda o, e: done.append(o)
    )
    assert set(failures) == {missing}
    assert isinstance(failures[missing], ObjectNotFoundError)
    assert missing in str(failures[missing])
    assert sorted(done) == sorted([*oids[:3], missing])
    for oid in oids[:3]:
        assert (tmp_path / f"got-{oid}").read_bytes() == objects[oid].read_bytes()


def test_get_of_a_missing_object_names_the_remote(remote: Remote, tmp_path: Path) -> None:
    oid = hash_bytes(b"nowhere")
    with pytest.raises(ObjectNotFoundError, match=f"object '{oid}' is not on remote 'store'"):
        remote.get(oid, tmp_path / "dest")


def test_corrupt_remote_object_is_refused_by_the_store(remote: Remote, tmp_path: Path) -> None:
    (oid,) = _objects(tmp_path, 1)
    bad = tmp_path / "bad"
    bad.write_bytes(b"not what the oid says")
    remote.put(oid, bad)  # a damaged remote: the name does not match the content
    store = ObjectStore(tmp_path / "cache")
    store.tmp_dir.mkdir(parents=True)
    download = store.tmp_dir / "download"
    remote.get(oid, download)
    with pytest.raises(CorruptObjectError):
        store.put(oid, download)
    assert not store.exists(oid)
    assert [p.name for p in store.root.rglob("*") if p.is_file()] == ["download"], "nothing else left behind"


def test_layout_is_identical_to_the_local_store(remote: Remote, tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "cache")
    objects = _objects(tmp_path, 6)
    assert store.put_many(list(objects.items())) == {}
    manifest = store.put_bytes(b"[]", suffix=".dir")
    oids = [*objects, manifest]
    remote.put_many([(o, store.path_of(o)) for o in oids])
    local_relpaths = sorted(store.path_of(o).relative_to(store.root).as_posix() for o in oids)
    found = remote.fs.find(remote.root, detail=False)
    remote_relpaths = sorted(p[len(remote.root) + 1 :] for p in found)
    if is_packed(remote):  # the same objects, in one pack and its index
        assert len(remote_relpaths) == 2 and all(p.startswith("packs/") for p in remote_relpaths)
    else:
        assert remote_relpaths == local_relpaths
    assert sorted(remote.iter_oids()) == sorted(oids)
    alone = tmp_path / "alone"
    alone.write_bytes(b"sent on its own")
    single = hash_bytes(alone.read_bytes())
    remote.put(single, alone)  # one object alone is always loose, in the store's layout
    assert remote.fs.exists(f"{remote.root}/{single[:2]}/{single[2:]}")


def test_remove_deletes_objects_and_ignores_absent_ones(remote: Remote, tmp_path: Path) -> None:
    objects = _objects(tmp_path, 3)
    oids = list(objects)
    remote.put_many([(o, objects[o]) for o in oids])
    remote.remove([oids[0], hash_bytes(b"absent")])
    assert sorted(remote.iter_oids()) == sorted(oids[1:])


def test_iter_oids_of_an_empty_remote_is_empty(remote: Remote) -> None:
    assert list(remote.iter_oids()) == []


def test_unreachable_remote_raises_remote_error_naming_it(tmp_path: Path) -> None:
    from pipeline_engine.remote.open import open_remote

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    remote = open_remote("broken", str(blocker / "sub"), {}, base_dir=tmp_path)
    failures = remote.put_many([(hash_bytes(b"x"), blocker)])
    (error,) = failures.values()
    assert isinstance(error, RemoteError)
    assert "remote 'broken'" in str(error) and str(blocker / "sub") in str(error)


def test_bulk_transfer_stops_early_when_every_object_fails_the_same_way(tmp_path: Path) -> None:
    from pipeline_engine.remote.open import open_remote

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    remote = open_remote("broken", str(blocker / "sub"), {}, base_dir=tmp_path, jobs=2)
    objects = _objects(tmp_path, 40)
    with pytest.raises(RemoteError, match=r"remote 'broken' .* \(stopped after \d+ failures in a row"):
        remote.put_many([(o, p) for o, p in objects.items()])


def test_get_many_of_a_few_objects_returns_exactly_their_bytes(remote: Remote, tmp_path: Path) -> None:
    """A few objects of many: a packed remote reads their byte ranges, not the whole pack."""
    objects = _objects(tmp_path, 60)
    assert remote.put_many(list(objects.items())) == {}
    few = sorted(objects)[5:60:11]
    done: list[str] = []
    failures = remote.get_many([(o, tmp_path / f"few-{o}") for o in few], on_done=lambda o, e: done.append(o))
    assert failures == {} and sorted(done) == few
    for oid in few:
        assert (tmp_path / f"few-{oid}").read_bytes() == objects[oid].read_bytes()
    assert remote.transfer_order(reversed(few))[0] in few
