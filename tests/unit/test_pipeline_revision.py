"""Every parser reads from RevisionFiles: a spec at HEAD~1 gets HEAD~1's params, lock and pointers."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_engine.cache.pointer import parse_pointer, read_pointer
from pipeline_engine.core.revision import WorkspaceFiles
from pipeline_engine.errors import SpecError, UnsafePathError
from pipeline_engine.pipeline.lock import parse_lock, read_lock
from pipeline_engine.pipeline.params import parse_params, read_params
from pipeline_engine.pipeline.spec import load_spec
from pipeline_engine.scm.git import Git
from tests.conftest import git, write_tree

OID = "0123456789abcdef0123456789abcdef"
PIPELINE = "vars: [conf.yaml]\nstages:\n  train:\n    cmd: python train.py --lr ${lr} --depth ${depth}\n"
LOCK = f"schema: 1\nstages:\n  train:\n    cmd: echo {{n}}\n    outs:\n    - {{{{path: m.pkl, hash: xxh3_128, oid: {OID}, size: {{n}}}}}}\n"
POINTER = f"schema: 1\nouts:\n- {{{{path: raw.csv, hash: xxh3_128, oid: {OID}, size: {{n}}}}}}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Two commits of a project in `proj/`: lr 0.1 then 0.2, depth 3 then 4, sizes 1 then 2."""
    root = tmp_path / "repo"
    (root / "proj").mkdir(parents=True)
    git(root, "init", "-q")
    for n in (1, 2):
        write_tree(root / "proj", {
            "pipeline.yaml": PIPELINE, "params.yaml": f"lr: 0.{n}\n", "conf.yaml": f"depth: {n + 2}\n",
            "pipeline.lock": LOCK.format(n=n), "data": {"raw.csv.pipe": POINTER.format(n=n)},
        })
        git(root, "add", ".")
        git(root, "commit", "-qm", f"c{n}")
    write_tree(root / "proj", {"params.yaml": "lr: 0.3\n"})  # uncommitted
    return root


def test_a_spec_at_a_revision_uses_that_revisions_params_and_vars(repo: Path) -> None:
    old = Git(repo).files_at("HEAD~1", project_prefix="proj")
    assert load_spec(old).stages["train"].cmd == "python train.py --lr 0.1 --depth 3"
    assert load_spec(Git(repo).files_at("HEAD", project_prefix="proj")).stages["train"].cmd.endswith("0.2 --depth 4")
    assert load_spec(repo / "proj").stages["train"].cmd == "python train.py --lr 0.3 --depth 4"
    assert load_spec(WorkspaceFiles(repo / "proj")) == load_spec(repo / "proj")


def test_lock_params_and_pointers_at_a_revision(repo: Path) -> None:
    old = Git(repo).files_at("HEAD~1", project_prefix="proj")
    assert read_lock(old).stages["train"].outs[0].size == 1
    assert read_lock(repo / "proj").stages["train"].outs[0].size == 2
    assert read_params(old, "params.yaml") == {"lr": 0.1}
    assert read_params(WorkspaceFiles(repo / "proj"), "params.yaml") == {"lr": 0.3}
    pointer = read_pointer(old, "data/raw.csv.pipe")
    assert (pointer.data_relpath, pointer.out.size) == ("data/raw.csv", 1)
    assert read_pointer(repo / "proj", "data/raw.csv.pipe").out.size == 2


def test_errors_at_a_revision_name_the_file_and_the_revision(repo: Path) -> None:
    write_tree(repo / "proj", {"params.yaml": "lr: [\n", "pipeline.lock": "schema: 7\n",
                               "data": {"raw.csv.pipe": "outs: 3\n"},
                               "pipeline.yaml": PIPELINE + "    outz: [x]\n"})
    git(repo, "commit", "-qam", "broken")
    files = Git(repo).files_at("HEAD", project_prefix="proj")
    with pytest.raises(SpecError, match=r"^pipeline.yaml:5 at 'HEAD': stage 'train': unknown key 'outz'"):
        load_spec(files)
    with pytest.raises(SpecError, match=r"^params.yaml at 'HEAD':"):
        read_params(files, "params.yaml")
    with pytest.raises(SpecError, match=r"^pipeline.lock at 'HEAD': unsupported schema 7"):
        read_lock(files)
    with pytest.raises(SpecError, match=r"^data/raw.csv.pipe at 'HEAD': a pointer file needs 'outs'"):
        read_pointer(files, "data/raw.csv.pipe")
    with pytest.raises(SpecError, match=r"^params file 'nope.yaml at 'HEAD'' does not exist"):
        read_params(files, "nope.yaml")


def test_text_parsers_take_a_source_name() -> None:
    assert parse_params('{"a": {"b": 1}}', suffix=".json", source="p.json") == {"a": {"b": 1}}
    assert parse_params("a = 1\n", suffix=".TOML", source="p.toml") == {"a": 1}
    assert parse_params("", suffix=".yaml", source="p.yaml") == {}
    with pytest.raises(SpecError, match=r"^p.yaml at 'v1': a params file must be a mapping"):
        parse_params("[1]\n", suffix=".yaml", source="p.yaml at 'v1'")
    with pytest.raises(SpecError, match=r"^old.lock: must be a mapping"):
        parse_lock("[1]\n", source="old.lock")
    pointer = parse_pointer(POINTER.format(n=5).encode(), "d/raw.csv.pipe")
    assert (pointer.relpath, pointer.data_relpath, pointer.out.size) == ("d/raw.csv.pipe", "d/raw.csv", 5)
    with pytest.raises(SpecError, match=r"^shown.pipe: path '\.\./x' leaves the project"):
        parse_pointer(POINTER.format(n=1).replace("raw.csv", "../x"), "a.pipe", source="shown.pipe")


def test_a_params_file_kept_as_a_link_at_a_revision_is_an_error_not_missing(repo: Path) -> None:
    """In the workspace the gate follows a link that stays inside; at a revision links are never followed."""
    proj = repo / "proj"
    (proj / "real.yaml").write_text("lr: 0.5\n")
    (proj / "params.yaml").unlink()
    (proj / "params.yaml").symlink_to("real.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")
    assert load_spec(proj).stages["train"].cmd.startswith("python train.py --lr 0.5")
    with pytest.raises(UnsafePathError, match=r"params.yaml at 'HEAD': is a symbolic link"):
        load_spec(Git(repo).files_at("HEAD", project_prefix="proj"))
