"""Hashing, object layout, atomic writes and YAML: the bottom layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xxhash
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline_engine.core.fsutil import atomic_write, relpath_in, walk_files
from pipeline_engine.core.hashing import hash_bytes, hash_file, verify_bytes, verify_file
from pipeline_engine.core.layout import (
    download_path,
    is_valid_oid,
    lock_path,
    memo_path,
    objects_dir,
    oid_to_relpath,
    quarantine_dir,
    relpath_to_oid,
    store_tmp_dir,
)
from pipeline_engine.core.tempsweep import sweep_temps
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


def test_verify_checks_files_and_manifests_against_their_oid_the_same_way(tmp_path: Path) -> None:
    manifest = b'[{"relpath": "a", "hash": "..."}]'
    path = tmp_path / "m"
    path.write_bytes(manifest)
    dir_oid = hash_bytes(manifest) + ".dir"
    assert verify_file(path, dir_oid) is None and verify_bytes(manifest, dir_oid) is None
    assert verify_file(path, hash_bytes(manifest)) is None  # a file object with the same bytes
    other = hash_bytes(b"something else")
    assert verify_file(path, other) == hash_bytes(manifest) == verify_bytes(manifest, other + ".dir")
    with pytest.raises(FileNotFoundError):
        verify_file(tmp_path / "absent", other)


def test_layout_names_the_documented_paths(tmp_path: Path) -> None:
    control = tmp_path / ".pipe"
    cache = control / "cache"
    assert lock_path(control) == control / "tmp/lock" and memo_path(control) == control / "tmp/memo.sqlite"
    store_root = objects_dir(cache)
    assert store_root == cache / "objects"
    assert quarantine_dir(store_root) == cache / "quarantine"
    assert store_tmp_dir(store_root) == store_root / "tmp"


def test_a_download_left_by_a_killed_fetch_is_swept(tmp_path: Path) -> None:
    """Download names carry their writer's PID: the sweep after an unclean exit removes them."""
    import subprocess
    import sys

    tmp = store_tmp_dir(objects_dir(tmp_path / ".pipe" / "cache"))
    tmp.mkdir(parents=True)
    code = "import sys; from pathlib import Path; from pipeline_engine.core.layout import download_path; " \
        "p = download_path(Path(sys.argv[1]), 'ab' * 16); p.write_bytes(b'partial'); print(p)"
    left = Path(subprocess.run([sys.executable, "-c", code, str(tmp)], capture_output=True, text=True,
                               check=True).stdout.strip())
    mine = download_path(tmp, "cd" * 16)
    mine.write_bytes(b"in progress")
    assert left.exists() and left.parent == tmp and ("ab" * 16) in left.name
    assert sweep_temps(tmp_path, tmp_path / ".pipe" / "cache") == 1
    assert not left.exists() and mine.exists(), "a live process's download is left alone"


_PATH_CHARS = st.sampled_from(["a", "b", "/", ".", "\\", ":", "C", "\n", "\x00", "\x1b", "\x7f", "é", ".git", ".PIPE", ".."])


def _agrees_with_the_gate(paths: list[str]) -> None:
    from pipeline_engine.core.pathgate import all_plain, check_relpath
    from pipeline_engine.errors import UnsafePathError

    def plain(p: str) -> bool:
        try:
            return check_relpath(p, source="m") == p
        except UnsafePathError:
            return False

    assert all_plain(paths) == all(plain(p) for p in paths)


@given(st.lists(st.lists(_PATH_CHARS, max_size=6).map("".join), min_size=1, max_size=5))
@example(["a\nb"])  # two plain lines once joined
@example(["ok", "a/.git", "b"])
@settings(max_examples=300)
def test_the_batched_path_check_agrees_with_the_path_gate(paths: list[str]) -> None:
    """`all_plain` (a manifest's paths in one scan) says yes exactly when `check_relpath` returns
    every path unchanged: it may never pass a path the gate refuses or rewrites."""
    _agrees_with_the_gate(paths)


_ASCII_CHARS = st.sampled_from(["a", "/", ".", "G", "i", "T", "p", "I", "e", ".git", ".Pipe", "..", " ", "\t", "\x7f", "~"])


@given(st.lists(st.lists(_ASCII_CHARS, max_size=8).map("".join), min_size=1, max_size=5))
@example(["a/.GIT/b"])
@example(["a/", "b"])
@example(["", "b"])
@settings(max_examples=400)
def test_the_batched_path_check_agrees_with_the_path_gate_for_ascii_paths(paths: list[str]) -> None:
    """The same for paths without a backslash or a colon, which `all_plain` checks by byte scans."""
    _agrees_with_the_gate(paths)
