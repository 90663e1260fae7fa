"""Hashing, object layout, atomic writes and YAML: the bottom layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from pipeline_engine.core.fsutil import atomic_write, relpath_in, walk_files
from pipeline_engine.core.hashing import hash_bytes, hash_file
from pipeline_engine.core.layout import is_valid_oid, oid_to_relpath, relpath_to_oid
from pipeline_engine.core.yamlio import parse_yaml
from pipeline_engine.errors import PathError, SpecError

oids = st.from_regex(r"[0-9a-f]{32}(\.dir)?", fullmatch=True)


def test_hash_file_matches_hash_bytes_for_small_and_streamed_files(tmp_path: Path) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"hello")
    data = os.urandom((1 << 20) * 3 + 17)  # larger than one read: exercises streaming
    big.write_bytes(data)
    assert hash_file(small) == hash_bytes(b"hello") == xxhash.xxh3_128_hexdigest(b"hello")
    assert hash_file(big) == hash_bytes(data)
    assert len(hash_file(big)) == 32


@given(oids)
def test_layout_round_trips(oid: str) -> None:
    rel = oid_to_relpath(oid)
    assert rel[:2] == oid[:2] and rel[2] == "/"
    assert relpath_to_oid(rel) == oid


def test_layout_rejects_paths_that_are_not_objects() -> None:
    assert relpath_to_oid("tmp/abc") is None
    assert relpath_to_oid("ab") is None
    assert not is_valid_oid("../../etc/passwd")


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.yaml"
    target.write_text("old")
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.yaml"]


def test_atomic_write_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")

    with pytest.raises(TypeError):
        atomic_write(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_walk_files_refuses_symlink_escaping_the_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "outside").write_text("secret")
    (tmp_path / "d" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(PathError, match="outside"):
        list(walk_files(tmp_path / "d"))


def test_relpath_in_refuses_paths_outside_root(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    assert relpath_in(tmp_path / "p", "a/b", cwd=tmp_path / "p") == "a/b"
    with pytest.raises(PathError, match="outside the project"):
        relpath_in(tmp_path / "p", "../x", cwd=tmp_path / "p")


def test_yaml_syntax_error_names_source_line_and_column() -> None:
    with pytest.raises(SpecError, match=r"pipeline.yaml:3:1: invalid YAML"):
        parse_yaml("a: 1\nb: [\n", source="pipeline.yaml")
