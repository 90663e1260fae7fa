"""Params files: every format is read within bounds; wrong input is a SpecError naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.params import read_params_file


def read(tmp_path: Path, name: str, content: str | bytes) -> object:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return read_params_file(path, source=name)


def test_each_format_reads_a_mapping(tmp_path: Path) -> None:
    assert read(tmp_path, "p.yaml", "a: {b: [1, 2]}\n") == {"a": {"b": [1, 2]}}
    assert read(tmp_path, "p.json", '{"a": {"b": [1, 2.5]}}') == {"a": {"b": [1, 2.5]}}
    assert read(tmp_path, "p.toml", "[a]\nb = [1, 2]\n") == {"a": {"b": [1, 2]}}
    assert read(tmp_path, "p.json", " \n") == {} and read(tmp_path, "p.yaml", "") == {}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.json", "[" * 100_000 + "]" * 100_000, r"^p.json: nested deeper than 100 levels$"),
        ("p.json", '{"a": {"b": 1, "b": 2}}', r"^p.json: duplicate key 'b'"),
        ("p.json", '{"a": NaN}', r"^p.json: NaN is not a finite number"),
        ("p.json", '{"a": 1e400}', r"^p.json: 1e400 is not a finite number"),
        ("p.toml", "a = [" * 2000 + "]" * 2000, r"^p.toml: (nested deeper|invalid TOML)"),
        ("p.toml", "[x]\na = " + "[" * 150 + "]" * 150, r"^p.toml: key 'x.a.0.0.0.0.0.0....': nested deeper"),
        ("p.toml", "[x]\na = nan\n", r"^p.toml: key 'x.a': nan is not a finite number"),
        ("p.toml", "[x]\na = -inf\n", r"^p.toml: key 'x.a': -inf is not a finite number"),
        ("p.toml", "a = 99999999999999999999999\n", r"^p.toml: key 'a': the number does not fit in 64 bits"),
        ("p.toml", "a = 1\na = 2\n", r"^p.toml: invalid TOML"),
        ("p.yaml", "a:\n  1: x\n", r"^p.yaml: key 'a.1' must be a string"),
        ("p.yaml", "true: 1\n", r"^p.yaml: key 'True' must be a string"),
        ("p.yaml", "1e6: 1\n", r"^p.yaml: key '1000000.0' must be a string"),
        ("p.yaml", "a: [{2: x}]\n", r"^p.yaml: key 'a.0.2' must be a string"),
        ("p.yaml", "a: .inf\n", r"^p.yaml:1: key 'a': '.inf' is not a finite number"),
        ("p.yaml", "- 1\n", r"^p.yaml: a params file must be a mapping"),
        ("p.yaml", b"a: \xff\n", r"^p.yaml: not UTF-8 text \(byte 3\)"),
        ("p.json", b'{"a": "\xc3"}', r"^p.json: not UTF-8 text"),
    ],
)
def test_hostile_params_are_spec_errors_naming_file_and_key(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        read(tmp_path, name, content)


def test_missing_file_has_a_hint(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="params file 'p.yaml' does not exist") as exc:
        read_params_file(tmp_path / "p.yaml", source="p.yaml")
    assert exc.value.hint == "create 'p.yaml'"
