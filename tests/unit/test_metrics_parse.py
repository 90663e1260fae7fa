"""parse_metrics: every format flattens to `a.b.c` keys, numbers stay numbers, hostile files are refused."""

from __future__ import annotations

import math

import pytest

from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.metrics import MAX_METRICS, parse_metrics

NESTED = {"acc": 0.9, "loss": 1, "train.acc": 0.95, "train.steps": 10, "layers.0.units": 64,
          "layers.1.units": 32, "name": "resnet", "ok": True, "none": None}


@pytest.mark.parametrize(("suffix", "text"), [
    (".json", ('{"acc": 0.9, "loss": 1, "train": {"acc": 0.95, "steps": 10},'
              ' "layers": [{"units": 64}, {"units": 32}], "name": "resnet", "ok": true, "none": null}')),
    (".yaml", ("acc: 0.9\nloss: 1\ntrain: {acc: 0.95, steps: 10}\nlayers:\n- units: 64\n- units: 32\n"
              "name: resnet\nok: true\nnone: null\n")),
    (".YML", ("acc: 0.9\nloss: 1\ntrain: {acc: 0.95, steps: 10}\nlayers: [{units: 64}, {units: 32}]\n"
             "name: resnet\nok: true\nnone:\n")),
])
def test_nested_formats_flatten_in_file_order(suffix: str, text: str) -> None:
    metrics = parse_metrics(text, suffix=suffix, source="m")
    assert metrics == NESTED and list(metrics) == list(NESTED)
    assert type(metrics["loss"]) is int and type(metrics["acc"]) is float


def test_toml_flattens_tables_and_dates_become_text() -> None:
    text = 'acc = 0.9\nwhen = 2024-01-02\n[train]\nacc = 0.95\nsteps = [1, 2]\n'
    assert parse_metrics(text, suffix=".toml", source="m.toml") == {
        "acc": 0.9, "when": "2024-01-02", "train.acc": 0.95, "train.steps.0": 1, "train.steps.1": 2}


def test_csv_and_tsv_give_the_last_row_with_numbers_as_numbers() -> None:
    csv = "step,acc,loss,note\n0,0.5,2,start\n1,0.75,1.5e-1,\n\n"
    assert parse_metrics(csv, suffix=".csv", source="log.csv") == {"step": 1, "acc": 0.75, "loss": 0.15, "note": ""}
    tsv = "step\tacc\n0\t0.5\n7\tnan\n"
    assert parse_metrics(tsv, suffix=".tsv", source="log.tsv") == {"step": 7, "acc": "nan"}
    assert parse_metrics("a,b\n", suffix=".csv", source="x.csv") == {}
    assert parse_metrics('a,"b,c"\n1,"x, y"\n', suffix=".csv", source="x.csv") == {"a": 1, "b,c": "x, y"}


def test_empty_files_have_no_metrics() -> None:
    for suffix in (".json", ".yaml", ".csv", ".tsv", ".toml"):
        assert parse_metrics("", suffix=suffix, source="m") == {}


def test_a_top_level_list_is_indexed() -> None:
    assert parse_metrics("[1, {a: 2}]", suffix=".yaml", source="m") == {"0": 1, "1.a": 2}


@pytest.mark.parametrize(("suffix", "text", "message"), [
    (".json", '{"a": 1, "a": 2}', r"m: .*duplicate"),
    (".json", '{"a": ' + "1" * 30 + "}", r"m: .*64 bits"),
    (".json", "[" * 200 + "]" * 200, r"nested deeper than"),
    (".yaml", ("a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
              "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
              "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
              "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"), r"alias"),
    (".yaml", "a: [\n", r"^m:"),
    (".yaml", "3\n", r"m: metrics must be a mapping \(or a list\), not int"),
    (".yaml", "a.b: 1\na: {b: 2}\n", r"m: key 'a.b' appears twice"),
    (".toml", "a = \n", r"m: invalid TOML"),
    (".csv", "a,a\n1,2\n", r"m:1: column names must be unique"),
    (".csv", "a,b\n1,2\n3\n", r"m:3: the last row has 1 values for 2 columns"),
    (".csv", 'a\n"x\n', r"m:\d+: invalid CSV"),
])
def test_hostile_or_broken_files_are_refused_naming_the_file(suffix: str, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_metrics(text, suffix=suffix, source="m")


def test_nan_and_infinities_are_read_as_dvc_reads_them() -> None:
    """Python's json and pandas write NaN for a diverged run; DVC (json.loads) reads it."""
    flat = parse_metrics('{"loss": NaN, "hi": Infinity, "lo": -Infinity, "n": 1e400}', suffix=".json", source="m")
    assert math.isnan(flat["loss"]) and flat["hi"] == math.inf and flat["lo"] == -math.inf and flat["n"] == math.inf
    yaml_flat = parse_metrics("loss: .nan\nhi: .inf\n", suffix=".yaml", source="m")
    assert math.isnan(yaml_flat["loss"]) and yaml_flat["hi"] == math.inf
    assert math.isnan(parse_metrics("[x]\na = nan\n", suffix=".toml", source="m")["x.a"])


def test_the_number_of_values_is_bounded() -> None:
    text = "[" + ",".join(["1"] * (MAX_METRICS + 1)) + "]"
    with pytest.raises(SpecError, match=f"more than {MAX_METRICS} values"):
        parse_metrics(text, suffix=".json", source="m")
