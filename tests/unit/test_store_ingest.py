"""ObjectStore.ingest over several waves: each wave is committed while the next is copied; every
object ends under the oid of its bytes, duplicates and objects already stored are dropped, and a
file that changes, an error or an interrupt leaves no temporary file and no object under a wrong oid."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from pipeline_engine.cache import ingest as ingest_module
from pipeline_engine.cache import store as store_module
from pipeline_engine.cache.memo import FileStamp, stamp_of
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core import forked
from pipeline_engine.core.hashing import hash_bytes, hash_file
from pipeline_engine.errors import CorruptObjectError


@pytest.fixture(autouse=True, params=["one process", "forked"])
def small_waves(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Every test runs in one process and shared between forked ones (as `pipe add` of a big tree)."""
    monkeypatch.setattr(ingest_module, "_WAVE", 16)  # 100 files: seven waves
    if request.param == "forked":
        monkeypatch.setattr(ingest_module, "_FORK_MIN", 30)  # 100 files: 2 processes on 2 cores
        monkeypatch.setattr(forked.threading, "active_count", lambda: 1)  # the runner's threads


def _files(root: Path, count: int, *, repeat_every: int = 0) -> list[tuple[str, FileStamp]]:
    root.mkdir()
    items = []
    for i in range(count):
        path = root / f"f{i:03}"
        n = i % repeat_every if repeat_every else i
        path.write_bytes(f"content {n}\n".encode() * (n % 9 + 1))
        items.append((os.fspath(path), stamp_of(os.stat(path))))
    return items


def _temps(store: ObjectStore) -> list[str]:
    return [name for _, _, names in os.walk(store.root) for name in names if name.startswith(".pipetmp-")]


def _all_intact(store: ObjectStore) -> bool:
    return all(hash_file(store.path_of(oid)) == oid for oid in store.iter_oids())


@pytest.mark.parametrize("small_file", [1 << 20, 40])  # read whole, or streamed (larger than 40 bytes)
def test_ingest_stores_every_file_under_its_hash_across_waves_and_drops_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_file: int
) -> None:
    monkeypatch.setattr(ingest_module, "SMALL_FILE", small_file)
    store = ObjectStore(tmp_path / "objects")
    items = _files(tmp_path / "data", 100, repeat_every=37)  # the same contents in several waves
    before = store.put_bytes(Path(items[5][0]).read_bytes())  # one object is there already
    done: list[int] = []
    oids, fresh = store.ingest(items, jobs=4, on_done=done.append)
    assert oids == [hash_file(path) for path, _ in items]
    assert fresh == set(oids) - {before}
    assert sorted(store.iter_oids()) == sorted(set(oids))
    assert _all_intact(store) and _temps(store) == []
    assert sum(done) == sum(st.size for _, st in items)
    for oid in oids:
        assert not store.path_of(oid).stat().st_mode & stat.S_IWUSR


def test_a_file_changed_in_a_later_wave_fails_the_call_and_stores_nothing_under_a_wrong_oid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(tmp_path / "objects")
    items = _files(tmp_path / "data", 100)
    victim = items[70][0]
    original = ingest_module.read_small

    def read_then_edit(src: Any, size: int) -> bytes:
        data = original(src, size)
        if src == victim:
            Path(src).write_text("written meanwhile, longer than before\n")
        return data

    monkeypatch.setattr(ingest_module, "read_small", read_then_edit)
    with pytest.raises(CorruptObjectError, match="f070' changed while it was being cached"):
        store.ingest(items, jobs=4)
    assert _temps(store) == []
    assert _all_intact(store)
    assert hash_bytes(Path(victim).read_bytes()) not in set(store.iter_oids())


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_an_interrupt_or_error_in_a_wave_leaves_no_temp_file(
    tmp_path: Path, exc: type[BaseException]
) -> None:
    store = ObjectStore(tmp_path / "objects")
    items = _files(tmp_path / "data", 100)
    done: list[int] = []

    def on_done(nbytes: int) -> None:
        done.append(nbytes)
        if len(done) == 50:
            raise exc()

    with pytest.raises(exc):
        store.ingest(items, jobs=4, on_done=on_done)
    assert _temps(store) == []
    assert _all_intact(store)


def test_a_flush_that_fails_stops_the_call_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(tmp_path / "objects")
    items = _files(tmp_path / "data", 100)
    flushes: list[Path] = []

    def full_disk(path: Path) -> None:
        flushes.append(path)
        if len(flushes) == 1:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "_sync_filesystem", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.ingest(items, jobs=4)
    assert _temps(store) == []
    assert _all_intact(store)
