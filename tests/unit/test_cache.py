"""Object store, manifests, pointers and the hash memo."""

from __future__ import annotations

import os
import time
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_engine.cache.memo import HashMemo, stamp_of
from pipeline_engine.cache.pointer import Pointer, read_pointer, write_pointer
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.cache.tree import Tree, TreeEntry, diff_trees
from pipeline_engine.cache.workspace import scan
from pipeline_engine.core.hashing import Oid, hash_bytes
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import CacheError, CorruptObjectError, ObjectNotFoundError, SpecError


def test_store_add_is_write_once_read_only_and_idempotent(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    src = tmp_path / "f"
    src.write_bytes(b"data")
    oid = hash_bytes(b"data")
    assert store.put_many([(oid, src)]) == {}
    store.put(oid, src)  # present already: nothing changes
    path = store.path_of(oid)
    assert path.read_bytes() == b"data"
    assert not path.stat().st_mode & stat.S_IWUSR
    assert list(store.iter_oids()) == [oid]
    assert not [p for p in (tmp_path / "objects").rglob(".*")], "no temporary files left"


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=2048))
def test_store_read_returns_what_was_added(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    store = ObjectStore(tmp_path_factory.mktemp("s"))
    oid = store.put_bytes(data)
    assert store.read_bytes(oid) == data
    assert store.put_bytes(data) == oid


def test_store_detects_corrupt_and_missing_objects(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    oid = store.put_bytes(b"good")
    path = store.path_of(oid)
    os.chmod(path, 0o644)
    path.write_bytes(b"evil")
    with pytest.raises(CorruptObjectError):
        store.read_bytes(oid)
    assert not store.is_intact(oid)
    with pytest.raises(ObjectNotFoundError):
        store.read_bytes(hash_bytes(b"absent"))


def test_store_put_refuses_content_that_does_not_match(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "o")
    download = tmp_path / "dl"
    download.write_bytes(b"not what was asked")
    with pytest.raises(CorruptObjectError):
        store.put(hash_bytes(b"expected"), download)
    assert list(store.iter_oids()) == []
    assert not [p for p in (tmp_path / "o").rglob("*") if p.is_file()], "no temporary file left"


def _tree(files: dict[str, bytes]) -> Tree:
    return Tree.from_entries(TreeEntry(p, hash_bytes(b), len(b)) for p, b in files.items())


names = st.text(alphabet="abcxyz0", min_size=1, max_size=6)


@given(st.dictionaries(names, st.binary(max_size=32), min_size=1, max_size=8), st.randoms())
def test_tree_oid_does_not_depend_on_creation_order(files: dict[str, bytes], rnd: object) -> None:
    items = list(files.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert _tree(dict(items)).oid == _tree(files).oid


@given(st.dictionaries(names, st.binary(min_size=1, max_size=32), min_size=1, max_size=8), st.data())
def test_tree_oid_changes_when_any_byte_or_name_changes(files: dict[str, bytes], data: st.DataObject) -> None:
    victim = data.draw(st.sampled_from(sorted(files)))
    flipped = dict(files)
    content = bytearray(files[victim])
    content[0] ^= 1
    flipped[victim] = bytes(content)
    assert _tree(flipped).oid != _tree(files).oid
    renamed = dict(files)
    renamed[victim + "_"] = renamed.pop(victim)
    assert _tree(renamed).oid != _tree(files).oid


def test_tree_bytes_round_trip_and_unsafe_paths_are_refused() -> None:
    tree = _tree({"a/b": b"1", "c": b"2"})
    assert Tree.from_bytes(tree.to_bytes()) == tree
    bad = b'[{"hash":"00000000000000000000000000000000","isexec":false,"relpath":"../x","size":1}]'
    with pytest.raises(CacheError, match="leaves"):
        Tree.from_bytes(bad)


def test_diff_trees_reports_added_modified_deleted() -> None:
    old = _tree({"keep": b"1", "mod": b"2", "gone": b"3"}).by_path()
    new = _tree({"keep": b"1", "mod": b"x", "new": b"4"}).by_path()
    d = diff_trees(old, new)
    assert (d.added, d.modified, d.deleted) == (("new",), ("mod",), ("gone",))


def test_pointer_round_trip_and_validation(tmp_path: Path) -> None:
    p = Pointer("data/x.pipe", PathRecord("x", Oid("0" * 32), 5))
    (tmp_path / "data").mkdir()
    write_pointer(tmp_path, p)
    assert read_pointer(tmp_path, "data/x.pipe") == p
    assert "hash: xxh3_128" in (tmp_path / "data/x.pipe").read_text()
    (tmp_path / "data/y.pipe").write_text("schema: 1\nouts:\n- path: ../../etc\n  oid: abc\n  size: 1\n")
    with pytest.raises(SpecError, match="data/y.pipe: path .../../etc. leaves the project"):
        read_pointer(tmp_path, "data/y.pipe")


def test_memo_skips_rehash_of_unchanged_file_and_notices_changes(tmp_path: Path) -> None:
    memo = HashMemo(tmp_path / "memo.sqlite")
    f = tmp_path / "f"
    f.write_bytes(b"one")
    old = os.stat(f).st_mtime_ns - 10**9
    os.utime(f, ns=(old, old))
    first = scan(tmp_path, "f", memo)
    assert memo.get("f", stamp_of(os.stat(f))) == first.oid
    f.write_bytes(b"two")
    assert scan(tmp_path, "f", memo).oid == hash_bytes(b"two")


def test_memo_does_not_record_racy_entries(tmp_path: Path) -> None:
    memo = HashMemo(tmp_path / "memo.sqlite")
    f = tmp_path / "f"
    f.write_bytes(b"just written")
    # An mtime inside the racy window whatever the machine's load: a slow scan cannot age it out.
    soon = time.time_ns() + 2_000_000_000
    os.utime(f, ns=(soon, soon))
    scan(tmp_path, "f", memo)
    assert memo.get("f", stamp_of(os.stat(f))) is None


def test_pointer_schema_accepts_written_pointers_and_rejects_bad_ones(tmp_path: Path) -> None:
    import json

    import jsonschema
    import yaml

    import pipeline_engine

    schema = json.loads((Path(pipeline_engine.__file__).parent / "schemas/pointer.schema.json").read_text())
    write_pointer(tmp_path, Pointer("d.pipe", PathRecord("d", Oid("a" * 32 + ".dir"), 10, 3)))
    jsonschema.validate(yaml.safe_load((tmp_path / "d.pipe").read_text()), schema)
    write_pointer(tmp_path, Pointer("run.sh.pipe", PathRecord("run.sh", Oid("b" * 32), 10, isexec=True)))
    jsonschema.validate(yaml.safe_load((tmp_path / "run.sh.pipe").read_text()), schema)
    bad = {"schema": 1, "outs": [{"path": "../x", "hash": "md5", "oid": "zz", "size": -1}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    for path in (".git", ".PIPE", "..", ".", "a\nb"):
        hostile = {"schema": 1, "outs": [{"path": path, "hash": "xxh3_128", "oid": "a" * 32, "size": 1}]}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(hostile, schema)


def test_memo_is_safe_to_share_between_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    memo = HashMemo(tmp_path / "memo.sqlite")
    stamp = stamp_of(os.stat(tmp_path))
    old = stamp.__class__(stamp.ino, 1, stamp.size)

    def work(i: int) -> Oid | None:
        memo.put_many([(f"d/f{i}", old, Oid(f"{i:032x}"))])
        return memo.get(f"d/f{i}", old)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(200)))
    assert results == [Oid(f"{i:032x}") for i in range(200)]
    assert len(memo.get_under("d")) == 200


def test_store_put_many_verified_moves_downloads_into_place(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    store.tmp_dir.mkdir(parents=True)
    new, dup = store.tmp_dir / "a.part", store.tmp_dir / "b.part"
    new.write_bytes(b"fresh")
    existing = store.put_bytes(b"known")
    dup.write_bytes(b"known")
    done: list[str] = []
    failures = store.put_many(
        [(hash_bytes(b"fresh"), new), (existing, dup)], verified=True, on_done=lambda o, e: done.append(o)
    )
    assert failures == {} and sorted(done) == sorted([hash_bytes(b"fresh"), existing])
    assert store.read_bytes(hash_bytes(b"fresh")) == b"fresh"
    assert not new.exists() and not dup.exists()
    assert not store.path_of(hash_bytes(b"fresh")).stat().st_mode & stat.S_IWUSR


def test_store_missing_agrees_for_few_and_many_oids(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    present = [store.put_bytes(str(i).encode()) for i in range(600)]
    absent = [hash_bytes(f"absent {i}".encode()) for i in range(100)]
    assert store.missing(present + absent) == set(absent)  # many: listing fan-out directories
    assert store.missing(present[:3] + absent[:3]) == set(absent[:3])  # few: one check each


def test_store_refuses_a_file_that_changed_since_it_was_hashed(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    src = tmp_path / "f"
    src.write_bytes(b"hashed content")
    stale = hash_bytes(b"content before the last write")
    with pytest.raises(CacheError, match="changed while it was being cached"):
        store.put(stale, src)
    assert list(store.iter_oids()) == []
    assert not [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
