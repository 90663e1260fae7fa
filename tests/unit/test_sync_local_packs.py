"""A local directory remote gets its packs by a rename: built complete in its tmp/, never copied."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeline_engine.core.fsutil import temp_name
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.remote.open import open_remote
from pipeline_engine.remote.partial import HOST


def _objects(tmp_path: Path, count: int) -> list[tuple[str, Path]]:
    src = tmp_path / "src"
    src.mkdir()
    items = []
    for i in range(count):
        data = f"object {i}\n".encode() * (i + 1)
        path = src / f"{i}"
        path.write_bytes(data)
        items.append((hash_bytes(data), path))
    return items


def test_packs_reach_a_local_remote_by_rename_and_leave_nothing_in_its_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = open_remote("local", str(tmp_path / "remote"), {}, base_dir=tmp_path, work_dir=tmp_path / "work")
    copied: list[str] = []
    put_file = remote.fs.put_file

    def counting(lpath: Any, rpath: Any, *args: Any, **kwargs: Any) -> Any:
        copied.append(str(rpath))
        return put_file(lpath, rpath, *args, **kwargs)

    monkeypatch.setattr(remote.fs, "put_file", counting)
    items = _objects(tmp_path, 20)
    assert remote.put_many(items) == {}
    assert copied == [], "a pack or index was copied instead of renamed into place"
    packs = sorted(p.name for p in (tmp_path / "remote" / "packs").iterdir())
    assert len(packs) == 2 and {Path(p).suffix for p in packs} == {".pack", ".idx"}
    assert not list((tmp_path / "remote" / "tmp").iterdir())
    assert not (tmp_path / "work").exists() or not list((tmp_path / "work").iterdir())
    fresh = open_remote("again", str(tmp_path / "remote"), {}, base_dir=tmp_path)
    for oid, path in items:
        dest = tmp_path / f"out-{oid}"
        fresh.get(oid, dest)
        assert dest.read_bytes() == path.read_bytes()


def test_a_pack_a_killed_push_was_building_on_a_local_remote_is_swept(tmp_path: Path) -> None:
    remote = open_remote("local", str(tmp_path / "remote"), {}, base_dir=tmp_path)
    assert remote.put_many(_objects(tmp_path, 4)) == {}
    tmp = tmp_path / "remote" / "tmp"
    dead = 2**22 + 12345  # no such process
    name = temp_name(f".{HOST}").replace(f"-{os.getpid()}-", f"-{dead}-")
    (tmp / name).write_bytes(b"half a pack")
    assert remote.sweep_temps() == 1
    assert not list(tmp.iterdir())
