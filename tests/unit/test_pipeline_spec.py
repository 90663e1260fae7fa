"""pipeline.yaml loading: schema errors with file/line/stage/key, templating, foreach/matrix, params."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.interpolate import Context, Resolver
from pipeline_engine.pipeline.outputs import PlotOptions
from pipeline_engine.pipeline.params import lookup, pick, read_params_file
from pipeline_engine.pipeline.spec import OutKind, ParamsDep, load_spec, norm_path, parse_spec


def spec_of(tmp_path: Path, text: str, **files: str):  # type: ignore[no-untyped-def]
    for name, content in files.items():
        (tmp_path / name.replace("__", ".")).write_text(content)
    return parse_spec(text, root=tmp_path)


def error_of(tmp_path: Path, text: str, **files: str) -> str:
    with pytest.raises(SpecError) as info:
        spec_of(tmp_path, text, **files)
    return str(info.value)


def test_missing_file_or_empty_stages_is_an_empty_pipeline(tmp_path: Path) -> None:
    assert load_spec(tmp_path).stages == {}
    assert spec_of(tmp_path, "stages:\n").stages == {}
    assert spec_of(tmp_path, "# nothing yet\n").stages == {}


def test_full_stage_fields(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, """
stages:
  train:
    desc: fit
    wdir: src
    cmd:
      - python train.py
      - echo done
    deps: [train.py, ../data]
    params:
      - lr
      - other.json: [a.b]
      - whole.toml
    outs:
      - model.pkl
      - cache_dir: {cache: false, persist: true, push: false, desc: d}
    metrics: [{m.json: {cache: false}}]
    plots: [{roc.csv: {x: fpr, y: tpr, title: ROC}}]
    env: [SEED]
    frozen: true
    always_changed: false
    meta: {anything: [1, 2]}
""")
    s = spec.stages["train"]
    assert s.cmd == ("python train.py", "echo done") and s.wdir == "src"  # a list: items run apart
    assert s.deps == ("src/train.py", "data")
    assert s.params == (ParamsDep("src/params.yaml", ("lr",)), ParamsDep("src/other.json", ("a.b",)),
                        ParamsDep("src/whole.toml", None))
    assert [(o.path, o.kind, o.cache, o.persist, o.push) for o in s.outs] == [
        ("src/model.pkl", OutKind.OUT, True, False, True), ("src/cache_dir", OutKind.OUT, False, True, False),
        ("src/m.json", OutKind.METRIC, False, False, True), ("src/roc.csv", OutKind.PLOT, True, False, True),
    ]
    assert s.outs[3].plot == PlotOptions(x="fpr", y="tpr", title="ROC") and s.outs[0].plot is None
    assert s.env == ("SEED",) and s.frozen and s.desc == "fit"


def test_dvc_top_level_keys_are_accepted(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, "vars: [{a: 1}]\nparams: [p.yaml]\nmetrics: [m.json]\nplots: [p.csv]\n"
                             "artifacts: {model: {path: m.pkl}}\nstages:\n  s:\n    cmd: echo ${a}\n")
    assert spec.stages["s"].cmd == "echo 1" and spec.metrics == ("m.json",)


@pytest.mark.parametrize(("text", "expected"), [
    ("stages:\n  a:\n    cmd: x\n    dep: [y]\n", "pipeline.yaml:4: stage 'a': unknown key 'dep' (did you mean 'deps'?)"),
    ("stages:\n  a:\n    cmd: x\n    outs: 5\n", "pipeline.yaml:4: stage 'a': 'outs' must be a list, not 5"),
    ("stagess:\n  a: {}\n", "pipeline.yaml:1: unknown key 'stagess' (did you mean 'stages'?)"),
    ("stages:\n  a:\n    cmd: x\n    frozen: yes please\n", "pipeline.yaml:4: stage 'a': 'frozen'"),
    ("stages:\n  a:\n    cmd: x\n    outs:\n      - o: {cahce: false}\n",
     "pipeline.yaml:5: stage 'a': unknown key 'cahce' (did you mean 'cache'?)"),
    ("stages:\n  a:\n    deps: [x]\n", "stage 'a': 'cmd' is required"),
    ("stages:\n  a:\n    cmd: x\n  b: [\n", "pipeline.yaml:5:1: invalid YAML"),
    ("stages:\n  a:\n    cmd: x\n    outs: [../up]\n", "stage 'a': path '../up' leaves the project"),
    ("stages:\n  a:\n    cmd: x\n    outs: [/abs]\n", "stage 'a': path '/abs' must be relative"),
    ("stages:\n  a:\n    cmd: echo ${nope.x}\n", "pipeline.yaml:2: stage 'a': '${nope.x}' is not defined"),
    ("stages:\n  a:\n    foreach: [1]\n", "pipeline.yaml:3: stage 'a': 'foreach' needs 'do'"),
    ("stages:\n  a:\n    do: {cmd: x}\n", "pipeline.yaml:3: stage 'a': 'do' needs 'foreach'"),
    ("stages:\n  a:\n    foreach: [1]\n    cmd: x\n    do: {cmd: x}\n", "'cmd' belongs under 'do'"),
    ("stages:\n  a:\n    foreach: 5\n    do: {cmd: x}\n", "pipeline.yaml:3:"),
    ("stages:\n  'bad name':\n    cmd: x\n", "invalid stage name 'bad name'"),
])
def test_errors_name_file_line_stage_and_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_interpolation_of_params_vars_lists_and_escapes(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, r"""
vars:
  - extra.yaml
  - local: {n: 3}
stages:
  s:
    cmd: run ${train.lr} ${layers[1]} ${local.n} ${e} \${literal} ${train.flag}
    outs:
      - out_${local.n}
""", params__yaml="train:\n  lr: 0.1\n  flag: true\nlayers: [8, 16]\n", extra__yaml="e: E\n")
    s = spec.stages["s"]
    assert s.cmd == "run 0.1 16 3 E ${literal} true"
    assert s.outs[0].path == "out_3"
    assert set(s.params) == {ParamsDep("params.yaml", ("layers.1", "train.flag", "train.lr")),
                             ParamsDep("extra.yaml", ("e",))}


def test_whole_value_template_keeps_its_type(tmp_path: Path) -> None:
    ctx = Context().merged({"xs": [1, 2]}, label="params.yaml", source="params.yaml").merged(
        {"m": {"a": 1}}, label="vars[0]")
    r = Resolver(ctx, where="here")
    assert r.resolve("${xs}") == [1, 2] and r.resolve({"k": "${m}"}) == {"k": {"a": 1}}
    with pytest.raises(SpecError, match="only a whole value"):
        r.resolve("a ${m}")
    assert r.used == {("params.yaml", "xs")}


def test_foreach_over_list_mapping_and_param(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, """
stages:
  l:
    foreach: [a, b]
    do: {cmd: "echo ${item}"}
  m:
    foreach:
      us: {lr: 1}
      eu: {lr: 2}
    do: {cmd: "echo ${key} ${item.lr}"}
  p:
    foreach: ${models}
    do: {cmd: "echo ${item.name}"}
""", params__yaml="models:\n  - {name: x}\n  - {name: y}\n")
    assert {n: s.cmd for n, s in spec.stages.items()} == {
        "l@a": "echo a", "l@b": "echo b", "m@us": "echo us 1", "m@eu": "echo eu 2",
        "p@0": "echo x", "p@1": "echo y",
    }
    assert spec.stages["m@us"].group == "m"


def test_matrix_is_a_cartesian_product(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, """
stages:
  g:
    matrix:
      lr: [0.1, 0.2]
      opt: [sgd, adam]
      cfg: [{a: 1}]
    cmd: fit ${item.lr} ${item.opt} ${item.cfg.a}
""")
    assert list(spec.stages) == ["g@0.1-sgd-cfg0", "g@0.1-adam-cfg0", "g@0.2-sgd-cfg0", "g@0.2-adam-cfg0"]
    assert spec.stages["g@0.2-adam-cfg0"].cmd == "fit 0.2 adam 1"


def test_generated_name_clash_is_an_error(tmp_path: Path) -> None:
    text = "stages:\n  a:\n    foreach: [x, x]\n    do: {cmd: y}\n"
    assert "pipeline.yaml:2: stage 'a@x' is defined twice" in error_of(tmp_path, text)


def test_trusted_digest_skips_schema_but_not_templating(tmp_path: Path) -> None:
    text = "stages:\n  a:\n    cmd: x\n    unknown: 1\n"
    with pytest.raises(SpecError):
        parse_spec(text, root=tmp_path)
    digest = parse_spec("stages:\n  a:\n    cmd: x\n", root=tmp_path).digest
    assert parse_spec("stages:\n  a:\n    cmd: x\n", root=tmp_path, trusted_digest=digest).stages["a"].cmd == "x"


def test_norm_path() -> None:
    assert norm_path("src", "../data/x", what="w") == "data/x"
    assert norm_path("", "./a//b", what="w") == "a/b"
    with pytest.raises(SpecError, match="leaves the project"):
        norm_path("src", "../../x", what="w")


def test_params_files_of_every_format(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("a:\n  b: [1, 2]\n")
    (tmp_path / "p.json").write_text('{"a": {"b": 2}}')
    (tmp_path / "p.toml").write_text("[a]\nb = 3\n")
    (tmp_path / "bad.json").write_text("{")
    assert lookup(read_params_file(tmp_path / "p.yaml", source="p.yaml"), "a.b.1") == 2
    assert pick(read_params_file(tmp_path / "p.json", source="p.json"), ["a.b"], source="p.json", stage="s") == {
        "a.b": 2}
    assert pick(read_params_file(tmp_path / "p.toml", source="p.toml"), None, source="p.toml", stage="s") == {
        "a": {"b": 3}}
    with pytest.raises(SpecError, match="bad.json:1:2: invalid JSON"):
        read_params_file(tmp_path / "bad.json", source="bad.json")
    with pytest.raises(SpecError, match="stage 's': param 'a.c' is not in 'p.yaml'"):
        pick({"a": {}}, ["a.c"], source="p.yaml", stage="s")
    with pytest.raises(SpecError, match="'missing.yaml' does not exist"):
        read_params_file(tmp_path / "missing.yaml", source="missing.yaml")
