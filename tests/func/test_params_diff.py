"""pipe params diff: the params the stages track, old against new, in DVC's shapes."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Cli, Workspace


def _json(cli: Cli, *args: str) -> Any:
    return json.loads(cli.run("params", "diff", *args, "--json").stdout)


def _stages(workspace: Workspace) -> None:
    workspace.write_pipeline({
        "train": {"cmd": "echo train", "params": ["train.lr", "train.layers", {"extra.json": None}]},
        "prep": {"cmd": "echo prep", "params": ["prep.split"]},
    })


def test_diff_against_the_workspace_shows_changed_added_and_deleted_params(workspace: Workspace, cli: Cli) -> None:
    _stages(workspace)
    workspace.history([{
        "params.yaml": "train: {lr: 0.1, layers: [1, 2], untracked: 5}\nprep: {split: 0.2}\n",
        "extra.json": '{"seed": 1, "opt": {"name": "sgd", "momentum": 0.9}}',
    }])
    workspace.write({
        "params.yaml": "train: {lr: 0.01, layers: [1, 2, 3], untracked: 6}\nprep: {split: 0.2}\n",
        "extra.json": '{"seed": 1, "opt": {"name": "adam"}, "eps": 1e-8}',
    })

    assert _json(cli) == {
        "extra.json": {
            "eps": {"old": None, "new": 1e-8},
            "opt.momentum": {"old": 0.9, "new": None},
            "opt.name": {"old": "sgd", "new": "adam"},
        },
        "params.yaml": {
            "train.layers": {"old": [1, 2], "new": [1, 2, 3]},
            "train.lr": {"old": 0.1, "new": 0.01, "diff": 0.01 - 0.1},
            "train.untracked": {"old": 5, "new": 6, "diff": 1},  # params.yaml counts whole, as in DVC
        },
    }
    every = _json(cli, "--all", "--deps")
    assert every["params.yaml"]["prep.split"] == {"old": 0.2, "new": 0.2, "diff": 0.0}
    assert every["extra.json"]["seed"] == {"old": 1, "new": 1, "diff": 0}
    assert "train.untracked" not in every["params.yaml"]  # --deps: only what the stages track


def test_params_yaml_counts_whole_unless_deps(workspace: Workspace, cli: Cli) -> None:
    # DVC's rule: `params diff` shows every key of params.yaml; `--deps` only the tracked ones.
    workspace.write_pipeline({"train": {"cmd": "echo", "params": ["lr"]}})
    workspace.history([{"params.yaml": "lr: 1\nnotes: {a: x}\n"}])
    workspace.write({"params.yaml": "lr: 2\nnotes: {a: y}\n"})

    assert _json(cli) == {"params.yaml": {"lr": {"old": 1, "new": 2, "diff": 1},
                                          "notes.a": {"old": "x", "new": "y"}}}
    assert _json(cli, "--deps") == {"params.yaml": {"lr": {"old": 1, "new": 2, "diff": 1}}}


def test_diff_between_revisions_and_markdown(workspace: Workspace, cli: Cli) -> None:
    _stages(workspace)
    workspace.history([
        {"params.yaml": "train: {lr: 0.1, layers: 2}\nprep: {split: 0.2}\n", "extra.json": "{}"},
        {"params.yaml": "train: {lr: 0.2, layers: 2}\nprep: {split: 0.3}\n"},
    ])
    assert _json(cli, "HEAD~1", "HEAD") == {"params.yaml": {
        "prep.split": {"old": 0.2, "new": 0.3, "diff": 0.3 - 0.2},
        "train.lr": {"old": 0.1, "new": 0.2, "diff": 0.1},
    }}
    md = cli.run("params", "diff", "HEAD~1", "--md").stdout.splitlines()
    assert md == [
        "| Path        | Param      | HEAD~1 | workspace |",
        "|-------------|------------|--------|-----------|",
        "| params.yaml | prep.split | 0.2    | 0.3       |",
        "| params.yaml | train.lr   | 0.1    | 0.2       |",
    ]


def test_a_param_newly_tracked_shows_its_old_value(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo", "params": ["lr"]}})
    workspace.history([{"params.yaml": "lr: 1\nbatch: 32\n"}])
    workspace.write_pipeline({"train": {"cmd": "echo", "params": ["lr", "batch"]}})
    workspace.write({"params.yaml": "lr: 1\nbatch: 64\n"})

    assert _json(cli, "--deps") == {"params.yaml": {"batch": {"old": 32, "new": 64, "diff": 32}}}


def test_params_file_missing_at_the_old_revision_shows_params_added(workspace: Workspace, cli: Cli) -> None:
    workspace.commit("nothing yet")
    workspace.write_pipeline({"train": {"cmd": "echo", "params": ["lr"]}})
    workspace.write({"params.yaml": "lr: 3\n"})

    assert _json(cli) == {"params.yaml": {"lr": {"old": None, "new": 3}}}
    assert cli.run("params", "diff").stdout.count("lr") == 1


def test_no_changes_is_a_message_and_an_empty_json_object(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo", "params": ["lr"]}})
    workspace.history([{"params.yaml": "lr: 3\n"}])

    assert _json(cli) == {}
    result = cli.run("params", "diff")
    assert result.stdout == "" and "no changes between 'HEAD' and 'workspace'" in result.stderr


def test_an_invalid_params_file_is_an_error_naming_it_and_the_revision(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo", "params": ["lr"]}})
    workspace.history([{"params.yaml": "lr: [unclosed\n"}])
    workspace.write({"params.yaml": "lr: 1\n"})

    result = cli.run("params", "diff", exit_code=1)
    assert "params.yaml at 'HEAD'" in result.stderr and "Traceback" not in result.stderr


def test_one_unreadable_params_file_is_a_warning_and_the_others_are_compared(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo", "params": ["lr", {"other.yaml": ["k"]}]}})
    workspace.history([{"params.yaml": "lr: 1\n", "other.yaml": "k: 1\n"}])
    workspace.write({"params.yaml": "lr: 2\n", "other.yaml": "k: [unclosed\n"})

    result = cli.run("params", "diff", "--json")

    assert json.loads(result.stdout) == {"params.yaml": {"lr": {"old": 1, "new": 2, "diff": 1}}}
    assert "warning:" in result.stderr and "other.yaml" in result.stderr
    workspace.write({"other.yaml": "k: 1\n" + "#" * (16 * 2**20)})
    result = cli.run("params", "diff")
    assert "other.yaml" in result.stderr and "16 MiB" in result.stderr and "no changes" not in result.output


def test_top_level_params_files_count_whole_unless_deps(workspace: Workspace, cli: Cli) -> None:
    # DVC's dvc.yaml `params: [config.json]`: a params file no stage tracks, still shown by params diff.
    workspace.write_pipeline({"train": {"cmd": "echo"}}, params=["config.json"])
    workspace.history([{"config.json": '{"k": 1, "same": 0}'}])
    workspace.write({"config.json": '{"k": 2, "same": 0}'})

    assert _json(cli) == {"config.json": {"k": {"old": 1, "new": 2, "diff": 1}}}
    assert _json(cli, "--deps") == {}


def test_top_level_params_and_metrics_are_templated_from_params_yaml(workspace: Workspace, cli: Cli) -> None:
    # DVC resolves `${...}` in the top-level params, metrics and plots entries too.
    workspace.write_pipeline({"train": {"cmd": "echo"}}, params=["${files.params}"], metrics=["${files.metrics}"])
    workspace.history([{"params.yaml": "files: {params: config.json, metrics: m.json}\n",
                        "config.json": '{"k": 1}', "m.json": '{"acc": 0.5}'}])
    workspace.write({"config.json": '{"k": 2}'})

    assert _json(cli)["config.json"] == {"k": {"old": 1, "new": 2, "diff": 1}}
    shown = json.loads(cli.run("metrics", "show", "--json").stdout)
    assert shown["workspace"]["data"]["m.json"]["data"] == {"acc": 0.5}
