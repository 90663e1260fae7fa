"""Data that exists nowhere else is never deleted without saying so: `pipe repro` of a stage that
never recorded an out moves it to .pipe/backup/ and says where (the run goes on, as under DVC);
`pipe remove --outs` of data with uncached changes refuses (nothing is deleted) and names the file
and the command that proceeds."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli, Workspace
from tests.func.repro_helpers import lock_of


def _backups(workspace: Workspace, relpath: str) -> list[Path]:
    """The copies of `relpath` under .pipe/backup/<time>/."""
    root = workspace.root / ".pipe" / "backup"
    return sorted(p for p in root.glob(f"*/{relpath}")) if root.exists() else []


def _stage(workspace: Workspace, **out: object) -> None:
    workspace.write({"data.txt": "input\n"})
    spec: object = {"model.bin": out} if out else "model.bin"
    workspace.write_pipeline({"train": {"cmd": "cat data.txt > model.bin", "deps": ["data.txt"], "outs": [spec]}})


def test_repro_of_a_never_run_stage_moves_an_existing_uncached_out_aside(workspace: Workspace, cli: Cli) -> None:
    _stage(workspace)
    workspace.write({"model.bin": "weeks of training\n"})
    result = cli.run("repro")
    assert workspace.read("model.bin") == "input\n"  # the stage ran, as under DVC
    [kept] = _backups(workspace, "model.bin")
    assert kept.read_text() == "weeks of training\n"
    shown = kept.relative_to(workspace.root).as_posix()
    assert "'model.bin'" in result.stderr and shown in result.stderr
    assert "backup" not in workspace.git("status", "--porcelain", "--untracked-files=all")  # never committed by accident


def test_repro_moves_an_existing_uncached_directory_out_aside(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data.txt": "input\n", "out": {"a.txt": "mine\n", "sub": {"b.txt": "also mine\n"}}})
    workspace.write_pipeline({"make": {"cmd": "mkdir -p out && cp data.txt out/a.txt", "deps": ["data.txt"],
                                       "outs": ["out"]}})
    cli.run("repro")
    assert workspace.read("out/a.txt") == "input\n" and not (workspace.root / "out" / "sub").exists()
    [kept] = _backups(workspace, "out")
    assert (kept / "sub" / "b.txt").read_text() == "also mine\n"


def test_a_failing_first_run_still_keeps_the_users_file(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data.txt": "input\n", "model.bin": "mine\n"})
    workspace.write_pipeline({"train": {"cmd": "exit 1", "deps": ["data.txt"], "outs": ["model.bin"]}})
    cli.run("repro", exit_code=3)
    [kept] = _backups(workspace, "model.bin")
    assert kept.read_text() == "mine\n"


def test_an_out_that_cannot_be_moved_aside_refuses_the_stage(workspace: Workspace, cli: Cli) -> None:
    _stage(workspace)
    workspace.write({"model.bin": "mine\n"})
    (workspace.root / ".pipe" / "backup").write_text("not a directory\n")
    result = cli.run("repro", exit_code=1)
    assert "'model.bin'" in result.stderr and "pipe commit train" in result.stderr
    assert workspace.read("model.bin") == "mine\n"
    assert not (workspace.root / "pipeline.lock").exists()


def test_repro_force_replaces_the_uncached_out_and_keeps_it_too(workspace: Workspace, cli: Cli) -> None:
    _stage(workspace)
    workspace.write({"model.bin": "stale\n"})
    cli.run("repro", "--force")
    assert workspace.read("model.bin") == "input\n"
    assert [p.read_text() for p in _backups(workspace, "model.bin")] == ["stale\n"]


def test_commit_then_repro_keeps_the_file_as_the_stage_out(workspace: Workspace, cli: Cli) -> None:
    _stage(workspace)
    workspace.write({"model.bin": "precious\n"})
    cli.run("commit", "-f", "train")
    assert "nothing to do" in cli.run("repro").stderr
    assert workspace.read("model.bin") == "precious\n"


def test_repro_replaces_an_out_whose_content_is_in_the_cache(workspace: Workspace, cli: Cli) -> None:
    _stage(workspace)
    cli.run("repro")
    # The stage is renamed: no lock entry under the new name, but the file's content is cached.
    text = workspace.read("pipeline.yaml").replace("train:", "fit:")
    (workspace.root / "pipeline.yaml").write_text(text)
    cli.run("repro")
    assert workspace.read("model.bin") == "input\n"
    assert "fit" in lock_of(workspace.root)["stages"]


def test_repro_replaces_an_uncached_out_committed_to_git(workspace: Workspace, cli: Cli) -> None:
    _stage(workspace, cache=False)
    workspace.write({"model.bin": "from git\n"})
    workspace.commit("model.bin in git")
    cli.run("repro")
    assert workspace.read("model.bin") == "input\n"


def test_repro_moves_aside_a_committed_out_edited_since(workspace: Workspace, cli: Cli) -> None:
    _stage(workspace, cache=False)
    workspace.write({"model.bin": "from git\n"})
    workspace.commit("model.bin in git")
    workspace.write({"model.bin": "edited since\n"})
    cli.run("repro")
    assert [p.read_text() for p in _backups(workspace, "model.bin")] == ["edited since\n"]


def test_repro_of_a_stage_that_ran_still_replaces_a_modified_out(workspace: Workspace, cli: Cli) -> None:
    """DESIGN.md §3 rule 6: an out the lock records is the stage's product; a modified one is made again."""
    _stage(workspace)
    cli.run("repro")
    (workspace.root / "model.bin").unlink()
    workspace.write({"model.bin": "hand edit\n"})
    cli.run("repro")
    assert workspace.read("model.bin") == "input\n"
    assert not _backups(workspace, "model.bin")  # the stage's own product: no backup


def test_remove_outs_refuses_data_changed_since_add(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"a.txt": "one\n"}, "b.txt": "bee\n"})
    cli.run("add", "data")
    cli.run("add", "b.txt")
    workspace.write({"data": {"new.txt": "not added\n"}})
    result = cli.run("remove", "--outs", "b.txt.pipe", "data.pipe", exit_code=1)
    assert "'data'" in result.stderr and "--force" in result.stderr
    # Every name is checked first: nothing was removed, not even the unchanged b.txt.
    assert workspace.read("data/new.txt") == "not added\n" and (workspace.root / "data.pipe").exists()
    assert workspace.read("b.txt") == "bee\n" and (workspace.root / "b.txt.pipe").exists()
    cli.run("remove", "--outs", "--force", "data.pipe")
    assert not (workspace.root / "data").exists() and not (workspace.root / "data.pipe").exists()


def test_remove_outs_deletes_data_whose_content_is_cached(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"b.txt": "bee\n"})
    cli.run("add", "b.txt")
    cli.run("remove", "--outs", "b.txt.pipe")
    assert not (workspace.root / "b.txt").exists()


def test_remove_outs_refuses_an_edited_file(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"b.txt": "bee\n"})
    cli.run("add", "b.txt")
    path = workspace.root / "b.txt"
    path.unlink()  # a link into the cache is replaced, not written through
    path.write_text("edited\n")
    assert "'b.txt'" in cli.run("remove", "--outs", "b.txt.pipe", exit_code=1).stderr
    assert workspace.read("b.txt") == "edited\n"
    cli.run("remove", "b.txt.pipe")  # without --outs the data stays: nothing to refuse
    assert workspace.read("b.txt") == "edited\n"


def test_an_out_new_to_a_stage_that_ran_is_kept_too(workspace: Workspace, cli: Cli) -> None:
    _stage(workspace)
    cli.run("repro")
    workspace.write({"notes.txt": "my notes\n"})
    text = workspace.read("pipeline.yaml").replace("- model.bin", "- model.bin\n    - notes.txt")
    (workspace.root / "pipeline.yaml").write_text(text)
    assert "did not create its out 'notes.txt'" in cli.run("repro", exit_code=1).stderr
    assert [p.read_text() for p in _backups(workspace, "notes.txt")] == ["my notes\n"]


def test_the_partial_out_of_a_failed_first_run_is_replaced_by_the_next(workspace: Workspace, cli: Cli) -> None:
    """pipe cleared the path for that run: what is there is the stage's own output, not the user's."""
    workspace.write({"data.txt": "input\n"})
    workspace.write_pipeline({"train": {"cmd": "echo partial > model.bin && exit 1", "deps": ["data.txt"],
                                        "outs": ["model.bin"]}})
    cli.run("repro", exit_code=3)
    assert workspace.read("model.bin") == "partial\n"
    text = workspace.read("pipeline.yaml").replace("echo partial > model.bin && exit 1", "cat data.txt > model.bin")
    (workspace.root / "pipeline.yaml").write_text(text)
    cli.run("repro")
    assert workspace.read("model.bin") == "input\n"
    assert not _backups(workspace, "model.bin")  # the partial output was pipe's own
    assert not list((workspace.root / ".pipe" / "tmp" / "cleared").iterdir())  # forgotten once recorded
