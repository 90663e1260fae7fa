"""Looking into and damaging the packs of a local directory remote, for tests."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline_engine.remote.pack import PackIndex, parse_index

__all__ = ["corrupt_packed", "index_of"]


def index_of(pack: Path) -> PackIndex:
    """The parsed index beside `pack` (`<name>.idx`)."""
    return parse_index(pack.with_suffix(".idx").read_bytes(), name=pack.stem, where=str(pack))


def corrupt_packed(packs_dir: Path, oid: str) -> Path:
    """Flip the first byte of object `oid` inside whichever pack under `packs_dir` holds it; returns that pack."""
    for pack in sorted(packs_dir.glob("*.pack")):
        row = next((r for r in index_of(pack).rows if r.oid == oid), None)
        if row is None:
            continue
        data = bytearray(pack.read_bytes())
        data[row.offset] ^= 0xFF
        os.chmod(pack, 0o644)
        pack.write_bytes(bytes(data))
        return pack
    raise AssertionError(f"no pack under {packs_dir} holds {oid}")
