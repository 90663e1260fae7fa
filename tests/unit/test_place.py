"""cache.place: placing objects never writes through an existing file, verifies each linked object
once, and `separate_edit` tells an edit made through a link from an ordinary one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_engine.cache import place
from pipeline_engine.cache.link import LinkType
from pipeline_engine.cache.linkedit import separate_edit
from pipeline_engine.cache.memo import HashMemo, stamp_of
from pipeline_engine.cache.place import Placer
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import Oid, hash_bytes


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "cache")


def _put(store: ObjectStore, tmp_path: Path, data: bytes) -> Oid:
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    oid = hash_bytes(data)
    store.put(oid, src)
    return oid


def _append_through(path: Path, extra: bytes) -> None:
    os.chmod(os.path.realpath(path), 0o644)
    with open(path, "ab") as f:
        f.write(extra)


@pytest.mark.parametrize("kind", list(LinkType))
def test_replacing_a_linked_file_never_writes_through_it(store: ObjectStore, tmp_path: Path, kind: LinkType) -> None:
    old, new = _put(store, tmp_path, b"old version"), _put(store, tmp_path, b"new version")
    ws = tmp_path / "ws"
    ws.mkdir()
    placer = Placer(store, None, [kind, LinkType.COPY])
    placer.place(old, ws / "f", isexec=False)
    placer.place(new, ws / "f", isexec=False)
    assert (ws / "f").read_bytes() == b"new version"
    assert store.path_of(old).read_bytes() == b"old version"
    assert [p.name for p in ws.iterdir()] == ["f"], "no temporary file is left"


def test_place_many_verifies_each_object_once_and_the_memo_remembers(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oids = [_put(store, tmp_path, f"object {i}".encode()) for i in range(3)]
    for oid in oids:
        old = store.path_of(oid).stat().st_mtime - 60
        os.utime(store.path_of(oid), (old, old))
    memo = HashMemo(tmp_path / "memo.sqlite")
    reads: list[str] = []
    real = place.verify_file
    monkeypatch.setattr(place, "verify_file", lambda p, o, size=None: reads.append(o) or real(p, o, size))
    ws = tmp_path / "ws"
    ws.mkdir()
    items = [(str(ws / f"{i}"), oids[i % 3], False) for i in range(100)]  # each object used many times
    stamps = Placer(store, memo, [LinkType.HARDLINK]).place_many(items)
    assert sorted(reads) == sorted(oids)
    assert all(s is not None for s in stamps)
    for f in ws.iterdir():
        f.unlink()
    Placer(store, memo, [LinkType.HARDLINK]).place_many(items)
    assert sorted(reads) == sorted(oids), "a new placer trusts the memo's record of the unchanged objects"


def test_separate_edit_of_a_hardlinked_object(store: ObjectStore, tmp_path: Path) -> None:
    oid = _put(store, tmp_path, b"tracked")
    path = tmp_path / "ws.bin"
    os.link(store.path_of(oid), path)
    _append_through(path, b" + edit")
    st = os.stat(path)
    actual = hash_bytes(b"tracked + edit")
    assert separate_edit(store, path, st, actual, previous=oid) == actual
    assert path.read_bytes() == b"tracked + edit" and os.stat(path).st_nlink == 1
    assert not store.exists(oid)
    assert (store.quarantine_dir / oid).read_bytes() == b"tracked + edit"


def test_separate_edit_of_a_symlinked_object(store: ObjectStore, tmp_path: Path) -> None:
    oid = _put(store, tmp_path, b"tracked")
    path = tmp_path / "ws.bin"
    os.symlink(store.path_of(oid), path)
    _append_through(path, b" + edit")
    actual = hash_bytes(b"tracked + edit")
    assert separate_edit(store, path, os.stat(path), actual, linked=oid) == actual
    assert not path.is_symlink() and path.read_bytes() == b"tracked + edit"
    assert not store.exists(oid)


def test_separate_edit_leaves_ordinary_files_and_foreign_hardlinks_alone(store: ObjectStore, tmp_path: Path) -> None:
    oid = _put(store, tmp_path, b"tracked")
    own = tmp_path / "own.bin"
    own.write_bytes(b"changed")  # an ordinary file the user changed: nothing shared
    assert separate_edit(store, own, os.stat(own), hash_bytes(b"changed"), previous=oid) == hash_bytes(b"changed")
    theirs = tmp_path / "theirs.bin"
    os.link(own, theirs)  # the user's own hardlinks: not the object's inode
    assert separate_edit(store, own, os.stat(own), hash_bytes(b"changed"), previous=oid) == hash_bytes(b"changed")
    assert store.exists(oid) and store.path_of(oid).read_bytes() == b"tracked"
    assert os.stat(own).st_ino == os.stat(theirs).st_ino
    linked = tmp_path / "linked.bin"
    os.link(store.path_of(oid), linked)  # shares the object, unchanged: hashes to it
    assert separate_edit(store, linked, os.stat(linked), oid, previous=oid) == oid
    assert store.exists(oid) and os.stat(linked).st_nlink == 2


@pytest.mark.parametrize("kind", [LinkType.COPY, LinkType.REFLINK])
def test_place_many_shared_between_processes_places_every_file_and_reports_a_corrupt_object(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: LinkType
) -> None:
    """A big copy checkout is shared between forked processes: what a child finds (a corrupt object,
    objects it verified) reaches the caller, and only the caller writes the memo."""
    from pipeline_engine.core import forked

    monkeypatch.setattr(place, "_FORK_MIN", 20)
    monkeypatch.setattr(forked.threading, "active_count", lambda: 1)  # the test runner's threads
    oids = [_put(store, tmp_path, f"object {i}\n".encode()) for i in range(10)]
    bad = oids[7]
    os.chmod(store.path_of(bad), 0o644)
    store.path_of(bad).write_bytes(b"rotted on disk")
    for oid in oids:  # older than the memo's racy window: their verification can be remembered
        old = store.path_of(oid).stat().st_mtime - 60
        os.utime(store.path_of(oid), (old, old))
    memo = HashMemo(tmp_path / "memo.sqlite")
    ws = tmp_path / "ws"
    ws.mkdir()
    items = [(str(ws / f"{i:03}"), oids[i % 10], False) for i in range(100)]
    placer = Placer(store, memo, [kind, LinkType.COPY])
    done: list[int] = []
    stamps = placer.place_many(items, advance=done.append)
    assert sum(done) == 100
    assert placer.corrupt == {bad}
    assert not store.exists(bad), "the corrupt object went to quarantine"
    for (dest, oid, _), stamp in zip(items, stamps):
        if oid == bad:
            assert stamp is None and not os.path.exists(dest)
        else:
            assert stamp is not None and Path(dest).read_bytes() == store.path_of(oid).read_bytes()
    assert sorted(p.name for p in ws.iterdir() if p.name.startswith(".pipetmp")) == []
    # With a link type configured, every good object's verification reached the memo (from
    # whichever process copied it), so a later hardlink checkout reads none of them.
    assert kind is LinkType.COPY or all(memo.is_verified(o, stamp_of(os.stat(store.path_of(o)))) for o in oids if o != bad)
