"""ObjectStore.put_many leaves no temporary file when a copy fails or the caller is interrupted."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import Oid, hash_file


def files(root: Path, count: int) -> list[tuple[str, Path]]:
    root.mkdir()
    items = []
    for i in range(count):
        path = root / f"f{i}"
        path.write_text(f"content {i}\n" * (i % 7 + 1))
        items.append((Oid(hash_file(path)), path))
    return items


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_an_interrupt_or_error_mid_copy_leaves_no_temp_file(tmp_path: Path, exc: type[BaseException]) -> None:
    store = ObjectStore(tmp_path / "objects")
    items = files(tmp_path / "data", 300)
    counter = itertools.count()

    def on_done(oid: str, error: object) -> None:
        if next(counter) == 150:
            raise exc()

    with pytest.raises(exc):
        store.put_many(items, jobs=8, on_done=on_done)

    leftovers = [name for _, _, names in os.walk(store.root) for name in names if name.startswith(".pipetmp-")]
    assert leftovers == []
    assert not list(store.iter_oids()), "nothing is renamed into place when the batch fails"
    assert store.put_many(items) == {}
    assert store.missing([oid for oid, _ in items]) == set()
    assert all(store.is_intact(oid) for oid, _ in items)
