"""`-S [FILE:]KEY=VALUE` overrides: parsing, sweeps and their product, and rewriting YAML/JSON/TOML params files."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from pipeline_engine.errors import SpecError, UnsafePathError
from pipeline_engine.pipeline.overrides import (
    Override,
    apply_overrides,
    combinations,
    from_records,
    parse_sweep,
    to_records,
)
from tests.conftest import Workspace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize(("text", "file", "key", "values"), [
    ("train.lr=0.1", "params.yaml", "train.lr", (0.1,)),
    ("train.lr=0.1,0.2,0.3", "params.yaml", "train.lr", (0.1, 0.2, 0.3)),
    ("conf/p.json:a.b=no", "conf/p.json", "a.b", ("no",)),  # YAML 1.2: `no` is a string
    ("layers=[1, 2],[3]", "params.yaml", "layers", ([1, 2], [3])),
    ("n=range(3)", "params.yaml", "n", (0, 1, 2)),
    ("n=range(1, 7, 2)", "params.yaml", "n", (1, 3, 5)),
    ("lr=range(0.1, 0.4, 0.1)", "params.yaml", "lr", (0.1, 0.2, 0.3)),
    ("opt=choice(adam, sgd)", "params.yaml", "opt", ("adam", "sgd")),
    ("url=http://x:1/a", "params.yaml", "url", ("http://x:1/a",)),
    ("s=", "params.yaml", "s", ("",)),
    ("s=a,''", "params.yaml", "s", ("a", "")),
])
def test_parse_sweep_reads_values_and_sweeps(text: str, file: str, key: str, values: tuple[object, ...]) -> None:
    sweep = parse_sweep(text)
    assert (sweep.file, sweep.key) == (file, key)
    assert sweep.values == pytest.approx(values) if isinstance(values[0], float) else sweep.values == values


@pytest.mark.parametrize("text", ["lr", "=1", "a..b=1", "n=range(1, 5, 0)", "n=range(5, 1)", "n=range(a)",
                                  "n=choice()", "lr=1,", "lr=1,,2", "opt=choice(adam,)"])
def test_parse_sweep_refuses_malformed_options(text: str) -> None:
    with pytest.raises(SpecError):
        parse_sweep(text)


@pytest.mark.parametrize("text", ["../p.yaml:a=1", ".git/config:a=1", ".pipe/config.yaml:a=1", "/etc/p.yaml:a=1"])
def test_parse_sweep_refuses_files_outside_the_project(text: str) -> None:
    with pytest.raises(UnsafePathError):
        parse_sweep(text)


def test_combinations_are_the_cartesian_product_first_option_slowest() -> None:
    combos = combinations([parse_sweep("a=1,2"), parse_sweep("b=x,y,z"), parse_sweep("c=0")])
    assert [tuple(o.value for o in c) for c in combos] == [
        (1, "x", 0), (1, "y", 0), (1, "z", 0), (2, "x", 0), (2, "y", 0), (2, "z", 0)]
    assert combinations([]) == [()]
    with pytest.raises(SpecError, match="given twice"):
        combinations([parse_sweep("a=1"), parse_sweep("params.yaml:a=2")])


def test_records_round_trip_through_the_schema() -> None:
    overrides = (Override("params.yaml", "train.lr", 0.1), Override("p.json", "layers.0", [1, 2]))
    assert from_records(to_records(overrides), source="q") == overrides
    with pytest.raises(SpecError, match="q"):
        from_records([{"file": "../x", "key": "a", "value": 1}], source="q")
    with pytest.raises(SpecError):
        from_records([{"file": "p.yaml", "key": "a", "value": 1, "extra": 2}], source="q")


def test_yaml_rewrite_keeps_comments_order_and_other_values() -> None:
    text = "# top\nb: 1\ntrain:\n  lr: 0.1  # rate\n  name: 'x'\nlayers: [1, 2, 3]\n"
    new = apply_overrides(text, [Override("params.yaml", "train.lr", 0.5), Override("params.yaml", "layers.1", 9)],
                          relpath="params.yaml")
    assert new == "# top\nb: 1\ntrain:\n  lr: 0.5  # rate\n  name: 'x'\nlayers: [1, 9, 3]\n"


def test_json_and_toml_rewrites_set_the_values() -> None:
    js = apply_overrides('{\n  "a": {"b": 1},\n  "c": true\n}\n', [Override("p.json", "a.b", 2.5)], relpath="p.json")
    assert json.loads(js) == {"a": {"b": 2.5}, "c": True} and js.startswith('{\n  "a"')
    toml = 'title = "t"\n[train]\nlr = 0.1\nlayers = [1, 2]\n[train.opt]\nname = "adam"\n'
    new = apply_overrides(toml, [Override("p.toml", "train.opt.name", "sgd"), Override("p.toml", "train.lr", 1)],
                          relpath="p.toml")
    assert tomllib.loads(new) == {"title": "t", "train": {"lr": 1, "layers": [1, 2], "opt": {"name": "sgd"}}}


def test_a_key_the_file_lacks_is_an_error_naming_the_file() -> None:
    with pytest.raises(SpecError, match="param 'train.momentum' is not in 'conf/p.yaml'"):
        apply_overrides("train:\n  lr: 1\n", [Override("conf/p.yaml", "train.momentum", 1)], relpath="conf/p.yaml")
    with pytest.raises(SpecError, match="not in"):
        apply_overrides("layers: [1]\n", [Override("p.yaml", "layers.3", 1)], relpath="p.yaml")


def test_overrides_in_another_params_file_and_format(workspace: Workspace) -> None:
    workspace.write({"params.yaml": "x: 1\n", "conf.json": '{"depth": 2}',
                     "out.py": "import json; print(json.load(open('conf.json'))['depth'])"})
    workspace.write_pipeline({"s": {"cmd": "python out.py > o.txt", "params": [{"conf.json": ["depth"]}],
                                    "deps": ["out.py"], "outs": [{"o.txt": {"cache": False}}]}})
    workspace.pipe("repro")
    workspace.commit("base")
    workspace.pipe("exp", "run", "-n", "deep", "-S", "conf.json:depth=8")
    ref = workspace.git("for-each-ref", "--format=%(objectname)", "refs/exps").strip()
    assert workspace.git("show", f"{ref}:o.txt").strip() == "8"
    assert yaml.safe_load(workspace.git("show", f"{ref}:conf.json")) == {"depth": 8}


def test_an_override_of_a_symlinked_params_file_reaches_what_the_stage_reads(workspace: Workspace) -> None:
    workspace.write({"conf/params.yaml": "lr: 0.1\n"})
    (workspace.root / "params.yaml").symlink_to("conf/params.yaml")
    workspace.write_pipeline({"s": {"cmd": "cat conf/params.yaml > o.txt", "params": ["lr"],
                                    "outs": [{"o.txt": {"cache": False}}]}})
    workspace.pipe("repro")
    workspace.commit("base")
    workspace.pipe("exp", "run", "-n", "fast", "-S", "lr=0.5")
    ref = workspace.git("for-each-ref", "--format=%(objectname)", "refs/exps").strip()
    assert workspace.git("show", f"{ref}:o.txt") == "lr: 0.5\n"  # the stage saw the value the lock records
    assert workspace.git("ls-tree", ref, "params.yaml").startswith("120000")  # still a link


def test_hydra_prefixes_add_force_and_delete_keys(workspace: Workspace) -> None:
    # DVC takes Hydra's `+key=v` (add a key), `++key=v` (set or add) and `~key` (delete) in `exp run -S`.
    workspace.write({"params.yaml": "# lr\nlr: 0.1\nopt: {name: sgd, beta: 2}\n", "conf.json": '{"a": 1, "b": 2}'})
    workspace.write_pipeline({"s": {"cmd": "cat params.yaml conf.json > o.txt", "params": ["lr"],
                                    "outs": [{"o.txt": {"cache": False}}]}})
    workspace.pipe("repro")
    workspace.commit("base")
    workspace.pipe("exp", "run", "-n", "hydra", "-S", "+opt.momentum=0.9", "-S", "+new.deep=1", "-S", "++lr=0.5",
                   "-S", "~opt.beta", "-S", "conf.json:~b")
    ref = workspace.git("for-each-ref", "--format=%(objectname)", "refs/exps").strip()
    assert workspace.git("show", f"{ref}:params.yaml").startswith("# lr\n")  # comments kept
    assert yaml.safe_load(workspace.git("show", f"{ref}:params.yaml")) == {
        "lr": 0.5, "opt": {"name": "sgd", "momentum": 0.9}, "new": {"deep": 1}}
    assert json.loads(workspace.git("show", f"{ref}:conf.json")) == {"a": 1}

    taken = workspace.pipe("exp", "run", "-S", "+lr=1", exit_code=1)
    assert "param 'lr' is already in 'params.yaml'" in taken.stderr
    missing = workspace.pipe("exp", "run", "-S", "~nokey", exit_code=1)
    assert "param 'nokey' is not in 'params.yaml'" in missing.stderr and "-S +nokey=VALUE" in missing.stderr


def test_hydra_prefixes_survive_the_queue_record() -> None:
    overrides = combinations([parse_sweep("+a.b=1,2"), parse_sweep("p.json:~c")])
    assert [[o.text for o in c] for c in overrides] == [["+a.b=1", "~c"], ["+a.b=2", "~c"]]
    assert from_records(to_records(overrides[0]), source="q") == overrides[0]
    with pytest.raises(SpecError, match="~KEY"):
        parse_sweep("~a=1")
