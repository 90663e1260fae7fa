"""ProjectIndex: one parse per command, and one set of target rules for every command that takes targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_engine.errors import PathError, StageNotFoundError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.pipeline import spec as spec_module
from pipeline_engine.project import Project
from tests.conftest import Cli, Workspace


@pytest.fixture
def tracked(workspace: Workspace, cli: Cli) -> Workspace:
    """A pointer-tracked directory, a foreach group, and a stage whose out is a directory, all run once."""
    workspace.write({
        "data": {"raw": {"a.csv": "1\n", "sub": {"b.csv": "2\n"}}},
        "params.yaml": "lr: 0.1\n",
    })
    cli.run("add", "data/raw")
    workspace.write_pipeline({
        "prepare": {"cmd": "mkdir -p out/prep && cp data/raw/a.csv out/prep/a.csv",
                    "deps": ["data/raw"], "outs": ["out/prep"]},
        "train": {"foreach": ["x", "y"],
                  "do": {"cmd": "echo ${item} > out/model-${item}.txt", "deps": ["out/prep"],
                         "params": ["lr"], "outs": ["out/model-${item}.txt"]}},
    })
    cli.run("repro")
    return workspace


def _index(root: Path) -> ProjectIndex:
    return ProjectIndex(Project(root))


def test_status_of_a_stage_parses_pipeline_yaml_once(tracked: Workspace, cli: Cli,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = spec_module.parse_spec

    def counting(text: str, **kwargs: object) -> object:
        calls.append(text)
        return real(text, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(spec_module, "parse_spec", counting)
    cli.run("status", "train@x", "data/raw")
    assert len(calls) == 1, f"pipeline.yaml parsed {len(calls)} times for one 'pipe status'"


def test_a_stage_name_a_group_and_an_item_select_stages_and_their_recorded_outs(tracked: Workspace) -> None:
    index = _index(tracked.root)
    assert index.select(["prepare"]).stages == ("prepare",)
    assert index.select(["train"]).stages == ("train@x", "train@y")
    assert index.select(["pipeline.yaml:train@y"]).stages == ("train@y",)
    assert [o.record.path for o in index.select(["train"]).outs] == ["out/model-x.txt", "out/model-y.txt"]


def test_a_path_selects_every_stage_out_and_pointer_at_or_under_it(tracked: Workspace) -> None:
    index = _index(tracked.root)
    chosen = index.select(["out"])
    assert sorted(o.record.path for o in chosen.outs) == ["out/model-x.txt", "out/model-y.txt", "out/prep"]
    assert chosen.stages == ()
    whole = index.select(["data"])
    assert [t.data_relpath for t in whole.pointers] == ["data/raw"]
    assert [t.data_relpath for t in index.select(["data/raw.pipe"]).pointers] == ["data/raw"]


def test_a_path_inside_a_tracked_directory_selects_only_that_part(tracked: Workspace) -> None:
    chosen = _index(tracked.root).select(["data/raw/sub"])
    assert [(t.pointer.relpath, t.inside) for t in chosen.pointers] == [("data/raw.pipe", "sub")]
    records = ProjectIndex(Project(tracked.root)).used_outs(["data/raw/sub/b.csv"])
    assert [(r.path, r.nfiles) for r in records] == [("data/raw/sub/b.csv", None)]


def test_targets_are_relative_to_the_current_directory(tracked: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tracked.root / "out")
    chosen = _index(tracked.root).select(["prep"])
    assert [o.record.path for o in chosen.outs] == ["out/prep"]


def test_a_target_naming_nothing_is_an_error_with_the_next_command(tracked: Workspace) -> None:
    index = _index(tracked.root)
    chosen = index.select(["nothing/here"])
    assert chosen.unknown == ("nothing/here",)
    with pytest.raises(PathError) as info:
        index.used_outs(["nothing/here"])
    assert "nothing/here" in str(info.value) and "pipe status" in (info.value.hint or "")
    tracked.write({"loose.txt": "x"})
    with pytest.raises(PathError) as info:
        index.used_outs(["loose.txt"])
    assert "pipe add loose.txt" in (info.value.hint or "")


def test_a_mistyped_stage_name_is_named_as_such(tracked: Workspace) -> None:
    with pytest.raises(StageNotFoundError) as info:
        _index(tracked.root).select(["prepar"])
    assert "prepare" in str(info.value)


def test_checkout_and_status_agree_on_what_a_target_selects(tracked: Workspace, cli: Cli) -> None:
    # 'out/prep' is a stage out: checkout restores it; status reports the stage that produces it (DVC).
    import shutil

    shutil.rmtree(tracked.root / "out" / "prep")
    assert cli.run("status", "out/prep").stdout.startswith("prepare  ")
    cli.run("checkout", "out/prep")
    assert (tracked.root / "out" / "prep" / "a.csv").read_text() == "1\n"
    assert cli.run("status", "out/prep").stderr == "up to date: 0 tracked path(s), 1 stage(s)\n"


def test_owners_name_the_pointer_or_the_stage_of_each_tracked_path(tracked: Workspace) -> None:
    owners = _index(tracked.root).owners
    assert owners["data/raw"] == "data/raw.pipe"
    assert owners["out/prep"] == "stage 'prepare'"
    assert owners["out/model-y.txt"] == "stage 'train@y'"


def test_an_index_at_a_revision_reads_that_revisions_spec_lock_params_and_pointers(
    tracked: Workspace, cli: Cli
) -> None:
    tracked.git("add", "-A")
    tracked.git("commit", "-qm", "first")
    tracked.write({"params.yaml": "lr: 0.2\n", "data": {"raw": {"a.csv": "changed\n"}}})
    cli.run("add", "data/raw")
    spec = (tracked.root / "pipeline.yaml").read_text().replace("cp data/raw/a.csv", "cat data/raw/a.csv >")
    (tracked.root / "pipeline.yaml").write_text(spec)
    cli.run("repro")
    tracked.git("add", "-A")
    tracked.git("commit", "-qm", "second")
    tracked.write({"params.yaml": "lr: 0.3\n"})  # the workspace moves on; revisions must not see it

    project = Project(tracked.root)
    old, new, now = ProjectIndex.at(project, "HEAD~1"), ProjectIndex.at(project, "HEAD"), ProjectIndex(project)
    assert not old.is_workspace and now.is_workspace
    assert "cp data/raw/a.csv" in str(old.spec.stages["prepare"].cmd)
    assert "cat data/raw/a.csv" in str(new.spec.stages["prepare"].cmd)
    assert old.lock.stages["train@x"].params == {"params.yaml": {"lr": 0.1}}
    assert new.lock.stages["train@x"].params == {"params.yaml": {"lr": 0.2}}
    assert old.pointers[0].out.oid != new.pointers[0].out.oid == now.pointers[0].out.oid
    assert [o.record.path for o in old.select(["train@y"]).outs] == ["out/model-y.txt"]


def test_an_unknown_revision_is_an_error_naming_it(tracked: Workspace) -> None:
    from pipeline_engine.errors import ScmError

    with pytest.raises(ScmError) as info:
        ProjectIndex.at(Project(tracked.root), "no-such-rev")
    assert "no-such-rev" in str(info.value)
