"""Editing pipeline.yaml text: new stages appended, flags set, comments and layout kept."""

from __future__ import annotations

import yaml

from pipeline_engine.pipeline.edit import add_stage, remove_stage, set_stage_flag

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


FLOW = """\
# my pipeline
stages:
  # the one stage
  a: {cmd: x, deps: [in.txt]}  # flow style
  b:
    cmd: "quoted"
    outs:
      - o  # a list indented by 4
"""


def test_flow_style_is_edited_keeping_comments_flow_style_and_indentation() -> None:
    new = add_stage(FLOW, "c", {"cmd": "y"})
    assert yaml.safe_load(new)["stages"]["c"] == {"cmd": "y"}
    assert new.startswith("# my pipeline\nstages:\n  # the one stage\n  a: {cmd: x, deps: [in.txt]}")
    assert "# flow style" in new and '    cmd: "quoted"\n' in new and "      - o  # a list indented by 4\n" in new
    frozen = set_stage_flag(FLOW, "a", "frozen", True)
    assert "  a: {cmd: x, deps: [in.txt], frozen: true}" in frozen and "# the one stage" in frozen
    back = set_stage_flag(frozen, "a", "frozen", None)
    assert yaml.safe_load(back) == yaml.safe_load(FLOW)
    assert back.replace(" ", "") == FLOW.replace(" ", "")  # only the comment's column may move


def test_a_flow_style_stages_mapping_stays_flow_style() -> None:
    new = add_stage("# top\nstages: {a: {cmd: x}}  # flow\n", "b", {"cmd": "y"})
    assert new.startswith("# top\nstages: {a: {cmd: x}, b: {cmd: y}}") and "# flow" in new


def test_round_trip_edits_keep_yaml_12_strings() -> None:
    text = "stages: {a: {cmd: echo no, env: [off]}}  # c\n"
    frozen = set_stage_flag(text, "a", "frozen", True)
    assert yaml.safe_load(frozen.replace("off", "'off'"))["stages"]["a"]["frozen"] is True
    assert "env: [off]" in frozen


def test_pipe_help_and_status_do_not_import_ruamel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    probe = ("import sys\nfrom pipeline_engine.cli import cli\n"
             "try:\n    cli.main(args=sys.argv[1:], prog_name='pipe', standalone_mode=False)\n"
             "except BaseException:\n    pass\n"
             "print('RUAMEL' if any(m.startswith('ruamel') for m in sys.modules) else 'LIGHT')\n")
    for args in (["--help"], ["status"], ["stage", "--help"]):
        out = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True,
                             check=False)
        assert out.stdout.strip().endswith("LIGHT"), (args, out.stdout, out.stderr)


def test_set_and_remove_a_flag_in_place() -> None:
    frozen = set_stage_flag(TEXT, "prep", "frozen", True)
    assert "  prep:\n    frozen: true\n    cmd: echo hi   # inline comment\n" in frozen
    assert set_stage_flag(frozen, "prep", "frozen", False).count("frozen: false") == 1
    assert set_stage_flag(frozen, "prep", "frozen", None) == TEXT
    assert set_stage_flag(TEXT, "prep", "frozen", None) == TEXT


def test_flag_of_a_foreach_stage_goes_under_do() -> None:
    new = set_stage_flag(TEXT, "fit", "frozen", True)
    assert yaml.safe_load(new)["stages"]["fit"]["do"] == {"frozen": True, "cmd": "echo ${item}"}


def test_remove_stage_drops_only_its_lines_and_keeps_comments() -> None:
    without_prep = remove_stage(TEXT, "prep")
    assert "prep" not in without_prep and "# my pipeline" in without_prep and "fit:" in without_prep
    assert set(yaml.safe_load(without_prep)["stages"]) == {"fit"}
    without_fit = remove_stage(TEXT, "fit")  # a foreach stage goes as a whole
    assert "# inline comment" in without_fit and set(yaml.safe_load(without_fit)["stages"]) == {"prep"}
    flow = remove_stage("stages: {a: {cmd: x}, b: {cmd: y}}\n", "a")
    assert yaml.safe_load(flow) == {"stages": {"b": {"cmd": "y"}}}
