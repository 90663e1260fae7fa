"""The `remote` fixture: one Remote per backend kind (local directory, memory://, the moto S3 server);
the `db` fixture: the local ObjectStore and each of those remotes, for the shared ObjectDB contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.objectdb import ObjectDB
from pipeline_engine.remote.open import open_remote
from pipeline_engine.remote.remote import Remote
from tests.s3server import S3Server, s3_bucket_fixture, s3_server_fixture  # noqa: F401 - fixtures

_REMOTE_KINDS = ["local", "memory", pytest.param("s3", marks=pytest.mark.s3)]


@pytest.fixture(params=_REMOTE_KINDS)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Remote]:
    """An empty remote of each kind, opened exactly as `pipe push` opens one."""
    yield from _open_remote(request, request.param, tmp_path)


@pytest.fixture(params=["store", *_REMOTE_KINDS])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectDB]:
    """An empty object database of each kind: the local store, then every kind of remote."""
    if request.param == "store":
        yield ObjectStore(tmp_path / "cache" / "objects")
    else:
        yield from _open_remote(request, request.param, tmp_path)


def _open_remote(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[Remote]:
    if kind == "local":
        yield open_remote("store", str(tmp_path / "remote"), {}, base_dir=tmp_path, jobs=4)
    elif kind == "memory":
        from fsspec.implementations.memory import MemoryFileSystem

        url = f"memory://{tmp_path.name}"
        yield open_remote("store", url, {}, base_dir=tmp_path, jobs=4)
        MemoryFileSystem.store.clear()
        MemoryFileSystem.pseudo_dirs[:] = [""]
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        options = {"endpoint_url": server.endpoint_url}
        yield open_remote("store", f"s3://{bucket}/project", options, base_dir=tmp_path, jobs=4)
