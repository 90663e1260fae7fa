"""pipe import-dvc: DVC projects (made by DVC itself when it is installed, else hand-written DVC 3 files) converted in place.

DVC is found as `dvc` on PATH, or in /tmp/venv-dvc (where the development machine has DVC 3.67);
the tests that need it are skipped without it. The hand-written tests write DVC 3 files and cache
objects exactly as DVC 3 does (`.dvc/cache/files/md5/<2>/<30>`, `outs: [{md5, size, hash: md5, path}]`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import Workspace, git

_DVC = shutil.which("dvc") or next((p for p in ["/tmp/venv-dvc/bin/dvc"] if os.access(p, os.X_OK)), None)
needs_dvc = pytest.mark.skipif(_DVC is None, reason="DVC is not installed")

TRAIN = """\
import json, sys
name, size = sys.argv[1], sys.argv[2]
open(f"model-{name}.txt", "w").write(f"{name} {size}\\n")
json.dump({"acc": int(size) / 10}, open(f"metrics-{name}.json", "w"))
"""
DVC_YAML = """\
stages:
  prep:
    cmd: mkdir -p prepared && cp data/raw.csv prepared/raw.csv && cat data/imgs/1.png > prepared/n.txt
    deps: [data/raw.csv, data/imgs]
    params: [seed]
    outs: [prepared]
  train:
    foreach: ${models}
    do:
      cmd: python3 train.py ${key} ${item.size}
      deps: [prepared, train.py]
      params:
      - models.${key}.size
      outs:
      - model-${key}.txt
      metrics:
      - metrics-${key}.json:
          cache: false
"""


def dvc(root: Path, *args: str) -> str:
    assert _DVC is not None
    env = {**os.environ, "PATH": f"{Path(_DVC).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([_DVC, *args], cwd=root, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, f"dvc {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.fixture
def dvc_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A git repository DVC made: `dvc add` of a file and a directory, a param'd stage with a directory
    out, a foreach stage with metrics, a local default remote pushed to, all committed and up to date."""
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    monkeypatch.chdir(root)
    dvc(root, "init", "-q")
    ws = Workspace(root, monkeypatch)
    ws.write({"data": {"raw.csv": "a,b\n1,2\n", "imgs": {"1.png": "1\n", "2.png": "2\n"}}, "train.py": TRAIN,
              "params.yaml": "seed: 1\nmodels:\n  small: {size: 1}\n  big: {size: 2}\n", "dvc.yaml": DVC_YAML,
              ".dvcignore": "*.tmp\n"})
    dvc(root, "add", "-q", "data/raw.csv", "data/imgs")
    dvc(root, "repro", "-q")
    dvc(root, "remote", "add", "-q", "-d", "store", str(tmp_path / "dvc-remote"))
    dvc(root, "push", "-q")
    ws.commit("a DVC project")
    assert "up to date" in dvc(root, "status")
    return ws


@needs_dvc
def test_an_up_to_date_dvc_project_is_up_to_date_in_pipe(dvc_project: Workspace, tmp_path: Path) -> None:
    ws = dvc_project
    out = ws.pipe("import-dvc").stdout
    assert "dvc.yaml -> pipeline.yaml" in out
    assert ws.read("pipeline.yaml") == DVC_YAML and ws.read(".pipeignore") == "*.tmp\n"
    assert set(ws.lock()["stages"]) == {"prep", "train@small", "train@big"}
    assert {(ws.root / p).is_file() for p in ("data/raw.csv.pipe", "data/imgs.pipe")} == {True}
    config = yaml.safe_load(ws.read(".pipe/config.yaml"))
    assert config["remotes"]["store"]["url"] == str(tmp_path / "dvc-remote") and config["core"]["remote"] == "store"

    status = json.loads(ws.pipe("status", "--json").stdout)
    assert [s["stage"] for s in status["stages"] if s["runs"]] == []
    assert all(d["states"] == ["up to date"] for d in status["data"])
    before = ws.snapshot()
    result = ws.pipe("repro")
    assert "nothing to do" in result.stdout + result.stderr
    assert ws.snapshot() == before
    ws.pipe("push")  # the outs are in pipe's cache: everything can be pushed

    before = ws.snapshot()
    assert "convert" not in ws.pipe("import-dvc").stdout  # idempotent
    assert ws.snapshot() == before
    assert (ws.root / "dvc.yaml").is_file() and (ws.root / "data/raw.csv.dvc").is_file()  # DVC's files stay

    ws.write({"params.yaml": "seed: 1\nmodels:\n  small: {size: 1}\n  big: {size: 3}\n"})
    ours = {s["stage"] for s in json.loads(ws.pipe("status", "--json").stdout)["stages"] if s["runs"]}
    assert ours == set(json.loads(dvc(ws.root, "status", "--json"))) == {"train@big"}
    ws.pipe("repro")
    assert ws.read("model-big.txt") == "big 3\n" and ws.read("model-small.txt") == "small 1\n"


@needs_dvc
def test_data_missing_from_the_workspace_comes_from_dvcs_cache(dvc_project: Workspace) -> None:
    ws = dvc_project
    shutil.rmtree(ws.root / "prepared")
    shutil.rmtree(ws.root / "data/imgs")
    (ws.root / "model-big.txt").unlink()
    ws.pipe("import-dvc")
    assert ws.read("prepared/raw.csv") == "a,b\n1,2\n" and ws.read("data/imgs/2.png") == "2\n"
    assert ws.read("model-big.txt") == "big 2\n"
    assert _clean(ws)


@needs_dvc
def test_fetch_from_dvc_remote_when_dvcs_cache_is_gone(dvc_project: Workspace) -> None:
    ws = dvc_project
    shutil.rmtree(ws.root / ".dvc/cache")
    (ws.root / "data/raw.csv").unlink()
    err = ws.pipe("import-dvc", exit_code=1).stderr
    assert "--fetch-from-dvc-remote" in err and not (ws.root / "pipeline.yaml").exists()
    ws.pipe("import-dvc", "--fetch-from-dvc-remote")
    assert ws.read("data/raw.csv") == "a,b\n1,2\n"
    assert _clean(ws)


@needs_dvc
def test_dry_changes_nothing_and_remove_dvc_removes_dvcs_files(dvc_project: Workspace) -> None:
    ws = dvc_project
    before = ws.snapshot()
    out = ws.pipe("import-dvc", "--dry").stdout
    assert "would convert: dvc.yaml -> pipeline.yaml" in out and "would track: data/imgs.dvc" in out
    assert ws.snapshot() == before
    ws.pipe("import-dvc", "--remove-dvc")
    assert not any((ws.root / p).exists() for p in ("dvc.yaml", "dvc.lock", "data/raw.csv.dvc", ".dvcignore"))
    assert _clean(ws)


@needs_dvc
def test_a_stage_dvc_would_rerun_is_not_recorded(dvc_project: Workspace) -> None:
    ws = dvc_project
    ws.write({"params.yaml": "seed: 2\nmodels:\n  small: {size: 1}\n  big: {size: 2}\n",
              "train.py": TRAIN + "# edited\n"})
    dvc_says = set(json.loads(dvc(ws.root, "status", "--json")))
    out = ws.pipe("import-dvc").stdout
    assert "stage 'prep': param 'seed' changed" in out
    status = json.loads(ws.pipe("status", "--json").stdout)
    assert {s["stage"] for s in status["stages"] if s["runs"]} == dvc_says == {"prep", "train@small", "train@big"}
    assert not (ws.root / "pipeline.lock").exists()  # nothing recorded


def _clean(ws: Workspace) -> bool:
    """`pipe status`: no stage would run and every tracked path is up to date."""
    status = json.loads(ws.pipe("status", "--json").stdout)
    return not [s for s in status["stages"] if s["runs"]] and all(d["states"] == ["up to date"] for d in status["data"])


def _hand_written(root: Path, pointer: dict[str, object], objects: dict[str, bytes], config: str = "") -> None:
    """A DVC 3 project as DVC writes it: .dvc/config, one .dvc file, objects under cache/files/md5."""
    git(root, "init", "-q", "-b", "main")
    (root / ".dvc").mkdir()
    (root / ".dvc/config").write_text(config)
    (root / "data.dvc").write_text(yaml.safe_dump(pointer, sort_keys=False))
    for md5, data in objects.items():
        dest = root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def test_credentials_go_to_the_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "p"
    root.mkdir()
    monkeypatch.chdir(root)
    body = b"x,y\n"
    md5 = hashlib.md5(body).hexdigest()
    _hand_written(root, {"outs": [{"md5": md5, "size": 4, "hash": "md5", "path": "data.csv"}]}, {md5: body},
                  config="[core]\n    remote = store\n['remote \"store\"']\n    url = s3://bucket/path\n"
                         "    endpointurl = http://minio:9000\n    access_key_id = AKIA1\n"
                         "    secret_access_key = s3cret\n")
    (root / "data.dvc").rename(root / "data.csv.dvc")
    ws = Workspace(root, monkeypatch)
    ws.pipe("import-dvc")
    assert ws.read("data.csv") == "x,y\n"  # restored from DVC's cache, md5 checked
    committed = yaml.safe_load(ws.read(".pipe/config.yaml"))["remotes"]["store"]
    assert committed == {"url": "s3://bucket/path", "endpoint_url": "http://minio:9000"}  # DVC's endpointurl
    local = yaml.safe_load(ws.read(".pipe/config.local.yaml"))["remotes"]["store"]
    assert local == {"access_key_id": "AKIA1", "secret_access_key": "s3cret"}


@pytest.mark.parametrize("pointer, what", [
    ({"outs": [{"md5": "0" * 32, "path": "../../escape.txt"}]}, "escape"),
    ({"outs": [{"md5": "../../../../etc/passwd", "path": "data.csv"}]}, "md5"),
])
def test_hostile_dvc_files_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          pointer: dict[str, object], what: str) -> None:
    root = tmp_path / "p"
    root.mkdir()
    monkeypatch.chdir(root)
    _hand_written(root, pointer, {})
    ws = Workspace(root, monkeypatch)
    result = ws.pipe("import-dvc", exit_code=1)
    assert what in result.stderr or "path" in result.stderr
    assert not (tmp_path / "escape.txt").exists() and not (root / ".pipe").exists()


def test_a_directory_without_dvc_is_refused(workspace: Workspace) -> None:
    assert "no DVC project" in workspace.pipe("import-dvc", exit_code=1).stderr


def test_dvc2_cache_layout_and_a_directory_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC 2 keeps objects at .dvc/cache/<2>/<30> and writes no `hash: md5`; a directory is a .dir manifest."""
    root = tmp_path / "p"
    root.mkdir()
    monkeypatch.chdir(root)
    files = {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n"}
    entries = [{"md5": hashlib.md5(d).hexdigest(), "relpath": r} for r, d in sorted(files.items())]
    manifest = json.dumps(entries).encode()
    dir_md5 = hashlib.md5(manifest).hexdigest() + ".dir"
    _hand_written(root, {"outs": [{"md5": dir_md5, "path": "data"}]}, {})
    for md5, data in [(dir_md5, manifest), *[(e["md5"], files[e["relpath"]]) for e in entries]]:
        dest = root / ".dvc/cache" / md5[:2] / md5[2:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    ws = Workspace(root, monkeypatch)
    ws.pipe("import-dvc")
    assert ws.read("data/sub/b.txt") == "beta\n" and ws.read("data/a.txt") == "alpha\n"
    assert yaml.safe_load(ws.read("data.pipe"))["outs"][0]["nfiles"] == 2
    assert _clean(ws)


def test_annotations_of_a_dvc_file_are_kept_in_the_pointer_and_by_a_re_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DVC's out annotations (desc, type, labels, meta) and the file's `meta` survive the conversion
    and a later `pipe add` of new content, as `dvc add` keeps them."""
    root = tmp_path / "p"
    root.mkdir()
    monkeypatch.chdir(root)
    body = b"x,y\n"
    md5 = hashlib.md5(body).hexdigest()
    annotations = {"desc": "raw data", "type": "dataset", "labels": ["raw", "v1"], "meta": {"owner": "me"}}
    _hand_written(root, {"meta": {"source": "survey"},
                         "outs": [{"md5": md5, "size": 4, "hash": "md5", "path": "data.csv", **annotations}]}, {md5: body})
    (root / "data.dvc").rename(root / "data.csv.dvc")
    ws = Workspace(root, monkeypatch)
    ws.pipe("import-dvc")
    pointer = yaml.safe_load(ws.read("data.csv.pipe"))
    assert pointer["meta"] == {"source": "survey"} and {k: pointer["outs"][0][k] for k in annotations} == annotations
    ws.write({"data.csv": "x,y\n1,2\n"})
    ws.pipe("add", "data.csv")
    again = yaml.safe_load(ws.read("data.csv.pipe"))
    assert again["outs"][0]["oid"] != pointer["outs"][0]["oid"]
    assert again["meta"] == pointer["meta"] and {k: again["outs"][0][k] for k in annotations} == annotations
    assert "up to date" in ws.pipe("status").stderr + ws.pipe("status").stdout
