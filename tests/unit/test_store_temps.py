"""ObjectStore.add_files leaves no temporary file when a copy fails or the caller is interrupted."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.core.hashing import Oid, hash_file


def files(root: Path, count: int) -> list[tuple[Path, Oid]]:
    root.mkdir()
    items = []
    for i in range(count):
        path = root / f"f{i}"
        path.write_text(f"content {i}\n" * (i % 7 + 1))
        items.append((path, Oid(hash_file(path))))
    return items


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_an_interrupt_or_error_mid_copy_leaves_no_temp_file(tmp_path: Path, exc: type[BaseException]) -> None:
    store = ObjectStore(tmp_path / "objects")
    items = files(tmp_path / "data", 300)
    counter = itertools.count()

    def on_done() -> None:
        if next(counter) == 150:
            raise exc()

    with pytest.raises(exc):
        store.add_files(items, jobs=8, on_done=on_done)

    leftovers = [name for _, _, names in os.walk(store.root) for name in names if name.startswith(".pipetmp-")]
    assert leftovers == []
    assert not list(store.iter_oids()), "nothing is renamed into place when the batch fails"
    assert store.add_files(items) == 300
    assert all(store.is_intact(oid) for _, oid in items)
