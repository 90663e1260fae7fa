"""Templating and YAML semantics through `pipe repro`, as DVC 3.x resolves dvc.yaml (issue 8, group 3)."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import Cli, Workspace
from tests.func.repro_helpers import lock_of


def files(workspace: Workspace, **texts: str) -> None:
    workspace.write({name.replace("__", "."): text for name, text in texts.items()})


def test_vars_inside_do_of_a_foreach(workspace: Workspace, cli: Cli) -> None:
    files(workspace, pipeline__yaml=(
        "stages:\n  b:\n    foreach: [x, y]\n"
        "    do: {vars: [{z: zz}], cmd: 'echo ${item} ${z} > ${item}.txt', outs: ['${item}.txt']}\n"))
    cli.run("repro")
    assert workspace.read("x.txt") == "x zz\n" and workspace.read("y.txt") == "y zz\n"


def test_vars_of_a_matrix_stage_and_key_in_matrix_and_foreach_over_dict(workspace: Workspace, cli: Cli) -> None:
    files(workspace, pipeline__yaml="""\
stages:
  m:
    vars: [{tag: T}]
    matrix: {a: [1, 2], b: [p]}
    cmd: echo ${key} ${item.a} ${item.b} ${tag} > m-${key}.txt
    outs: ['m-${key}.txt']
  d:
    foreach: {us: {lr: 1}, eu: {lr: 2}}
    do:
      cmd: echo ${key} ${item.lr} > d-${key}.txt
      outs: ['d-${key}.txt']
""")
    cli.run("repro")
    assert workspace.read("m-1-p.txt") == "1-p 1 p T\n" and workspace.read("m-2-p.txt") == "2-p 2 p T\n"
    assert workspace.read("d-us.txt") == "us 1\n" and workspace.read("d-eu.txt") == "eu 2\n"


def test_vars_cannot_redefine_item(workspace: Workspace, cli: Cli) -> None:
    files(workspace, pipeline__yaml="stages:\n  b:\n    foreach: [x]\n    do: {vars: [{item: 1}], cmd: echo}\n")
    result = cli.run("repro", exit_code=1)
    assert "attempted to modify reserved key 'item'" in result.stderr


def test_a_dict_in_cmd_becomes_flags(workspace: Workspace, cli: Cli) -> None:
    files(workspace, params__yaml="d:\n  foo: 1\n  flag: true\n  off: false\n  s: two words\n  l: [1, b]\n  n: {x: 2}\n",
          pipeline__yaml="stages:\n  s:\n    cmd: echo ${d} > o.txt\n    outs: [o.txt]\n")
    cli.run("repro")
    assert workspace.read("o.txt") == "--foo 1 --flag --s two words --l 1 b --n.x 2\n"
    assert yaml.safe_load(workspace.read("pipeline.lock"))["stages"]["s"]["cmd"] == (
        "echo --foo 1 --flag --s 'two words' --l 1 b --n.x 2 > o.txt")


def test_indexing_syntax(workspace: Workspace, cli: Cli) -> None:
    files(workspace, params__yaml="a:\n  b:\n    - {c: first}\n    - {c: last}\n",
          pipeline__yaml="stages:\n  s:\n    cmd: echo ${a.b[0].c} ${a[b][1].c} ${ a.b.0.c } ${a.b[-1].c} > o.txt\n"
                         "    outs: [o.txt]\n")
    cli.run("repro")
    assert workspace.read("o.txt") == "first last first last\n"
    assert lock_of(workspace.root)["stages"]["s"]["params"]["params.yaml"] == {
        "a.b.0.c": "first", "a.b.1.c": "last"}


def test_params_and_vars_files_merge_deeply_and_both_are_tracked(workspace: Workspace, cli: Cli) -> None:
    files(workspace, params__yaml="m:\n  a: 1\n", more__yaml="m:\n  b: 2\n",
          pipeline__yaml="vars: [more.yaml]\nstages:\n  s:\n    cmd: echo ${m.a} ${m.b} > o.txt\n    outs: [o.txt]\n")
    cli.run("repro")
    assert workspace.read("o.txt") == "1 2\n"
    files(workspace, params__yaml="m:\n  a: 5\n")
    cli.run("repro")
    assert workspace.read("o.txt") == "5 2\n"
    assert lock_of(workspace.root)["stages"]["s"]["params"] == {"params.yaml": {"m.a": 5}, "more.yaml": {"m.b": 2}}


def test_redefining_a_key_from_two_sources_is_an_error_naming_both(workspace: Workspace, cli: Cli) -> None:
    files(workspace, params__yaml="lr: 0.1\n",
          pipeline__yaml="vars: [{lr: 0.5}]\nstages:\n  s:\n    cmd: echo ${lr}\n")
    result = cli.run("repro", exit_code=1)
    assert all(name in result.stderr for name in ("'lr'", "'vars[0]'", "'params.yaml'"))
    files(workspace, params__yaml="m:\n  a: 1\n", more__yaml="m:\n  a: 2\n",
          pipeline__yaml="vars: [more.yaml]\nstages:\n  s:\n    cmd: echo ${m.a}\n")
    result = cli.run("repro", exit_code=1)
    assert all(name in result.stderr for name in ("'m.a'", "'more.yaml'", "'params.yaml'"))
    files(workspace, pipeline__yaml="vars: [{x: 1}]\nstages:\n  s:\n    vars: [{x: 2}]\n    cmd: echo ${x}\n")
    result = cli.run("repro", exit_code=1)
    assert all(name in result.stderr for name in ("'x'", "'s.vars[0]'", "'vars[0]'"))


def test_yaml_12_scalars_as_dvc_reads_them(workspace: Workspace, cli: Cli) -> None:
    files(workspace, params__yaml="country: no\nbig: 1e6\n",
          pipeline__yaml="stages:\n  s:\n    cmd: echo ${country} ${big} > o.txt\n    params: [country]\n"
                         "    outs: [o.txt]\n")
    cli.run("repro")
    assert workspace.read("o.txt") == "no 1000000.0\n"
    lock_text = workspace.read("pipeline.lock")
    assert "country: 'no'" in lock_text  # quoted, so YAML 1.1 readers see a string too
    assert lock_of(workspace.root)["stages"]["s"]["params"]["params.yaml"] == {"country": "no", "big": 1e6}
    assert "nothing to do" in cli.run("repro").stderr  # the lock's values read back equal


def test_a_key_named_off_is_the_string_off(workspace: Workspace, cli: Cli) -> None:
    files(workspace, params__yaml="off: 1\non: 2\n",
          pipeline__yaml="stages:\n  s:\n    cmd: echo ${off} ${on} > o.txt\n    outs: [o.txt]\n")
    cli.run("repro")
    assert workspace.read("o.txt") == "1 2\n"


def test_stage_add_p_a_b_is_two_params(workspace: Workspace, cli: Cli) -> None:
    files(workspace, params__yaml="a: 1\nb: 2\n", other__yaml="x: 1\ny: 2\n")
    cli.run("stage", "add", "-n", "s", "-p", "a,b", "-p", "other.yaml:x,y", "echo", "hi")
    stage = yaml.safe_load(workspace.read("pipeline.yaml"))["stages"]["s"]
    assert stage["params"] == ["a", "b", {"other.yaml": ["x", "y"]}]
    cli.run("repro")
    assert lock_of(workspace.root)["stages"]["s"]["params"] == {"params.yaml": {"a": 1, "b": 2},
                                                                "other.yaml": {"x": 1, "y": 2}}


FLOW_PIPELINE = """\
# data pipeline
stages:
  prep: {cmd: echo p > p.txt, outs: [p.txt]}  # fast
  train:
    cmd: echo t > t.txt   # slow
    outs:
      - t.txt
"""


def test_freeze_unfreeze_and_stage_add_keep_comments_and_flow_style(workspace: Workspace, cli: Cli) -> None:
    files(workspace, pipeline__yaml=FLOW_PIPELINE)
    cli.run("freeze", "prep")
    text = workspace.read("pipeline.yaml")
    assert "prep: {cmd: echo p > p.txt, outs: [p.txt], frozen: true}" in text
    assert text.startswith("# data pipeline\n") and "# fast" in text and "    cmd: echo t > t.txt   # slow\n" in text
    cli.run("unfreeze", "prep")
    assert workspace.read("pipeline.yaml").replace(" ", "") == FLOW_PIPELINE.replace(" ", "")
    cli.run("stage", "add", "-n", "eval", "-d", "t.txt", "echo", "e")
    text = workspace.read("pipeline.yaml")
    assert "# fast" in text and "# slow" in text and "prep: {cmd: echo p > p.txt, outs: [p.txt]}" in text
    assert yaml.safe_load(text)["stages"]["eval"] == {"cmd": "echo e", "deps": ["t.txt"]}


def test_parsing_bool_and_list_config_as_dvc(workspace: Workspace, cli: Cli) -> None:
    files(workspace, params__yaml="d:\n  on: false\n  l: [1, 2]\n",
          pipeline__yaml="stages:\n  s:\n    cmd: echo ${d} > o.txt\n    outs: [o.txt]\n")
    cli.run("config", "parsing.bool", "boolean_optional")
    cli.run("config", "parsing.list", "append")
    cli.run("repro")
    assert workspace.read("o.txt") == "--no-on --l 1 --l 2\n"
    result = cli.run("config", "parsing.list", "many", exit_code=None)
    assert result.exit_code != 0 and "nargs or append" in result.output


@pytest.mark.parametrize("value", ["{x: 1}", "[1]", "true"])
@pytest.mark.parametrize("field", ["outs", "deps", "wdir"])
def test_a_template_that_yields_no_path_is_an_error_naming_the_stage(
    workspace: Workspace, cli: Cli, field: str, value: str
) -> None:
    """Red-team finding: `outs: ["${a}"]` with a mapping, list or bool crashed (exit 70)."""
    (workspace.root / "params.yaml").write_text(f"a: {value}\n")
    body = "    wdir: ${a}\n    outs: [o]\n" if field == "wdir" else f'    {field}: ["${{a}}"]\n'
    (workspace.root / "pipeline.yaml").write_text("stages:\n  s:\n    cmd: echo hi\n" + body)
    for command in ("status", "repro", "dag"):
        result = cli.run(command, exit_code=1)
        assert "pipeline.yaml" in result.stderr and "stage 's'" in result.stderr, result.stderr
