"""Remote transfers over a plain (sync) backend: the one transfer path keeps `jobs` requests in flight."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.remote.remote import Remote


class _MeetingFS(LocalFileSystem):  # type: ignore[misc]
    """Every upload and download waits until `parties` of them run at once (or the barrier times out)."""

    def __init__(self, parties: int) -> None:
        super().__init__(skip_instance_cache=True)
        self.barrier = threading.Barrier(parties, timeout=20)

    def put_file(self, lpath: Any, rpath: Any, **kwargs: Any) -> None:
        self.barrier.wait()
        super().put_file(lpath, rpath, **kwargs)

    def get_file(self, rpath: Any, lpath: Any, **kwargs: Any) -> None:
        self.barrier.wait()
        super().get_file(rpath, lpath, **kwargs)


def test_a_sync_backend_runs_jobs_transfers_at_once(tmp_path: Path) -> None:
    fs = _MeetingFS(parties=4)
    remote = Remote("store", str(tmp_path / "remote"), fs, str(tmp_path / "remote"), jobs=4, object_store=False)
    items = []
    for i in range(8):
        path = tmp_path / f"f{i}"
        path.write_bytes(f"object {i}".encode())
        items.append((hash_bytes(path.read_bytes()), path))
    assert remote.put_many(items) == {}, "four uploads must be in flight together"
    assert remote.missing([oid for oid, _ in items]) == set()
    assert not list((tmp_path / "remote" / "tmp").iterdir()), "partial uploads were renamed into place"
    back = [(oid, tmp_path / f"back-{oid}") for oid, _ in items]
    assert remote.get_many(back) == {}
    assert all(dest.read_bytes() == src.read_bytes() for (_, dest), (_, src) in zip(back, items, strict=True))
