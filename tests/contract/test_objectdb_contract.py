"""One vocabulary contract for every object database: the local store and each kind of remote.

The same verbs must mean the same thing on both sides (core/objectdb.py): a command moving
objects between the cache and a remote relies on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import Oid, hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from pipeline_engine.core.objectdb import ObjectDB
from pipeline_engine.core.progress import NullProgress
from pipeline_engine.errors import ObjectNotFoundError, PipeError
from pipeline_engine.index.download import download_objects
from pipeline_engine.remote.remote import Remote
from tests.contract.conftest import is_packed


def _objects(tmp_path: Path, count: int) -> dict[Oid, Path]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    out: dict[Oid, Path] = {}
    for i in range(count):
        data = f"contract object {i}\n".encode() * (i % 5 + 1)
        path = src / f"f{i}"
        path.write_bytes(data)
        out[hash_bytes(data)] = path
    return out


def _files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_both_sides_satisfy_the_protocol(db: ObjectDB) -> None:
    assert isinstance(db, ObjectDB)


def test_typing_level_both_sides_are_object_dbs(tmp_path: Path, remote: Remote) -> None:
    # mypy proves the same in the package (`_CHECK_PROTOCOL` in cache/store.py and remote/remote.py).
    store: ObjectDB = ObjectStore(tmp_path / "o")
    rem: ObjectDB = remote
    assert isinstance(store, ObjectDB) and isinstance(rem, ObjectDB)


def test_put_then_get_returns_the_same_bytes(db: ObjectDB, tmp_path: Path) -> None:
    ((oid, path),) = _objects(tmp_path, 1).items()
    db.put(oid, path)
    db.get(oid, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == path.read_bytes()


def test_exists_and_missing_agree(db: ObjectDB, tmp_path: Path) -> None:
    objects = _objects(tmp_path, 6)
    stored = list(objects)[:4]
    assert db.put_many([(o, objects[o]) for o in stored]) == {}
    absent = {hash_bytes(b"never stored"), hash_bytes(b"nor this")}
    everything = set(objects) | absent
    assert db.missing(everything) == everything - set(stored)
    assert {o for o in everything if db.exists(o)} == set(stored)
    assert db.missing([]) == set()
    assert sorted(db.iter_oids()) == sorted(stored)


def test_put_is_idempotent(db: ObjectDB, tmp_path: Path) -> None:
    ((oid, path),) = _objects(tmp_path, 1).items()
    db.put(oid, path)
    db.put(oid, path)
    assert db.put_many([(oid, path), (oid, path)]) == {}
    assert list(db.iter_oids()) == [oid]


def test_bulk_calls_report_each_object_once(db: ObjectDB, tmp_path: Path) -> None:
    objects = _objects(tmp_path, 5)
    put_done: list[tuple[str, PipeError | None]] = []
    assert db.put_many(list(objects.items()), on_done=lambda o, e: put_done.append((o, e))) == {}
    assert sorted(put_done, key=lambda d: d[0]) == sorted((o, None) for o in objects)
    absent = hash_bytes(b"absent")
    got: list[str] = []
    failures = db.get_many(
        [(o, tmp_path / f"got-{o}") for o in [*objects, absent]], on_done=lambda o, e: got.append(o)
    )
    assert set(failures) == {absent} and isinstance(failures[absent], ObjectNotFoundError)
    assert sorted(got) == sorted([*objects, absent])
    for oid, path in objects.items():
        assert (tmp_path / f"got-{oid}").read_bytes() == path.read_bytes()
    assert not (tmp_path / f"got-{absent}").exists()


def test_get_of_a_missing_object_raises_object_not_found(db: ObjectDB, tmp_path: Path) -> None:
    oid = hash_bytes(b"nowhere")
    with pytest.raises(ObjectNotFoundError, match=oid):
        db.get(oid, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_remove_deletes_objects_and_ignores_absent_ones(db: ObjectDB, tmp_path: Path) -> None:
    objects = _objects(tmp_path, 3)
    oids = list(objects)
    db.put_many(list(objects.items()))
    db.remove([oids[0], hash_bytes(b"absent")])
    assert sorted(db.iter_oids()) == sorted(oids[1:])
    assert db.missing(oids) == {oids[0]}
    db.remove([])


def test_a_corrupt_ingest_is_refused_and_leaves_nothing_behind(db: ObjectDB, tmp_path: Path) -> None:
    """Whichever side an object comes from, bytes that do not hash to its oid never enter the cache."""
    oid = hash_bytes(b"what the name promises")
    bad = tmp_path / "bad"
    bad.write_bytes(b"something else")
    cache = ObjectStore(tmp_path / "cache" / "objects") if isinstance(db, Remote) else ObjectStore(tmp_path / "local")
    if isinstance(db, Remote):
        db.put(oid, bad)  # a damaged remote: the name does not match the content
        done, _, failures = download_objects(cache, db, {oid: "data/file"}, NullProgress(), "fetch")
        assert done == set() and [f.oid for f in failures] == [oid]
        assert "corrupt" in failures[0].reason
    else:
        with pytest.raises(PipeError):
            cache.put(oid, bad)
        assert cache.put_many([(oid, bad)]).keys() == {oid}
    assert not cache.exists(oid)
    assert _files_under(cache.root) == [], "no object and no temporary file left behind"


def test_layout_is_the_shared_fan_out(db: ObjectDB, tmp_path: Path) -> None:
    objects = _objects(tmp_path, 4)
    db.put_many(list(objects.items()))
    if isinstance(db, Remote):
        start = len(db.root) + 1
        found = sorted(p[start:] for p in db.fs.find(db.root, detail=False))
        if is_packed(db):  # small objects sent together: one pack and its index, nothing loose
            assert [p.rpartition(".")[2] for p in found] == ["idx", "pack"]
            assert all(p.startswith("packs/") for p in found)
            assert sorted(db.iter_oids()) == sorted(objects)
            return
    else:
        assert isinstance(db, ObjectStore)
        found = _files_under(db.root)
    assert found == sorted(oid_to_relpath(o) for o in objects)
