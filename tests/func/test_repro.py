"""pipe repro: every rule of DESIGN.md §3 shown by a stage that does or does not run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_engine.pipeline.lock import LOCK_FILE
from tests.conftest import Cli, Workspace
from tests.func.repro_helpers import Counter, lock_of


@pytest.fixture
def counter(tmp_path: Path) -> Counter:
    return Counter(tmp_path / "counts")


def two_stages(workspace: Workspace, counter: Counter, **train_extra: object) -> None:
    """data.txt -> prep -> up.txt -> train -> model.txt (train reads train.lr)."""
    workspace.write({"data.txt": "hello\n", "params.yaml": "train:\n  lr: 0.1\n  epochs: 3\n"})
    workspace.write_pipeline({
        "prep": {"cmd": counter.cmd("prep", "tr a-z A-Z < data.txt > up.txt"), "deps": ["data.txt"],
                 "outs": ["up.txt"]},
        "train": {"cmd": counter.cmd("train", "cat up.txt > model.txt && echo lr=${train.lr} >> model.txt"),
                  "deps": ["up.txt"], "outs": ["model.txt"], **train_extra},
    })


def test_first_repro_runs_everything_and_second_does_nothing(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    assert counter.snapshot() == {"prep": 1, "train": 1}
    assert workspace.read("model.txt") == "HELLO\nlr=0.1\n"
    lock = lock_of(workspace.root)
    assert lock["schema"] == 1 and sorted(lock["stages"]) == ["prep", "train"]
    assert lock["stages"]["train"]["params"] == {"params.yaml": {"train.lr": 0.1}}
    assert "/up.txt" in workspace.read(".gitignore")
    result = cli.run("repro")
    assert "nothing to do" in result.stderr
    assert counter.snapshot() == {"prep": 1, "train": 1}


def test_changed_cmd_reruns_the_stage(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    two_stages(workspace, counter, desc="changed")  # same cmd: no rerun
    cli.run("repro")
    assert counter.runs("train") == 1
    text = workspace.read("pipeline.yaml").replace("echo lr=", "echo LR=")
    (workspace.root / "pipeline.yaml").write_text(text)
    assert "cmd changed" in cli.run("repro", "--dry").stdout
    cli.run("repro")
    assert counter.snapshot() == {"prep": 1, "train": 2}
    assert workspace.read("model.txt").endswith("LR=0.1\n")


def test_modified_dep_reruns_and_touch_does_not(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    os.utime(workspace.root / "data.txt", (1, 1))
    cli.run("repro")
    assert counter.snapshot() == {"prep": 1, "train": 1}
    workspace.write({"data.txt": "world\n"})
    cli.run("repro")
    assert counter.snapshot() == {"prep": 2, "train": 2}
    assert workspace.read("model.txt").startswith("WORLD")


def test_removing_or_adding_a_dep_reruns_the_stage(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"a.txt": "a", "b.txt": "b"})
    cmd = counter.cmd("s", "cat a.txt > out.txt")
    workspace.write_pipeline({"s": {"cmd": cmd, "deps": ["a.txt", "b.txt"], "outs": ["out.txt"]}})
    cli.run("repro")
    workspace.write_pipeline({"s": {"cmd": cmd, "deps": ["a.txt"], "outs": ["out.txt"]}})
    assert "dep 'b.txt' removed" in cli.run("repro", "--dry").stdout
    cli.run("repro")
    assert counter.runs("s") == 2
    workspace.write_pipeline({"s": {"cmd": cmd, "deps": ["a.txt", "b.txt"], "outs": ["out.txt"]}})
    assert "dep 'b.txt' added" in cli.run("repro", "--dry").stdout


def test_missing_dep_is_an_error_naming_stage_and_dep(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "echo > o"), "deps": ["nope.txt"], "outs": ["o"]}})
    result = cli.run("repro", exit_code=1)
    assert "stage 's': dep 'nope.txt' does not exist" in result.stderr
    assert counter.runs("s") == 0 and not (workspace.root / LOCK_FILE).exists()


def test_param_change_reruns_and_revert_restores_from_run_cache(
    workspace: Workspace, cli: Cli, counter: Counter
) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    workspace.write({"params.yaml": "train:\n  lr: 0.2\n  epochs: 3\n"})
    assert "param 'train.lr' 0.1 -> 0.2" in cli.run("repro", "--dry").stdout
    cli.run("repro")
    assert counter.snapshot() == {"prep": 1, "train": 2}
    assert workspace.read("model.txt").endswith("lr=0.2\n")
    workspace.write({"params.yaml": "train:\n  lr: 0.1\n  epochs: 3\n"})
    result = cli.run("repro")
    assert counter.snapshot() == {"prep": 1, "train": 2}  # not executed
    assert "restored" in result.stderr
    assert workspace.read("model.txt").endswith("lr=0.1\n")
    assert lock_of(workspace.root)["stages"]["train"]["params"]["params.yaml"]["train.lr"] == 0.1


def test_untracked_param_change_does_not_rerun(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    workspace.write({"params.yaml": "train:\n  lr: 0.1\n  epochs: 4\n"})
    cli.run("repro")
    assert counter.snapshot() == {"prep": 1, "train": 1}


def test_tracked_params_set_change_reruns(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    two_stages(workspace, counter, params=["train.epochs"])
    assert "param 'train.epochs' added" in cli.run("repro", "--dry").stdout
    cli.run("repro")
    assert counter.runs("train") == 2


def test_no_run_cache_runs_the_command(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    workspace.write({"params.yaml": "train:\n  lr: 0.2\n  epochs: 3\n"})
    cli.run("repro")
    workspace.write({"params.yaml": "train:\n  lr: 0.1\n  epochs: 3\n"})
    cli.run("repro", "--no-run-cache")
    assert counter.runs("train") == 3


def test_runs_under_no_run_cache_are_still_recorded(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro", "--no-run-cache")
    workspace.write({"params.yaml": "train:\n  lr: 0.2\n  epochs: 3\n"})
    cli.run("repro")
    workspace.write({"params.yaml": "train:\n  lr: 0.1\n  epochs: 3\n"})
    cli.run("repro")
    assert counter.runs("train") == 2


def test_env_var_change_reruns(workspace: Workspace, cli: Cli, counter: Counter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPE_TEST_MODE", "a")
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "echo $PIPE_TEST_MODE > o"), "outs": ["o"],
                                    "env": ["PIPE_TEST_MODE"]}})
    cli.run("repro")
    cli.run("repro")
    assert counter.runs("s") == 1
    monkeypatch.setenv("PIPE_TEST_MODE", "b")
    assert "env 'PIPE_TEST_MODE' changed" in cli.run("repro", "--dry").stdout
    cli.run("repro")
    assert counter.runs("s") == 2 and workspace.read("o") == "b\n"
    assert lock_of(workspace.root)["stages"]["s"]["env"] == {"PIPE_TEST_MODE": "b"}


def test_deleted_or_modified_out_is_restored_without_running(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    (workspace.root / "model.txt").unlink()
    result = cli.run("repro")
    assert "restored" in result.stderr
    assert workspace.read("model.txt") == "HELLO\nlr=0.1\n"
    (workspace.root / "model.txt").write_text("scribbled\n")
    cli.run("repro")
    assert workspace.read("model.txt") == "HELLO\nlr=0.1\n"
    assert counter.snapshot() == {"prep": 1, "train": 1}


def test_out_missing_from_cache_reruns(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    store = workspace.project().store
    oid = lock_of(workspace.root)["stages"]["train"]["outs"][0]["oid"]
    store.remove([oid])
    assert "out 'model.txt' not in cache" in cli.run("repro", "--dry").stdout
    cli.run("repro")
    assert counter.snapshot() == {"prep": 1, "train": 2}
    assert store.exists(oid)


def test_comment_only_change_upstream_stops_at_early_cutoff(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"gen.sh": "# version 1\necho data\n"})
    workspace.write_pipeline({
        "gen": {"cmd": counter.cmd("gen", "sh gen.sh > a.txt"), "deps": ["gen.sh"], "outs": ["a.txt"]},
        "use": {"cmd": counter.cmd("use", "cat a.txt a.txt > b.txt"), "deps": ["a.txt"], "outs": ["b.txt"]},
    })
    cli.run("repro")
    workspace.write({"gen.sh": "# version 2, only a comment changed\necho data\n"})
    dry = cli.run("repro", "--dry").stdout
    assert "dep 'gen.sh' modified" in dry and "upstream stage 'gen' changed" in dry
    cli.run("repro")
    assert counter.snapshot() == {"gen": 2, "use": 1}
    workspace.write({"gen.sh": "echo other data\n"})
    cli.run("repro")
    assert counter.snapshot() == {"gen": 3, "use": 2}


def test_force_downstream_disables_early_cutoff(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"gen.sh": "# v1\necho data\n"})
    workspace.write_pipeline({
        "gen": {"cmd": counter.cmd("gen", "sh gen.sh > a.txt"), "deps": ["gen.sh"], "outs": ["a.txt"]},
        "use": {"cmd": counter.cmd("use", "cat a.txt > b.txt"), "deps": ["a.txt"], "outs": ["b.txt"]},
    })
    cli.run("repro", "-j", "1")
    workspace.write({"gen.sh": "# v2\necho data\n"})
    cli.run("repro", "--force-downstream", "-j", "1")
    assert counter.snapshot() == {"gen": 2, "use": 2}


def test_always_changed_and_force_rerun(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write_pipeline({
        "a": {"cmd": counter.cmd("a", "date +%N > a.txt"), "outs": ["a.txt"], "always_changed": True},
        "b": {"cmd": counter.cmd("b", "echo b > b.txt"), "outs": ["b.txt"]},
    })
    cli.run("repro")
    cli.run("repro")
    assert counter.snapshot() == {"a": 2, "b": 1}
    cli.run("repro", "-f", "b")
    assert counter.snapshot() == {"a": 2, "b": 2}


def test_full_repro_drops_lock_entries_of_removed_stages(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    workspace.write_pipeline({"prep": {"cmd": counter.cmd("prep", "tr a-z A-Z < data.txt > up.txt"),
                                       "deps": ["data.txt"], "outs": ["up.txt"]}})
    cli.run("repro", "prep")
    assert list(lock_of(workspace.root)["stages"]) == ["prep", "train"]
    cli.run("repro")
    assert list(lock_of(workspace.root)["stages"]) == ["prep"]
    assert counter.snapshot() == {"prep": 1, "train": 1}


def test_stage_with_outs_and_no_deps_runs_once(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "echo x > o.txt"), "outs": ["o.txt"]}})
    for _ in range(3):
        cli.run("repro")
    assert counter.runs("s") == 1


def test_frozen_stage_never_runs_but_its_outs_are_restored(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro")
    cli.run("freeze", "prep")
    assert "frozen: true" in workspace.read("pipeline.yaml")
    workspace.write({"data.txt": "changed\n"})
    (workspace.root / "up.txt").unlink()
    cli.run("repro")
    assert counter.snapshot() == {"prep": 1, "train": 1}
    assert workspace.read("up.txt") == "HELLO\n"
    cli.run("unfreeze", "prep")
    assert "frozen:" not in workspace.read("pipeline.yaml")
    cli.run("repro")
    assert counter.snapshot() == {"prep": 2, "train": 2}


def test_persist_out_is_kept_and_skips_run_cache(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"in.txt": "1"})
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "cat in.txt >> log.txt"), "deps": ["in.txt"],
                                    "outs": [{"log.txt": {"persist": True}}]}})
    cli.run("repro")
    workspace.write({"in.txt": "2"})
    cli.run("repro")
    workspace.write({"in.txt": "1"})
    cli.run("repro")
    assert counter.runs("s") == 3
    assert workspace.read("log.txt") == "121"


@pytest.mark.parametrize("link", ["hardlink", "symlink"])
def test_persist_out_linked_to_the_cache_is_copied_before_the_run(
    workspace: Workspace, cli: Cli, counter: Counter, link: str
) -> None:
    (workspace.root / ".pipe" / "config.yaml").write_text(f"schema: 1\ncache:\n  type: {link}\n")
    workspace.write({"in.txt": "1"})
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "cat in.txt >> log.txt"), "deps": ["in.txt"],
                                    "outs": [{"log.txt": {"persist": True}}]}})
    cli.run("repro")
    first_oid = lock_of(workspace.root)["stages"]["s"]["outs"][0]["oid"]
    workspace.write({"in.txt": "2"})
    cli.run("repro")
    assert workspace.read("log.txt") == "12"
    store = workspace.project().store
    assert store.path_of(first_oid).read_text() == "1"  # the cached object was not written through


def test_uncached_out_is_kept_for_the_run_cache_and_restored_when_deleted(
    workspace: Workspace, cli: Cli, counter: Counter
) -> None:
    # DVC keeps a `cache: false` out's content in the run cache (the file itself stays git's, not ignored).
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "echo m > m.json"),
                                    "metrics": [{"m.json": {"cache": False}}]}})
    cli.run("repro")
    oid = lock_of(workspace.root)["stages"]["s"]["outs"][0]["oid"]
    assert workspace.project().store.exists(oid)
    assert ".gitignore" not in os.listdir(workspace.root) or "m.json" not in workspace.read(".gitignore")
    (workspace.root / "m.json").unlink()
    cli.run("repro")
    assert counter.runs("s") == 1
    assert workspace.read("m.json") == "m\n"


def test_outs_are_deleted_before_the_command_runs(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"in.txt": "1"})
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "cat in.txt >> o.txt"), "deps": ["in.txt"],
                                    "outs": ["o.txt"]}})
    cli.run("repro")
    workspace.write({"in.txt": "2"})
    cli.run("repro")
    assert workspace.read("o.txt") == "2"


def test_directory_outs_and_deps(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"src": {"a.txt": "a", "b.txt": "b"}})
    workspace.write_pipeline({
        "split": {"cmd": counter.cmd("split", "mkdir -p parts && cp src/* parts/"), "deps": ["src"],
                  "outs": ["parts"]},
        "join": {"cmd": counter.cmd("join", "cat parts/a.txt > joined.txt"), "deps": ["parts/a.txt"],
                 "outs": ["joined.txt"]},
    })
    cli.run("repro")
    assert workspace.read("joined.txt") == "a"
    workspace.write({"src": {"b.txt": "B"}})
    cli.run("repro")
    assert counter.snapshot() == {"split": 2, "join": 1}


def test_wdir_multiline_cmd_and_environment(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"sub": {"in.txt": "x"}})
    workspace.write_pipeline({"s": {
        "wdir": "sub",
        "cmd": ["echo $PIPE_STAGE > stage.txt", "echo $PIPE_ROOT > root.txt", counter.cmd("s", "cat in.txt > o")],
        "deps": ["in.txt"], "outs": ["o", "stage.txt", "root.txt"],
    }})
    cli.run("repro")
    assert workspace.read("sub/stage.txt") == "s\n"
    assert Path(workspace.read("sub/root.txt").strip()) == workspace.root
    assert lock_of(workspace.root)["stages"]["s"]["deps"][0]["path"] == "sub/in.txt"


def test_multiline_cmd_stops_at_first_failing_line(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write_pipeline({"s": {"cmd": f"false\necho run >> {counter.dir / 's'}\necho > o", "outs": ["o"]}})
    cli.run("repro", exit_code=3)
    assert counter.runs("s") == 0 and not (workspace.root / "o").exists()


def test_failing_stage_keeps_upstream_lock_entries_and_exits_3(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write_pipeline({
        "ok": {"cmd": counter.cmd("ok", "echo ok > ok.txt"), "outs": ["ok.txt"]},
        "bad": {"cmd": counter.cmd("bad", "exit 7"), "deps": ["ok.txt"], "outs": ["bad.txt"]},
        "after": {"cmd": counter.cmd("after", "cat bad.txt > after.txt"), "deps": ["bad.txt"],
                  "outs": ["after.txt"]},
    })
    result = cli.run("repro", "-j", "1", exit_code=3)
    assert "stage 'bad' failed" in result.stderr and "code 7" in result.stderr
    assert "after" in result.stderr and "skipped" in result.stderr
    assert list(lock_of(workspace.root)["stages"]) == ["ok"]
    assert counter.snapshot() == {"ok": 1, "bad": 1}


def test_keep_going_runs_independent_stages(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write_pipeline({
        "bad": {"cmd": counter.cmd("bad", "exit 1"), "outs": ["bad.txt"]},
        "zother": {"cmd": counter.cmd("zother", "echo > z.txt"), "outs": ["z.txt"]},
    })
    cli.run("repro", "-j", "1", exit_code=3)
    assert counter.runs("zother") == 0
    cli.run("repro", "-j", "1", "-k", exit_code=3)
    assert counter.runs("zother") == 1


def test_missing_out_after_run_is_an_error(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "true"), "outs": ["never.txt"]}})
    result = cli.run("repro", exit_code=1)
    assert "did not create its out 'never.txt'" in result.stderr
    assert not (workspace.root / LOCK_FILE).exists()


def test_parallel_stages_really_overlap(workspace: Workspace, cli: Cli) -> None:
    # Each stage waits (up to 20 s) for the other to have started: this only finishes quickly in parallel.
    def waiter(me: str, other: str) -> str:
        return (f"touch started_{me}; i=0; while [ ! -e started_{other} ] && [ $i -lt 400 ]; do sleep 0.05; "
                f"i=$((i+1)); done; [ -e started_{other} ] && echo {me} > {me}.txt")

    workspace.write_pipeline({
        "a": {"cmd": waiter("a", "b"), "outs": ["a.txt"]},
        "b": {"cmd": waiter("b", "a"), "outs": ["b.txt"]},
    })
    cli.run("repro", "-j", "2")
    assert workspace.read("a.txt") == "a\n" and workspace.read("b.txt") == "b\n"


def test_parallel_output_is_shown_per_stage(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({
        "a": {"cmd": "echo hello from a && echo a > a.txt", "outs": ["a.txt"]},
        "b": {"cmd": "echo hello from b && echo b > b.txt", "outs": ["b.txt"]},
    })
    result = cli.run("repro", "-j", "2")
    # Streamed as it comes (prefixed with 'a | ' while both run: tests/e2e/test_repro_output.py).
    assert "hello from a\n" in result.stderr and "hello from b\n" in result.stderr


def test_targets_single_item_and_downstream(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    cli.run("repro", "prep")
    assert counter.snapshot() == {"prep": 1}
    workspace.write({"data.txt": "again\n"})
    cli.run("repro", "-s", "train")
    assert counter.snapshot() == {"prep": 1, "train": 1}
    cli.run("repro", "--downstream", "prep")
    assert counter.snapshot() == {"prep": 2, "train": 2}


def test_dvc_file_addressing_of_targets(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    # DVC's `:stage`, `./dvc.yaml:stage` and `dvc.yaml` (every stage of the file) work with pipeline.yaml.
    two_stages(workspace, counter)
    cli.run("repro", "-s", ":prep")
    assert counter.snapshot() == {"prep": 1}
    cli.run("repro", "-s", "./pipeline.yaml:train")
    assert counter.snapshot() == {"prep": 1, "train": 1}
    cli.run("repro", "-f", "pipeline.yaml")
    assert counter.snapshot() == {"prep": 2, "train": 2}
    assert "stage 'nope' not found" in cli.run("repro", ":nope", exit_code=1).stderr


def test_unknown_target_suggests_a_stage(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    result = cli.run("repro", "trian", exit_code=1)
    assert "stage 'trian' not found" in result.stderr and "did you mean 'train'" in result.stderr


def test_repro_without_pipeline_says_how_to_add_a_stage(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("repro", exit_code=1)
    assert "there is no pipeline.yaml" in result.stderr and "pipe stage add" in result.stderr


def test_broken_pipeline_yaml_is_one_clear_error(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"pipeline.yaml": "stages:\n  train:\n    cmd: x\n    dep: [a]\n"})
    before = workspace.snapshot()
    result = cli.run("repro", exit_code=1)
    assert "pipeline.yaml:4: stage 'train': unknown key 'dep' (did you mean 'deps'?)" in result.stderr
    assert "Traceback" not in result.stderr and workspace.snapshot() == before
    workspace.write({"pipeline.yaml": "stages:\n  train:\n    cmd: x\n   outs: [a]\n"})
    assert "pipeline.yaml:4:" in cli.run("status", exit_code=1).stderr


def test_cycle_and_overlap_errors_name_stages(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"a": {"cmd": "x", "deps": ["b.txt"], "outs": ["a.txt"]},
                              "b": {"cmd": "x", "deps": ["a.txt"], "outs": ["b.txt"]}})
    result = cli.run("repro", exit_code=1)
    assert "cycle" in result.stderr and "a" in result.stderr and "b" in result.stderr
    workspace.write_pipeline({"a": {"cmd": "x", "outs": ["d"]}, "b": {"cmd": "x", "outs": ["d/f"]}})
    assert "out 'd/f' of stage 'b' is inside out 'd' of stage 'a'" in cli.run("dag", exit_code=1).stderr
    assert not (workspace.root / LOCK_FILE).exists()


def test_out_tracked_by_a_pointer_is_refused(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"raw.csv": "a\n"})
    cli.run("add", "raw.csv")
    workspace.write_pipeline({"s": {"cmd": "x", "outs": ["raw.csv"]}})
    assert "'raw.csv' is tracked by 'raw.csv.pipe' and is also an out of stage 's'" in cli.run(
        "repro", exit_code=1).stderr


def test_dry_runs_nothing(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    out = cli.run("repro", "--dry").stdout
    assert "would run 'prep': never ran" in out and "would run 'train'" in out
    assert counter.snapshot() == {} and not (workspace.root / LOCK_FILE).exists()


def test_second_repro_fails_at_once_while_the_project_is_locked(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    two_stages(workspace, counter)
    with workspace.project().mutex("pipe repro (other)"):
        result = cli.run("repro", exit_code=1)
    assert f"pid {os.getpid()}" in result.stderr and "pipe repro (other)" in result.stderr
    assert counter.snapshot() == {}


def test_foreach_and_matrix_expand_and_can_be_targeted(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"params.yaml": "models: [small, large]\n"})
    workspace.write_pipeline({
        "fit": {"foreach": "${models}", "do": {"cmd": counter.cmd("fit@${item}", "echo ${item} > ${item}.txt"),
                                               "outs": ["${item}.txt"]}},
        "grid": {"matrix": {"lr": [1, 2], "opt": ["sgd", "adam"]},
                 "cmd": counter.cmd("grid@${item.lr}-${item.opt}", "echo ${item.lr} > g${item.lr}${item.opt}"),
                 "outs": ["g${item.lr}${item.opt}"]},
    })
    cli.run("repro", "fit@large")
    assert counter.snapshot() == {"fit@large": 1}
    cli.run("repro", "grid")
    assert sorted(counter.snapshot()) == ["fit@large", "grid@1-adam", "grid@1-sgd", "grid@2-adam", "grid@2-sgd"]
    cli.run("repro")
    assert counter.runs("fit@small") == 1 and workspace.read("small.txt") == "small\n"
    assert "fit@small" in lock_of(workspace.root)["stages"]


def test_interpolated_param_is_tracked(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"params.yaml": "n: 1\nother: 1\n"})
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "echo ${n} > o"), "outs": ["o"]}})
    cli.run("repro")
    assert lock_of(workspace.root)["stages"]["s"]["params"] == {"params.yaml": {"n": 1}}
    workspace.write({"params.yaml": "n: 1\nother: 2\n"})
    cli.run("repro")
    assert counter.runs("s") == 1
    workspace.write({"params.yaml": "n: 2\nother: 2\n"})
    cli.run("repro")
    assert counter.runs("s") == 2 and workspace.read("o") == "2\n"


def test_params_from_json_and_toml_files(workspace: Workspace, cli: Cli, counter: Counter) -> None:
    workspace.write({"p.json": '{"a": {"b": 1}}', "p.toml": "[t]\nx = 1\n"})
    workspace.write_pipeline({"s": {"cmd": counter.cmd("s", "echo > o"), "outs": ["o"],
                                    "params": [{"p.json": ["a.b"]}, "p.toml"]}})
    cli.run("repro")
    assert lock_of(workspace.root)["stages"]["s"]["params"] == {"p.json": {"a.b": 1}, "p.toml": {"t": {"x": 1}}}
    workspace.write({"p.toml": "[t]\nx = 2\n"})
    assert "param 'p.toml:t' {'x': 1} -> {'x': 2}" in cli.run("repro", "--dry").stdout


def test_dry_prints_the_commands_that_would_run_as_dvc_does(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({
        "one": {"cmd": "echo one > a.txt", "outs": ["a.txt"]},
        "many": {"cmd": ["echo first", "echo second > b.txt"], "deps": ["a.txt"], "outs": ["b.txt"]},
    })
    out = cli.run("repro", "--dry").stdout
    assert "> echo one > a.txt" in out
    assert out.index("> echo first") < out.index("> echo second > b.txt")
    assert not (workspace.root / "a.txt").exists()
