"""pipe status (stage section), pipe why, pipe dag, pipe commit, pipe stage add, pipe freeze."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli, Workspace
from tests.func.repro_helpers import Counter, lock_of


@pytest.fixture
def counter(tmp_path: Path) -> Counter:
    return Counter(tmp_path / "counts")


def chain(workspace: Workspace, counter: Counter) -> None:
    workspace.write({"data.txt": "x\n", "params.yaml": "train:\n  lr: 0.1\n"})
    workspace.write_pipeline({
        "prep": {"cmd": counter.cmd("prep", "cat data.txt > a.txt"), "deps": ["data.txt"], "outs": ["a.txt"]},
        "train": {"cmd": counter.cmd("train", "cat a.txt > m.txt"), "deps": ["a.txt"], "outs": ["m.txt"],
                  "params": ["train.lr"]},
        "report": {"cmd": counter.cmd("report", "cat m.txt > r.txt"), "deps": ["m.txt"], "outs": ["r.txt"]},
    })


def test_status_lists_stage_reasons_and_json(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    chain(workspace, counter)
    assert "prep  never ran" in cli.run("status").stdout
    cli.run("repro")
    assert "up to date" in cli.run("status").stderr
    workspace.write({"params.yaml": "train:\n  lr: 0.2\n"})
    out = cli.run("status").stdout
    assert "train  param 'train.lr' 0.1 -> 0.2" in out
    assert "report  upstream stage 'train' changed" in out and "prep" not in out
    data = json.loads(cli.run("status", "--json").stdout)
    by_stage = {s["stage"]: s for s in data["stages"]}
    assert by_stage["prep"]["runs"] is False
    assert by_stage["train"]["reasons"][0] == {
        "reason": "param_changed", "subject": "train.lr", "old": 0.1, "new": 0.2, "text": "param 'train.lr' 0.1 -> 0.2"
    }
    cli.run("status", "--exit-code", exit_code=1)
    assert cli.run("status", "prep").stderr.startswith("up to date")


def test_status_reports_missing_out_and_dep(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    chain(workspace, counter)
    cli.run("repro")
    (workspace.root / "m.txt").unlink()
    (workspace.root / "data.txt").unlink()
    out = cli.run("status").stdout
    assert "out 'm.txt' missing" in out and "dep 'data.txt' missing" in out


def test_why_explains_with_old_and_new_values(workspace: Workspace, cli: Cli, counter: Counter,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    chain(workspace, counter)
    cli.run("repro")
    assert "up to date" in cli.run("why", "train").stdout
    workspace.write({"data.txt": "y\n", "params.yaml": "train:\n  lr: 0.5\n"})
    out = cli.run("why", "train").stdout
    assert "'train' would run because:" in out and "param 'train.lr' 0.1 -> 0.5" in out
    assert "upstream stage 'prep' will run" in out
    assert "upstream 'prep' runs: dep 'data.txt' modified" in out
    workspace.write({"data.txt": "x\n", "params.yaml": "train:\n  lr: 0.1\n"})
    (workspace.root / "m.txt").unlink()
    assert "run cache" in cli.run("why", "train").stdout
    assert "not found" in cli.run("why", "nope", exit_code=1).stderr


def test_dag_formats(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    chain(workspace, counter)
    assert cli.run("dag").stdout == "[1] prep\n[2] train   <- prep\n[3] report  <- train\n"
    assert cli.run("dag", "train").stdout == "[1] prep\n[2] train  <- prep\n"
    assert '"prep" -> "train";' in cli.run("dag", "--dot").stdout
    mermaid = cli.run("dag", "--mermaid").stdout
    assert mermaid.startswith("flowchart TD") and "n0 --> n1" in mermaid
    assert cli.run("dag", "--md").stdout.startswith("```mermaid\n")
    assert '"a.txt" -> "m.txt"' in cli.run("dag", "--outs", "--dot").stdout


def test_dag_ascii_lists_levels_and_every_upstream(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({
        "a": {"cmd": "x", "outs": ["a"]},
        "b": {"cmd": "x", "deps": ["a"], "outs": ["b"]},
        "c": {"cmd": "x", "deps": ["a"], "outs": ["c"]},
        "d": {"cmd": "x", "deps": ["b", "c"], "outs": ["d"]},
    })
    assert cli.run("dag").stdout == "[1] a\n[2] b  <- a\n[2] c  <- a\n[3] d  <- b, c\n"


def test_commit_records_hand_made_outs(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    chain(workspace, counter)
    cli.run("repro")
    workspace.write({"m.txt": "hand-tuned model\n"})
    cli.run("commit", "train", "-f")
    assert cli.run("status", "train").stderr.startswith("up to date")
    cli.run("repro")
    assert counter.snapshot() == {"prep": 1, "train": 1, "report": 2}
    assert workspace.read("r.txt") == "hand-tuned model\n"


def test_status_and_commit_take_an_out_path_for_its_stage(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    # DVC's granular targets: `status m.txt` / `commit m.txt` act on the stage producing m.txt
    chain(workspace, counter)
    cli.run("repro")
    workspace.write({"m.txt": "hand-tuned model\n"})
    assert cli.run("status", "m.txt").stdout == "train  out 'm.txt' modified\n"
    cli.run("commit", "-f", "m.txt")
    assert cli.run("status", "m.txt").stderr.startswith("up to date")
    assert "report" in cli.run("status").stdout  # only the producing stage was committed
    workspace.track({"raw.csv": "a\n"})
    refused = cli.run("commit", "-f", "raw.csv.pipe", exit_code=1)
    assert "'raw.csv' is tracked by 'raw.csv.pipe'" in refused.stderr and "pipe add raw.csv" in refused.stderr


def test_commit_with_nothing_to_commit_names_changed_pointer_data(workspace: Workspace, cli: Cli,
                                                                   counter: Counter) -> None:
    # `dvc commit` records changed .dvc data too; here 'pipe add' does, and commit says so
    chain(workspace, counter)
    cli.run("repro")
    workspace.track({"raw.csv": "a\n"})
    workspace.write({"raw.csv": "b\n"})
    for args in (("commit",), ("commit", "-f")):
        hint = cli.run(*args).stderr
        assert "nothing to commit" in hint and "pointer-tracked data changed (raw.csv): 'pipe add raw.csv'" in hint


def test_commit_without_a_pipeline_names_changed_pointer_data(workspace: Workspace, cli: Cli) -> None:
    workspace.track({"raw.csv": "a\n"})
    workspace.write({"raw.csv": "b\n"})
    hint = cli.run("commit").stderr
    assert "nothing to commit: there is no pipeline.yaml" in hint and "'pipe add raw.csv'" in hint


def test_commit_asks_first_and_refuses_missing_outs(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    chain(workspace, counter)
    cli.run("repro")
    workspace.write({"m.txt": "other\n"})
    before = workspace.snapshot()
    cli.run("commit", input="n\n", exit_code=1)
    assert workspace.snapshot() == before
    cli.run("commit", input="y\n")
    assert "nothing to commit" in cli.run("commit").stderr
    (workspace.root / "r.txt").unlink()
    workspace.write({"data.txt": "changed\n"})
    before = workspace.snapshot()
    result = cli.run("commit", "-f", exit_code=1)
    assert "out 'r.txt' does not exist" in result.stderr and workspace.snapshot() == before


def test_stage_add_appends_and_keeps_comments(workspace: Workspace, cli: Cli) -> None:
    text = "# my pipeline\nstages:\n  # first\n  prep:\n    cmd: echo > a.txt  # inline\n    outs: [a.txt]\n"
    workspace.write({"pipeline.yaml": text})
    cli.run("stage", "add", "-n", "train", "-d", "a.txt", "-o", "m.txt", "-p", "train.lr", "-M", "s.json",
            "python", "train.py", "--epochs", "3", "-o", "x")
    new = workspace.read("pipeline.yaml")
    assert new.startswith(text)
    assert "  train:\n    cmd: python train.py --epochs 3 -o x\n" in new
    assert "s.json:\n        cache: false" in new
    assert cli.run("dag").stdout == "[1] prep\n[2] train  <- prep\n"


def test_stage_add_refuses_duplicates_and_overlaps_without_writing(workspace: Workspace, cli: Cli) -> None:
    cli.run("stage", "add", "-n", "a", "-o", "out", "echo")
    before = workspace.read("pipeline.yaml")
    assert "already exists" in cli.run("stage", "add", "-n", "a", "echo", exit_code=1).stderr
    result = cli.run("stage", "add", "-n", "b", "-o", "out/inner", "echo", exit_code=1)
    assert "inside out 'out' of stage 'a'" in result.stderr
    assert workspace.read("pipeline.yaml") == before
    cli.run("stage", "add", "-n", "a", "-f", "-o", "other", "echo", "2")
    assert "cmd: echo 2" in workspace.read("pipeline.yaml") and "out\n" not in workspace.read("pipeline.yaml")


def test_freeze_a_foreach_item_is_refused(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"f": {"foreach": [1, 2], "do": {"cmd": "echo ${item}"}}})
    before = workspace.read("pipeline.yaml")
    assert "one item of 'f'" in cli.run("freeze", "f@1", exit_code=1).stderr
    assert workspace.read("pipeline.yaml") == before
    cli.run("freeze", "f")
    assert "'f@2' is frozen" in cli.run("why", "f@2").stdout


def test_checkout_and_gc_see_stage_outs(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    chain(workspace, counter)
    cli.run("repro")
    cli.run("gc", "--workspace", "-f")
    (workspace.root / "m.txt").unlink()
    cli.run("checkout")
    assert workspace.read("m.txt") == "x\n"
    assert lock_of(workspace.root)["stages"]["train"]["outs"][0]["path"] == "m.txt"
