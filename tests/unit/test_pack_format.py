"""The pack format: what PackWriter writes reads back through its index, and hostile indexes are refused."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline_engine.core.hashing import Oid, hash_bytes
from pipeline_engine.errors import RemoteError
from pipeline_engine.remote.pack import MAX_ROWS, PackIndex, PackRow, PackWriter, encode_index, parse_index

THRESHOLD = 64  # small "threshold" so generated objects reach it


def _write(tmp: Path, blobs: list[bytes], *, as_dir: frozenset[int] | set[int] = frozenset()) -> tuple[PackIndex, bytes]:
    src = tmp / "src"
    src.mkdir(parents=True, exist_ok=True)
    writer = PackWriter(tmp / "work")
    items = {}
    for i, blob in enumerate(blobs):
        oid = hash_bytes(blob) + (".dir" if i in as_dir else "")
        path = src / f"o{i}"
        path.write_bytes(blob)
        items[oid] = path
    try:
        for oid in sorted(items):
            assert writer.add(oid, items[oid]) is None
        index = writer.finish()
        return index, writer.path.read_bytes()
    finally:
        writer.abort()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    blobs=st.lists(
        st.one_of(st.just(b""), st.binary(min_size=THRESHOLD - 1, max_size=THRESHOLD), st.binary(max_size=THRESHOLD)),
        max_size=25,
        unique=True,
    ),
    dirs=st.sets(st.integers(0, 24), max_size=3),
)
def test_every_object_written_reads_back_through_the_parsed_index(
    tmp_path_factory: pytest.TempPathFactory, blobs: list[bytes], dirs: set[int]
) -> None:
    tmp = tmp_path_factory.mktemp("pack")
    index, pack = _write(tmp, blobs, as_dir=dirs)
    assert index.name == xxhash.xxh3_128_hexdigest(pack) and index.size == len(pack)
    parsed = parse_index(encode_index(index), name=index.name, where="test.idx")
    assert parsed == index
    assert [r.oid for r in parsed.rows] == sorted(r.oid for r in parsed.rows)
    back = {r.oid: pack[r.offset : r.offset + r.length] for r in parsed.rows}
    expected = {hash_bytes(b) + (".dir" if i in dirs else ""): b for i, b in enumerate(blobs)}
    assert back == expected


def test_the_same_objects_make_the_same_pack(tmp_path: Path) -> None:
    blobs = [b"a" * 10, b"", b"b" * 64, b"c"]
    first, _ = _write(tmp_path / "1", blobs)
    second, _ = _write(tmp_path / "2", list(reversed(blobs)))
    assert first == second and encode_index(first) == encode_index(second)


def test_an_object_whose_bytes_are_not_its_oid_stays_out_of_the_pack(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_bytes(b"good bytes")
    bad.write_bytes(b"not what the name says")
    writer = PackWriter(tmp_path / "work")
    try:
        assert writer.add(hash_bytes(b"promised"), bad) == hash_bytes(b"not what the name says")
        assert writer.add(hash_bytes(b"good bytes"), good) is None
        index = writer.finish()
        assert writer.path.read_bytes() == b"good bytes"
        assert index.name == hash_bytes(b"good bytes") and [r.oid for r in index.rows] == [hash_bytes(b"good bytes")]
    finally:
        writer.abort()
    assert not writer.path.exists()


# -- hostile indexes ----------------------------------------------------------------------------

_HEADER = struct.Struct(">8sIIQ16s")
_ROW = struct.Struct(">16sBQQ")


def _raw(rows: list[tuple[bytes, int, int, int]], *, size: int = 100, count: int | None = None,
         magic: bytes = b"PIPEPIDX", version: int = 1, name: bytes = b"\x11" * 16) -> bytes:
    body = _HEADER.pack(magic, version, len(rows) if count is None else count, size, name)
    body += b"".join(_ROW.pack(*r) for r in rows)
    return body + xxhash.xxh3_128_digest(body)


NAME = (b"\x11" * 16).hex()
A, B = b"\x01" * 16, b"\x02" * 16


def test_a_well_formed_index_parses() -> None:
    index = parse_index(_raw([(A, 0, 0, 10), (B, 1, 10, 5)]), name=NAME, where="packs/x.idx")
    assert index.rows == (PackRow(Oid(A.hex()), 0, 10), PackRow(Oid(B.hex() + ".dir"), 10, 5))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_raw([(A, 0, 95, 10)]), "ends past the pack"),
        (_raw([(A, 0, 2**64 - 1, 2)]), "ends past the pack"),
        (_raw([(A, 0, 0, 10), (B, 0, 5, 10)]), "overlap"),
        (_raw([(B, 0, 0, 1), (A, 0, 1, 1)]), "not sorted"),
        (_raw([(A, 0, 0, 1), (A, 0, 1, 1)]), "repeats"),
        (_raw([(A, 2, 0, 1)]), "unknown object kind"),
        (_raw([(A, 0, 0, 1)], count=2**32 - 1), "rows do not fit"),
        (_raw([(A, 0, 0, 1)], count=0), "rows do not fit"),
        (_raw([], magic=b"NOTANIDX"), "wrong magic"),
        (_raw([], version=2), "format version 2"),
        (_raw([], name=b"\x22" * 16), "describes pack"),
        (_raw([(A, 0, 0, 1)])[:-1] + b"\x00", "checksum"),
        (b"PIPEPIDX", "not a possible index size"),
        (b"", "not a possible index size"),
    ],
)
def test_a_hostile_index_is_refused_naming_its_path(data: bytes, reason: str) -> None:
    with pytest.raises(RemoteError, match=reason) as info:
        parse_index(data, name=NAME, where="remote 'store' (s3://b/p): packs/x.idx")
    assert "packs/x.idx" in str(info.value) and info.value.hint


def test_a_giant_row_count_is_refused_before_any_row_is_read() -> None:
    header = _HEADER.pack(b"PIPEPIDX", 1, MAX_ROWS + 1, 10, b"\x11" * 16)
    with pytest.raises(RemoteError, match="rows do not fit"):
        parse_index(header + b"\x00" * 16, name=NAME, where="packs/x.idx")


def test_ranges_close_together_are_read_as_one_and_far_ones_apart(tmp_path: Path) -> None:
    from pipeline_engine.remote.packed import Loc
    from pipeline_engine.remote.packread import merge_ranges

    def item(offset: int, length: int) -> tuple[Loc, str, Path]:
        return (Loc("p", offset, length), f"{offset}", tmp_path)

    wanted = [item(0, 10), item(20, 10), item(1 << 20, 5), item((1 << 20) + 5, 0), item(40 << 20, 1)]
    merged = [(start, end, [m[1] for m in members]) for start, end, members in merge_ranges(wanted)]
    assert merged == [(0, 30, ["0", "20"]), (1 << 20, (1 << 20) + 5, [str(1 << 20), str((1 << 20) + 5)]),
                      (40 << 20, (40 << 20) + 1, [str(40 << 20)])]
    big = [item(i * (4 << 20), 4 << 20) for i in range(10)]  # adjacent 4 MiB objects: 16 MiB per range at most
    assert [len(members) for _, _, members in merge_ranges(big)] == [4, 4, 2]
