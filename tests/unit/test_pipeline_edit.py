"""Editing pipeline.yaml text: new stages appended, flags set, comments and layout kept."""

from __future__ import annotations

import yaml

from pipeline_engine.pipeline.edit import add_stage, set_stage_flag

TEXT = """\
# my pipeline
vars:
  - x: 1
stages:
  # prepare the data
  prep:
    cmd: echo hi   # inline comment
    outs:
      - a
  fit:
    foreach: [1, 2]
    do:
      cmd: echo ${item}

# metrics of the project
metrics:
  - m.json
"""


def test_add_stage_appends_at_the_end_of_stages_keeping_everything_else() -> None:
    new = add_stage(TEXT, "train", {"cmd": "python train.py", "deps": ["a"]})
    assert new.startswith(TEXT.split("\n# metrics")[0])
    assert "  train:\n    cmd: python train.py\n    deps:\n    - a\n\n# metrics of the project\n" in new
    assert list(yaml.safe_load(new)["stages"]) == ["prep", "fit", "train"]


def test_add_stage_to_an_empty_or_missing_file() -> None:
    assert add_stage("", "a", {"cmd": "x"}) == "stages:\n  a:\n    cmd: x\n"
    assert add_stage("vars: []", "a", {"cmd": "x"}) == "vars: []\nstages:\n  a:\n    cmd: x\n"


def test_add_stage_replaces_in_place() -> None:
    new = add_stage(TEXT, "prep", {"cmd": "other"}, replace=True)
    assert "  prep:\n    cmd: other\n  fit:" in new and "# prepare the data" in new
    assert yaml.safe_load(new)["stages"]["prep"] == {"cmd": "other"}


def test_flow_style_falls_back_to_a_full_dump_that_is_still_correct() -> None:
    text = "stages: {a: {cmd: x}}\n"
    assert yaml.safe_load(add_stage(text, "b", {"cmd": "y"}))["stages"] == {"a": {"cmd": "x"}, "b": {"cmd": "y"}}


def test_set_and_remove_a_flag_in_place() -> None:
    frozen = set_stage_flag(TEXT, "prep", "frozen", True)
    assert "  prep:\n    frozen: true\n    cmd: echo hi   # inline comment\n" in frozen
    assert set_stage_flag(frozen, "prep", "frozen", False).count("frozen: false") == 1
    assert set_stage_flag(frozen, "prep", "frozen", None) == TEXT
    assert set_stage_flag(TEXT, "prep", "frozen", None) == TEXT


def test_flag_of_a_foreach_stage_goes_under_do() -> None:
    new = set_stage_flag(TEXT, "fit", "frozen", True)
    assert yaml.safe_load(new)["stages"]["fit"]["do"] == {"frozen": True, "cmd": "echo ${item}"}
