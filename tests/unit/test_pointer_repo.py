"""The pointer's `repo:` field (imports): round trip, and a hostile value refused with the file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_engine.cache.pointer import Pointer, SourceRepo, parse_pointer, read_pointer, write_pointer
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.errors import SpecError, UnsafePathError

_SHA = "9f2c" + "0" * 36
_OUT = "outs:\n- path: raw.csv\n  hash: xxh3_128\n  oid: 0123456789abcdef0123456789abcdef\n  size: 3\n"


@pytest.mark.parametrize("rev", [None, "next"])
def test_round_trip(tmp_path: Path, rev: str | None) -> None:
    pointer = Pointer("data/raw.csv.pipe", PathRecord("raw.csv", Oid("0123456789abcdef0123456789abcdef"), 3),
                      SourceRepo("https://example.invalid/d.git", "data/raw.csv", _SHA, rev))
    (tmp_path / "data").mkdir()
    write_pointer(tmp_path, pointer)
    assert read_pointer(tmp_path, "data/raw.csv.pipe", memo=tmp_path / "memo") == pointer
    assert ("rev:" in (tmp_path / "data/raw.csv.pipe").read_text()) == (rev is not None)


def test_a_pointer_without_repo_reads_as_before() -> None:
    assert parse_pointer(f"schema: 1\n{_OUT}", "raw.csv.pipe").repo is None


@pytest.mark.parametrize(("repo", "message"), [
    ("url: --upload-pack=evil\n  path: a\n  rev_lock: " + _SHA, "repo.url"),
    ("url: x\n  path: a\n  rev: --output=/tmp/x\n  rev_lock: " + _SHA, "repo.rev"),
    ("url: x\n  path: a\n  rev_lock: HEAD", "rev_lock"),
    ("url: x\n  path: a", "rev_lock"),
])
def test_hostile_repo_fields_are_refused(repo: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        parse_pointer(f"schema: 1\n{_OUT}repo:\n  {repo}\n", "raw.csv.pipe")
    assert "raw.csv.pipe" in str(info.value)


def test_a_source_path_escaping_is_refused() -> None:
    with pytest.raises(UnsafePathError, match="repo.path"):
        parse_pointer(f"schema: 1\n{_OUT}repo:\n  url: x\n  path: ../../etc/passwd\n  rev_lock: {_SHA}\n",
                      "raw.csv.pipe")


def test_an_unknown_repo_key_fails_the_schema() -> None:
    with pytest.raises(SpecError):
        parse_pointer(f"schema: 1\n{_OUT}repo:\n  url: x\n  path: a\n  rev_lock: {_SHA}\n  hooks: evil\n",
                      "raw.csv.pipe")
