"""The JSON Schemas: one copy for editors (schemas/), one shipped (pipeline_engine/schemas/), used at load time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipeline_engine.cache.pointer import Pointer, read_pointer, write_pointer
from pipeline_engine.config import SETTINGS, Setting, read_config_file
from pipeline_engine.core import schema as core_schema
from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.layout import valid_texts_path
from pipeline_engine.core.record import PathRecord
from pipeline_engine.core.schema import SCHEMA_DIR, check_schema
from pipeline_engine.errors import ConfigError, SpecError
from pipeline_engine.pipeline.lock import LOCK_FILE, StageLock, parse_lock, read_lock, write_stage
from tests.conftest import git

REPO = Path(__file__).parents[2]
TOP = REPO / "schemas"
OID = "0123456789abcdef0123456789abcdef"
POINTER = f"schema: 1\nouts:\n- path: raw.csv\n  hash: xxh3_128\n  oid: {OID}\n  size: 3\n"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text())
    return data


def test_the_editor_copy_and_the_shipped_copy_never_differ() -> None:
    top = {p.name: p.read_bytes() for p in TOP.iterdir()}
    shipped = {p.name: p.read_bytes() for p in SCHEMA_DIR.iterdir() if p.suffix == ".json"}
    assert sorted(top) == sorted(shipped)
    for name, content in top.items():
        assert content == shipped[name], f"schemas/{name} differs from pipeline_engine/schemas/{name}"
    assert {"pipeline", "lock", "pointer", "config", "params-overrides"} == {n.split(".")[0] for n in top}


@pytest.mark.parametrize("name", sorted(p.name for p in TOP.iterdir()))
def test_every_schema_is_valid_draft_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(load(name))


def test_every_config_setting_is_in_the_schema_and_nothing_else() -> None:
    props = load("config.schema.json")["properties"]
    in_schema = {f"{section}.{key}" for section, body in props.items() if "properties" in body and section != "remotes"
                 for key in body["properties"]}
    assert in_schema == set(SETTINGS)


SAMPLES: dict[str, tuple[list[Any], list[Any]]] = {
    "cache.dir": (["/mnt/cache", "../c"], ["", 3, "a\nb"]),
    "cache.jobs": ([1, 1024], [0, 1025, "4", True]),
    "cache.type": (["reflink,copy", "hardlink", ["symlink", "copy"], " copy , reflink"], ["", "fast", [], ["x"], 1]),
    "core.jobs": ([8], [0, 2.5]),
    "core.no_scm": ([True, False], ["yes", 1]),
    "core.remote": (["store"], ["", None]),
    "executor.scheduler": (["tcp://10.0.0.5:8786"], ["", 3]),
    "executor.shared_fs": ([True, False], ["yes", 1]),
    "executor.type": (["local", "dask"], ["ray", "", True]),
    "parsing.bool": (["store_true", "boolean_optional"], ["true", True]),
    "parsing.list": (["nargs", "append"], ["extend"]),
}


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_the_config_schema_agrees_with_the_settings_table(key: str) -> None:
    setting: Setting = SETTINGS[key]
    good, bad = SAMPLES[key]
    validator = jsonschema.Draft202012Validator(load("config.schema.json"))
    section, name = key.split(".")
    for value in good:
        assert setting.valid(value) and validator.is_valid({section: {name: value}}), value
    for value in bad:
        assert not setting.valid(value) and not validator.is_valid({section: {name: value}}), value


def test_params_overrides_schema_takes_file_key_value_items() -> None:
    validator = jsonschema.Draft202012Validator(load("params-overrides.schema.json"))
    assert validator.is_valid([{"file": "params.yaml", "key": "train.lr", "value": 0.1},
                               {"file": "conf/p.json", "key": "layers.0", "value": [1, 2]}])
    for bad in ([{"key": "a", "value": 1}], [{"file": "../p.yaml", "key": "a", "value": 1}],
                [{"file": "p.yaml", "key": "a..b", "value": 1}], [{"file": "p.yaml", "key": "a", "value": 1, "x": 2}]):
        assert not validator.is_valid(bad), bad


def test_what_pipe_writes_satisfies_its_schemas(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    write_pointer(tmp_path, Pointer("d/raw.csv.pipe", PathRecord("raw.csv", Oid(OID), 3, None, True)))
    jsonschema.validate(yaml.safe_load((tmp_path / "d/raw.csv.pipe").read_text()), load("pointer.schema.json"))
    write_stage(tmp_path, "train", StageLock(("a", "b"), params={"p.yaml": {"x": 1}}, env={"E": None}))
    jsonschema.validate(yaml.safe_load((tmp_path / LOCK_FILE).read_text()), load("lock.schema.json"))


def test_a_pointer_with_an_unknown_key_names_the_file_and_key_path(tmp_path: Path) -> None:
    (tmp_path / "raw.csv.pipe").write_text(POINTER + "  md5: abc\n")
    with pytest.raises(SpecError, match=r"^raw.csv.pipe: unknown key 'md5' in 'outs.0'$"):
        read_pointer(tmp_path, "raw.csv.pipe")
    (tmp_path / "raw.csv.pipe").write_text(POINTER + "extra: 1\n")  # `meta` is DVC's, kept
    with pytest.raises(SpecError, match=r"^raw.csv.pipe: unknown key 'extra'$"):
        read_pointer(tmp_path, "raw.csv.pipe")


def test_a_lock_entry_the_schema_refuses_names_the_stage_key_path() -> None:
    text = f"schema: 1\nstages:\n  train:\n    cmd: x\n    outs:\n    - {{path: m, hash: xxh3_128, oid: {OID}, size: 1}}\n    extra: 1\n"
    with pytest.raises(SpecError, match=r"^old.lock: unknown key 'extra' in 'stages.train'$"):
        parse_lock(text, source="old.lock")
    text = f"schema: 1\nstages:\n  t:\n    cmd: x\n    deps:\n    - {{path: d, hash: xxh3_128, oid: {OID}, size: 1, md5: x}}\n"
    with pytest.raises(SpecError, match=r"^pipeline.lock: unknown key 'md5' in 'stages.t.deps.0'$"):
        parse_lock(text)


def test_a_config_value_the_schema_refuses_names_the_file_and_key(tmp_path: Path) -> None:
    control = tmp_path / ".pipe"
    control.mkdir()
    (control / "config.yaml").write_text("remotes:\n  s3:\n    url: s3://b\n    region: [1]\n")
    assert read_config_file(control / "config.yaml")["remotes"]["s3"]["region"] == [1]  # options are the backend's
    (control / "config.yaml").write_text("schema: one\n")
    with pytest.raises(ConfigError, match=r"^.pipe/config.yaml: 'schema': 'one' is not of type 'integer'"):
        read_config_file(control / "config.yaml")


def test_a_text_that_passed_once_is_not_checked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memo = tmp_path / ".pipe" / "tmp"
    memo.mkdir(parents=True)
    (tmp_path / "a.pipe").write_text(POINTER.replace("raw.csv", "a"))
    read_pointer(tmp_path, "a.pipe")
    assert len(valid_texts_path(memo).read_text().split()) == 1
    core_schema._known.clear()  # a new process: the memo file is all it knows

    def refuse(*_: object) -> None:
        raise AssertionError("checked again")

    monkeypatch.setattr(core_schema, "schema_errors", refuse)
    assert read_pointer(tmp_path, "a.pipe").out.size == 3
    write_pointer(tmp_path, Pointer("b.pipe", PathRecord("b", Oid(OID), 5)))
    assert read_pointer(tmp_path, "b.pipe").out.size == 5  # written by pipe: remembered, never checked
    write_stage(tmp_path, "s", StageLock("x"))
    assert list(read_lock(tmp_path).stages) == ["s"]
    (tmp_path / "c.pipe").write_text(POINTER.replace("raw.csv", "c"))
    with pytest.raises(AssertionError, match="checked again"):
        read_pointer(tmp_path, "c.pipe")


def test_check_schema_without_text_always_checks() -> None:
    with pytest.raises(SpecError, match=r"^p: 'schema': 1 was expected"):
        check_schema({"schema": 2, "outs": []}, name="pointer.schema.json", source="p")


def test_a_no_op_status_after_add_does_not_import_jsonschema(tmp_path: Path) -> None:
    """pipe add remembers what it wrote, so the next status reads 20 pointers without the ~50 ms import."""
    git(tmp_path, "init", "-q")
    pipe = [sys.executable, "-m", "pipeline_engine"]
    subprocess.run([*pipe, "init"], cwd=tmp_path, check=True, capture_output=True)
    for i in range(20):
        (tmp_path / f"f{i}.txt").write_text(str(i))
    subprocess.run([*pipe, "add", *(f"f{i}.txt" for i in range(20))], cwd=tmp_path, check=True, capture_output=True)
    probe = ("import sys\nfrom pipeline_engine.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('JSONSCHEMA' if 'jsonschema' in sys.modules else 'LIGHT', file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", probe, "status"], cwd=tmp_path, capture_output=True, text=True,
                         check=False)
    assert "up to date: 20 tracked" in out.stderr and out.stderr.strip().endswith("LIGHT"), (out.stdout, out.stderr)


def test_texts_read_at_a_revision_are_remembered_in_the_given_memo(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline_engine.pipeline.spec import load_spec
    from pipeline_engine.scm.git import Git

    git(tmp_path, "init", "-q")
    (tmp_path / "pipeline.yaml").write_text("stages:\n  a:\n    cmd: echo\n")
    (tmp_path / "a.pipe").write_text(POINTER.replace("raw.csv", "a"))
    (tmp_path / LOCK_FILE).write_text("schema: 1\nstages:\n  a:\n    cmd: echo\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "c")
    memo = tmp_path / ".pipe" / "tmp"
    memo.mkdir(parents=True)
    files = Git(tmp_path).files_at("HEAD")
    load_spec(files, memo=memo)
    read_pointer(files, "a.pipe", memo=memo)
    read_lock(files, memo=memo)
    assert len(valid_texts_path(memo).read_text().split()) == 3
    core_schema._known.clear()

    def refuse(*_: object) -> None:
        raise AssertionError("checked again")

    monkeypatch.setattr(core_schema, "schema_errors", refuse)
    monkeypatch.setattr("pipeline_engine.pipeline.validate.schema_errors", refuse)
    assert list(load_spec(files, memo=memo).stages) == ["a"]
    assert read_pointer(files, "a.pipe", memo=memo).out.size == 3 and list(read_lock(files, memo=memo).stages) == ["a"]
    assert list(load_spec(tmp_path).stages) == ["a"]  # the workspace's memo is .pipe/tmp by default
