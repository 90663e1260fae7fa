"""The `remote` fixture: one Remote per backend kind (local directory, memory://, the moto S3 server)
and layout (loose: `pack_threshold: 0`; packed: the default threshold, so the suite's small objects
go into packs whenever two or more are sent together); the `db` fixture: the local ObjectStore and
each of those remotes, for the shared ObjectDB contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.objectdb import ObjectDB
from pipeline_engine.remote.open import open_remote
from pipeline_engine.remote.remote import Remote
from tests.s3server import S3Server, s3_bucket_fixture, s3_server_fixture  # noqa: F401 - fixtures

_REMOTE_KINDS = [
    pytest.param((kind, layout), id=f"{kind}-{layout}", marks=[pytest.mark.s3] if kind == "s3" else [])
    for kind in ("local", "memory", "s3")
    for layout in ("loose", "packed")
]


def is_packed(remote: Remote) -> bool:
    """True when the remote writes small objects into packs."""
    return remote.packing.threshold > 0


@pytest.fixture(params=_REMOTE_KINDS)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Remote]:
    """An empty remote of each kind, opened exactly as `pipe push` opens one."""
    kind, layout = request.param
    yield from _open_remote(request, kind, layout, tmp_path)


@pytest.fixture(params=["store", *_REMOTE_KINDS])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectDB]:
    """An empty object database of each kind: the local store, then every kind of remote."""
    if request.param == "store":
        yield ObjectStore(tmp_path / "cache" / "objects")
    else:
        kind, layout = request.param
        yield from _open_remote(request, kind, layout, tmp_path)


def _open_remote(request: pytest.FixtureRequest, kind: str, layout: str, tmp_path: Path) -> Iterator[Remote]:
    packing = {"pack_threshold": 0} if layout == "loose" else {}
    work = {"work_dir": tmp_path / "packwork", "index_cache": tmp_path / "packidx"}
    if kind == "local":
        yield open_remote("store", str(tmp_path / "remote"), packing, base_dir=tmp_path, jobs=4, **work)
    elif kind == "memory":
        from fsspec.implementations.memory import MemoryFileSystem

        url = f"memory://{tmp_path.name}"
        yield open_remote("store", url, packing, base_dir=tmp_path, jobs=4, **work)
        MemoryFileSystem.store.clear()
        MemoryFileSystem.pseudo_dirs[:] = [""]
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        options = {"endpoint_url": server.endpoint_url, **packing}
        yield open_remote("store", f"s3://{bucket}/project", options, base_dir=tmp_path, jobs=4, **work)
