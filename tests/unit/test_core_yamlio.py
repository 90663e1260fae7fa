"""yamlio: bounded YAML and JSON parsing of untrusted files."""

from __future__ import annotations

import math
import tracemalloc

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_engine.core.yamlio import MAX_DEPTH, check_values, dump_yaml, parse_json, parse_yaml
from pipeline_engine.errors import SpecError


def bomb(levels: int) -> str:
    lines = ["l0: &l0 [x,x,x,x,x,x,x,x,x]"]
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_without_expanding_it() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(SpecError, match=r"^params.yaml: aliases expand to more than 100,000 nodes"):
            parse_yaml(bomb(9), source="params.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_aliases_within_the_budget_still_load() -> None:
    data = parse_yaml(bomb(4) + "base: &b {lr: 1}\nother:\n  <<: *b\n  seed: 2\n", source="p.yaml")
    assert len(data["l3"]) == 9 and data["l3"][0] == data["l2"]
    assert data["other"] == {"lr": 1, "seed": 2}


def test_a_merge_key_may_be_overridden_but_not_a_key_twice() -> None:
    assert parse_yaml("b: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n", source="f")["c"] == {"x": 1, "y": 3}
    with pytest.raises(SpecError, match=r"^f:4: key 'c': duplicate key 'y' \(keys must be unique\)$") as exc:
        parse_yaml("b: 1\nc:\n  y: 1\n  y: 2\n", source="f")
    assert exc.value.hint == "remove one of the two entries"


@pytest.mark.parametrize("text", ["a: 1\na: 2\n", "1: x\n0x1: y\n", "true: 1\nTrue: 2\n", "017: a\n17: b\n",
                                  "&k a: 1\n*k: 2\n"])
def test_keys_equal_after_resolution_are_duplicates(text: str) -> None:
    with pytest.raises(SpecError, match="duplicate key"):
        parse_yaml(text, source="f")


def test_a_self_containing_alias_is_refused() -> None:
    with pytest.raises(SpecError, match=r"^f:1: key 'a': an alias refers to a node that contains it"):
        parse_yaml("a: &a [1, *a]\n", source="f")


def test_nesting_is_bounded_in_yaml_and_json() -> None:
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    too_deep = "[" + ok + "]"
    assert parse_yaml(ok, source="f") is not None and parse_json(ok, source="f") is not None
    for parse in (parse_yaml, parse_json):
        with pytest.raises(SpecError, match=f"nested deeper than {MAX_DEPTH} levels"):
            parse(too_deep, source="f")
    with pytest.raises(SpecError, match=r"^f:1: key 'a(\.0){7}\.\.\.\.': nested deeper"):
        parse_yaml("a: " + "[" * 150 + "]" * 150, source="f")
    with pytest.raises(SpecError, match=r"^p.json: nested deeper"):
        parse_json("[" * 100_000 + "]" * 100_000, source="p.json")
    with pytest.raises(SpecError, match=r"^f:1:\d+: invalid YAML"):
        parse_yaml("[" * 100_000 + "]" * 100_000, source="f")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (".nan", "not a finite number"), ("-.inf", "not a finite number"), ("1.0e+400", "not a finite number"),
        ("18446744073709551616", "does not fit in 64 bits"), ("-9223372036854775809", "does not fit in 64 bits"),
        ("0x" + "f" * 40, "does not fit in 64 bits"), ("9" * 5000, "invalid value"),
        ("2001-02-30", "invalid value"), ("!!binary aGk=", "unsupported tag"), ("!!int x", "unsupported tag"),
        ("!!timestamp x", "unsupported tag"), ("!!python/object:os.system x", "unsupported tag"),
        ("!!set {a: null}", "unsupported tag"), ("!!omap [a: 1]", "unsupported tag"),
    ],
)
def test_values_no_reader_can_use_are_refused_with_line_and_key(value: str, message: str) -> None:
    with pytest.raises(SpecError, match=f"^f:2: key 'b.c': .*{message}"):
        parse_yaml(f"a: 1\nb: {{c: {value}}}\n", source="f")


def test_bounds_are_inclusive_and_scalars_resolve_as_yaml_12() -> None:
    data = parse_yaml(
        "a: 18446744073709551615\nb: -9223372036854775808\nc: no\nd: 1e6\ne: 1.5e+3\nf: !!str 12\ng: ~\n",
        source="f",
    )
    # YAML 1.2 core schema (as DVC): `no` is a string, `1e6` a float.
    assert data == {"a": 2**64 - 1, "b": -(2**63), "c": "no", "d": 1e6, "e": 1500.0, "f": "12", "g": None}


def test_control_characters_in_keys_are_refused() -> None:
    with pytest.raises(SpecError, match=r"control character in key 'a\\x1bb'"):
        parse_yaml('"a\\x1bb": 1\n', source="f")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'"), ("[NaN]", "NaN is not a finite number"),
        ("[1e400]", "1e400 is not a finite number"), ("[-Infinity]", "-Infinity is not a finite number"),
        ("[18446744073709551616]", "does not fit in 64 bits"), ("[" + "9" * 5000 + "]", "does not fit in 64 bits"),
        ("[1,]", r"p.json:1:4: invalid JSON"),
    ],
)
def test_json_is_parsed_within_the_same_bounds(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_json(text, source="p.json")


def test_check_values_names_the_key() -> None:
    with pytest.raises(SpecError, match=r"^p.toml: key 'a.b.1': inf is not a finite number"):
        check_values({"a": {"b": [1, math.inf]}}, source="p.toml")
    with pytest.raises(SpecError, match=r"^p.toml: key 'n': the number does not fit"):
        check_values({"n": 2**70}, source="p.toml")


plain_data = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text().filter(lambda k: k.isprintable()), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(plain_data)
def test_what_dump_yaml_writes_parse_yaml_reads_back(data: object) -> None:
    assert parse_yaml(dump_yaml(data), source="f") == data
    assert parse_yaml(dump_yaml(data), source="f") == yaml.safe_load(dump_yaml(data))


# YAML 1.2 core schema, as DVC reads its files through ruamel.yaml (the oracle below).
YAML12_SCALARS = [
    "no", "No", "NO", "off", "yes", "on", "y", "n", "true", "True", "FALSE", "tRUE", "1e6", "1E6", "1e+6",
    "1.5e-3", "017", "09", "0o17", "-0o17", "0x1F", "0b101", "1_000", "1:30", "190:20:30", "+12", ".5", "+.5",
    "-.5e+3", "1.", "0", "-0", "00", "0.1", "~", "null", "Null", "nULL", "", "2024-01-02",
    "2001-12-14t21:59:43.10-05:00", "1e", "e6", ".e6", "1.5.2", "1,000", "0b2",
]


@pytest.mark.parametrize("scalar", YAML12_SCALARS)
def test_plain_scalars_resolve_as_dvc_reads_them(scalar: str) -> None:
    from ruamel.yaml import YAML

    expected = YAML(typ="safe", pure=True).load(f"k: {scalar}\n")["k"]
    got = parse_yaml(f"k: {scalar}\n", source="f")["k"]
    assert (type(got), got) == (type(expected), expected)


def test_yaml_12_examples_from_the_issue() -> None:
    data = parse_yaml("country: no\nbig: 1e6\noff: yes\nmode: 0o17\nn: 017\n", source="params.yaml")
    assert data == {"country": "no", "big": 1000000.0, "off": "yes", "mode": 15, "n": 17}
    assert isinstance(data["big"], float)
    assert parse_yaml("k: =\n", source="f") == {"k": "="}  # YAML 1.1's `value` type is gone (ruamel fails)


@given(st.lists(st.sampled_from(YAML12_SCALARS) | st.text(max_size=8), max_size=6))
@settings(max_examples=200, deadline=None)
def test_strings_written_read_back_as_strings_in_yaml_12_and_11(values: list[str]) -> None:
    text = dump_yaml({"v": values})
    assert parse_yaml(text, source="f") == {"v": values}
    assert yaml.safe_load(text) == {"v": values}  # PyYAML's YAML 1.1 reader agrees: 'no' stays quoted


def test_numbers_and_bools_written_read_back_with_their_type() -> None:
    data = {"f": 1000000.0, "small": 1e-7, "big": 1e20, "t": True, "n": None, "i": -17, "off": "off"}
    text = dump_yaml(data)
    assert "'off'" in text and "1000000.0" in text
    assert parse_yaml(text, source="f") == data
