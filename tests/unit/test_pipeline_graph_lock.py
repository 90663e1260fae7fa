"""The stage DAG (edges, errors naming stages, selection) and pipeline.lock (round trip, schema, order)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_engine.core.hashing import Oid
from pipeline_engine.errors import CycleError, SpecError, StageNotFoundError
from pipeline_engine.pipeline.graph import build_graph, select, to_networkx
from pipeline_engine.pipeline.lock import (
    LOCK_FILE,
    LockFile,
    PathRecord,
    StageLock,
    dump_lock,
    parse_lock,
    read_lock,
    write_stage,
)
from pipeline_engine.pipeline.spec import OutSpec, StageSpec
from pipeline_engine.pipeline.validate import SCHEMA_DIR


def stage(name: str, deps: tuple[str, ...] = (), outs: tuple[str, ...] = (), group: str = "") -> StageSpec:
    return StageSpec(name, "cmd", deps=deps, outs=tuple(OutSpec(o) for o in outs), group=group or name)


def graph_of(*stages: StageSpec, tracked: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return build_graph({s.name: s for s in stages}, tracked_paths=tracked)


def test_edges_exact_inside_and_containing_paths() -> None:
    g = graph_of(
        stage("make_dir", outs=("data",)),
        stage("read_file_in_dir", deps=("data/x.csv",), outs=("a",)),
        stage("make_file", outs=("models/m.pkl",)),
        stage("read_parent_dir", deps=("models",), outs=("b",)),
        stage("read_both", deps=("a", "b"), outs=("c",)),
    )
    assert g.upstream["read_file_in_dir"] == {"make_dir"}
    assert g.upstream["read_parent_dir"] == {"make_file"}
    assert g.upstream["read_both"] == {"read_file_in_dir", "read_parent_dir"}
    assert g.order.index("read_both") > g.order.index("read_parent_dir")
    assert set(to_networkx(g).edges()) == {
        ("make_dir", "read_file_in_dir"), ("make_file", "read_parent_dir"),
        ("read_file_in_dir", "read_both"), ("read_parent_dir", "read_both"),
    }


def test_order_is_topological_with_file_order_for_ties() -> None:
    g = graph_of(stage("z", deps=("y_out",), outs=("z_out",)), stage("y", outs=("y_out",)), stage("x"))
    assert g.order == ("y", "z", "x")


def test_cycle_names_its_stages() -> None:
    with pytest.raises(CycleError) as info:
        graph_of(stage("a", deps=("c_out",), outs=("a_out",)), stage("b", deps=("a_out",), outs=("b_out",)),
                 stage("c", deps=("b_out",), outs=("c_out",)), stage("free"))
    message = str(info.value)
    assert "cycle" in message and all(f"{n}" in message for n in ("a", "b", "c")) and "free" not in message


def test_stage_depending_on_its_own_out() -> None:
    with pytest.raises(CycleError, match="stage 'a' depends on its own out"):
        graph_of(stage("a", deps=("d/x",), outs=("d",)))


def test_duplicate_and_overlapping_outs_name_both_stages() -> None:
    with pytest.raises(SpecError, match="stages 'a' and 'b' both declare the out 'o'"):
        graph_of(stage("a", outs=("o",)), stage("b", outs=("o",)))
    with pytest.raises(SpecError, match="out 'o/inner' of stage 'b' is inside out 'o' of stage 'a'"):
        graph_of(stage("a", outs=("o",)), stage("b", outs=("o/inner",)))


def test_out_tracked_by_a_pointer_is_an_error() -> None:
    with pytest.raises(SpecError, match=r"'data/raw' is tracked by 'data/raw.pipe' and is also an out of stage 'a'"):
        graph_of(stage("a", outs=("data/raw",)), tracked=("data/raw",))
    with pytest.raises(SpecError, match="stage 'a'"):
        graph_of(stage("a", outs=("data",)), tracked=("data/raw",))


def test_select_targets_upstream_downstream_single_and_groups() -> None:
    g = graph_of(stage("a", outs=("a",)), stage("b", deps=("a",), outs=("b",)), stage("c", deps=("b",)),
                 stage("f@1", group="f"), stage("f@2", group="f"))
    assert select(g, []) == ["a", "b", "c", "f@1", "f@2"] == list(g.order)
    assert select(g, ["b"]) == ["a", "b"]
    assert select(g, ["b"], single=True) == ["b"]
    assert select(g, ["b"], downstream=True) == ["b", "c"]
    assert select(g, ["f"]) == ["f@1", "f@2"]
    assert select(g, ["pipeline.yaml:f@2"]) == ["f@2"]
    with pytest.raises(StageNotFoundError, match=r"did you mean 'f@\d'"):
        select(g, ["f@3"])


def record(path: str, n: int = 1, nfiles: int | None = None) -> PathRecord:
    return PathRecord(path, Oid(f"{n:032x}" + (".dir" if nfiles is not None else "")), n, nfiles)


def test_lock_round_trip_stable_order_and_schema(tmp_path: Path) -> None:
    entry = StageLock(
        cmd="line one\nline two\n",
        deps=(record("z.txt", 2), record("a.txt", 1)),
        params={"params.yaml": {"b": 2, "a": {"x": [1, 2]}}},
        env={"SEED": "1", "UNSET": None},
        outs=(record("out", 3, nfiles=2),),
    )
    write_stage(tmp_path, "train", entry)
    write_stage(tmp_path, "alpha", StageLock("echo"))
    text = (tmp_path / LOCK_FILE).read_text()
    assert text.index("alpha:") < text.index("train:")
    assert text.index("path: a.txt") < text.index("path: z.txt")
    assert "cmd: |\n      line one\n      line two\n" in text
    schema = json.loads((SCHEMA_DIR / "lock.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(text), schema)
    lock = read_lock(tmp_path)
    assert lock.stages["train"].params == entry.params and lock.stages["train"].env == entry.env
    assert {r.path for r in lock.stages["train"].deps} == {"a.txt", "z.txt"}
    write_stage(tmp_path, "train", entry)
    assert (tmp_path / LOCK_FILE).read_text() == text  # rewriting the same entry changes nothing
    assert parse_lock(text.encode()) == lock
    write_stage(tmp_path, "alpha", None)
    assert list(read_lock(tmp_path).stages) == ["train"]


def test_missing_lock_is_empty_and_a_broken_one_is_an_error(tmp_path: Path) -> None:
    assert read_lock(tmp_path) == LockFile()
    (tmp_path / LOCK_FILE).write_text("schema: 1\nstages:\n  a:\n    deps: []\n")
    with pytest.raises(SpecError, match="stage 'a': a stage entry needs 'cmd'"):
        read_lock(tmp_path)
    (tmp_path / LOCK_FILE).write_text("schema: 2\nstages: {}\n")
    with pytest.raises(SpecError, match="unsupported schema 2"):
        read_lock(tmp_path)
    (tmp_path / LOCK_FILE).write_text("schema: 1\nstages:\n  a:\n    cmd: x\n    outs:\n    - {path: ../x, oid: q}\n")
    with pytest.raises(SpecError, match="leaves the project"):
        read_lock(tmp_path)


def test_pipeline_schema_is_valid_json_schema() -> None:
    schema = json.loads((SCHEMA_DIR / "pipeline.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    example = yaml.safe_load((Path(__file__).parents[2] / "examples/get-started/pipeline.yaml").read_text())
    jsonschema.validate(example, schema)


@settings(max_examples=60, deadline=None)
# Params files hold finite numbers that fit in 64 bits (anything else is refused when read).
@given(cmd=st.text(min_size=1), value=st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**64 - 1), st.text(), st.booleans(),
))
def test_any_cmd_and_param_value_round_trip(cmd: str, value: object) -> None:
    lock = LockFile({"s": StageLock(cmd, params={"params.yaml": {"k": value}}, env={"E": cmd})})
    assert parse_lock(dump_lock(lock)) == lock
