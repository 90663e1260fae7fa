"""The CLI surface: global flags after the subcommand, did-you-mean, status rows for broken stages, dag edges."""

from __future__ import annotations

import json

from tests.conftest import Cli, Workspace


def _two_stages(workspace: Workspace) -> None:
    workspace.write_pipeline({
        "prepare": {"cmd": "echo p > prep.txt", "outs": ["prep.txt"]},
        "train": {"cmd": "cat prep.txt > model.txt", "deps": ["prep.txt"], "outs": ["model.txt"]},
    })


def test_quiet_after_the_subcommand_silences_repro(workspace: Workspace, cli: Cli) -> None:
    _two_stages(workspace)
    loud = cli.run("repro", "--force")
    assert "prepare" in loud.stderr
    quiet = cli.run("repro", "--force", "-q")
    assert quiet.stderr == "", quiet.stderr
    assert workspace.read("model.txt") == "p\n"


def test_verbose_after_the_subcommand_shows_the_cause_of_an_error(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"pipeline.yaml": "stages: [oops\n"})
    plain = cli.run("repro", exit_code=1)
    verbose = cli.run("repro", "-v", exit_code=1)
    assert "Traceback" not in plain.stderr
    assert "Traceback" in verbose.stderr and "error:" in verbose.stderr


def test_status_v_keeps_its_own_meaning_listing_changed_files(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": {"a.txt": "a", "b.txt": "b"}})
    cli.run("add", "data")
    workspace.write({"data": {"a.txt": "changed"}})
    result = cli.run("status", "-v")
    assert "modified: data/a.txt" in result.stdout


def test_a_flag_inside_a_stage_command_stays_in_the_command(workspace: Workspace, cli: Cli) -> None:
    cli.run("stage", "add", "-n", "s", "-o", "o.txt", "echo", "-v", ">", "o.txt")
    assert "echo -v > o.txt" in workspace.read("pipeline.yaml")


def test_mistyped_command_suggests_the_closest(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("stauts", exit_code=2)
    assert "Did you mean 'status'?" in result.stderr
    assert "Did you mean" not in cli.run("xyzzy", exit_code=2).stderr


def test_mistyped_stage_name_suggests_the_stage(workspace: Workspace, cli: Cli) -> None:
    _two_stages(workspace)
    for args in (("repro", "trian"), ("dag", "trian"), ("why", "trian")):
        result = cli.run(*args, exit_code=1)
        assert "did you mean 'train'?" in result.stderr, (args, result.stderr)


def test_status_of_an_unknown_target_suggests_the_stage_not_add(workspace: Workspace, cli: Cli) -> None:
    _two_stages(workspace)
    result = cli.run("status", "trian", exit_code=1)
    assert "did you mean 'train'?" in result.stderr
    assert "pipe add" not in result.stderr


def test_one_stage_with_a_bad_param_key_does_not_hide_the_others(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"params.yaml": "lr: 1\n"})
    workspace.write_pipeline({
        "a": {"cmd": "echo a > a.txt", "outs": ["a.txt"]},
        "b": {"cmd": "echo b > b.txt", "params": ["nope"], "outs": ["b.txt"]},
        "c": {"cmd": "echo c > c.txt", "params": ["lr"], "outs": ["c.txt"]},
    })
    cli.run("repro", "a", "c")
    workspace.write({"params.yaml": "lr: 2\n"})
    result = cli.run("status", exit_code=1)
    lines = result.stdout.splitlines()
    assert any(line.startswith("b") and "error" in line and "'nope'" in line for line in lines), result.stdout
    assert any(line.startswith("c") and "lr" in line for line in lines), result.stdout
    assert not any(line.startswith("a ") for line in lines), result.stdout  # a is up to date
    rows = {r["stage"]: r for r in json.loads(cli.run("status", "--json", exit_code=1).stdout)["stages"]}
    assert "'nope'" in rows["b"]["error"] and rows["a"]["runs"] is False and rows["c"]["runs"] is True


def test_dag_outs_draws_only_the_edges_that_exist(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({
        "split": {"cmd": "echo > train.csv; echo > test.csv", "outs": ["train.csv", "test.csv"]},
        "train": {"cmd": "echo > model.pkl", "deps": ["train.csv"], "outs": ["model.pkl"]},
        "evaluate": {"cmd": "echo > scores.json", "deps": ["test.csv", "model.pkl"], "outs": ["scores.json"]},
    })
    dot = cli.run("dag", "--outs", "--dot").stdout
    edges = {line.strip().rstrip(";") for line in dot.splitlines() if "->" in line}
    assert edges == {
        '"train.csv" -> "model.pkl"',
        '"test.csv" -> "scores.json"',
        '"model.pkl" -> "scores.json"',
    }, dot


def test_a_locked_project_suggests_wait_only_where_the_command_has_it(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"a.txt": "a"})
    _two_stages(workspace)
    with workspace.project().mutex("pipe test"):
        add = cli.run("add", "a.txt", exit_code=1)
        repro = cli.run("repro", exit_code=1)
    assert "another pipe process" in add.stderr and "--wait" not in add.stderr, add.stderr
    assert "--wait" in repro.stderr, repro.stderr
    assert "--wait" not in cli.run("add", "--help").stdout


def test_a_missing_pointer_tracked_dep_suggests_pull(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"raw.txt": "raw"})
    cli.run("add", "raw.txt")
    (workspace.root / "raw.txt").unlink()
    workspace.write_pipeline({"use": {"cmd": "cat raw.txt > u.txt", "deps": ["raw.txt"], "outs": ["u.txt"]}})
    result = cli.run("repro", exit_code=1)
    assert "'raw.txt' does not exist" in result.stderr and "pipe pull raw.txt" in result.stderr, result.stderr
    cli.run("checkout", "raw.txt")  # the other command the hint names works
    cli.run("repro")


def test_a_stage_out_not_yet_produced_is_not_suggested_for_add(workspace: Workspace, cli: Cli) -> None:
    _two_stages(workspace)
    for command in ("checkout", "pull", "fetch", "push"):
        result = cli.run(command, "model.txt", exit_code=1)
        assert "pipe add" not in result.stderr and "pipe repro train" in result.stderr, (command, result.stderr)
    assert cli.run("status", "model.txt").stdout.startswith("train  never ran")  # its stage's status, as DVC
    assert "pipe add" not in cli.run("checkout", "nothing.txt", exit_code=1).stderr
    workspace.write({"new.csv": "x"})
    assert "pipe add new.csv" in cli.run("checkout", "new.csv", exit_code=1).stderr


def test_mistyped_subcommands_of_groups_get_a_suggestion(workspace: Workspace, cli: Cli) -> None:
    for args, expected in ((("remote", "ad", "x", "y"), "'add'"), (("cache", "verfy"), "'verify'"),
                           (("stage", "ad"), "'add'")):
        result = cli.run(*args, exit_code=2)
        assert f"Did you mean {expected}?" in result.stderr, (args, result.stderr)


def test_a_hint_to_pull_says_to_add_a_remote_first_when_there_is_none(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"raw.txt": "raw"})
    cli.run("add", "raw.txt")
    (workspace.root / "raw.txt").unlink()
    for path in (workspace.root / ".pipe" / "cache" / "objects").rglob("*"):
        if path.is_file():
            path.chmod(0o644)
            path.unlink()
    result = cli.run("checkout", exit_code=1)
    assert "pipe pull" in result.stderr and "pipe remote add" in result.stderr, result.stderr
    cli.run("remote", "add", "-d", "r", str(workspace.root.parent / "remote"))
    assert "pipe remote add" not in cli.run("checkout", exit_code=1).stderr


def test_dvcs_recursive_flag_is_accepted_where_dvc_scripts_pass_it(workspace: Workspace) -> None:
    """`dvc pull -R data` and the like: a directory target already covers everything under it."""
    workspace.write({"data": {"a.txt": "a\n", "deep/b.txt": "b\n"}})
    workspace.pipe("add", "data")
    (workspace.root / "data/deep/b.txt").unlink()
    for command in (["status", "-R", "data"], ["checkout", "-R", "data"], ["commit", "-R", "data"]):
        assert "no such option" not in workspace.pipe(*command, exit_code=None).stderr
    assert workspace.read("data/deep/b.txt") == "b\n"  # checkout -R restored what was under the target
    for command in ("push", "fetch", "pull"):
        assert "no such option" not in workspace.pipe(command, "-R", "data", exit_code=None).stderr
