"""Params, metrics and plots files over `MAX_DOCUMENT_BYTES` are refused before they are read whole
or parsed (a 500 MB YAML held `pipe status` for minutes), with the file and the limit named."""

from __future__ import annotations

import json

from pipeline_engine.core.yamlio import MAX_DOCUMENT_BYTES
from tests.conftest import Cli, Workspace

OVER = "#" * (MAX_DOCUMENT_BYTES + 1)  # a comment: cheap to parse, so only the size check can refuse it


def test_status_refuses_a_huge_params_file_naming_it_and_the_limit(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"params.yaml": "lr: 0.1\n" + OVER + "\n"})
    workspace.write_pipeline({"train": {"cmd": "echo", "params": ["lr"]}})

    output = cli.run("status", exit_code=1).output

    assert "params.yaml" in output and "16 MiB" in output and "Traceback" not in output
    # params.yaml is read with pipeline.yaml (its `vars`): the whole command stops
    assert "16 MiB" in cli.run("params", "diff", exit_code=1).output


def test_a_huge_metrics_or_plots_file_is_reported_and_the_others_shown(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"big.json": '{"a": 1}' + " " * MAX_DOCUMENT_BYTES, "ok.json": '{"acc": 1}',
                     "big.csv": "x,y\n" + "1,2\n" * (MAX_DOCUMENT_BYTES // 4 + 1), "ok.csv": "x,y\n1,2\n"})
    workspace.write({"pipeline.yaml": "metrics: [big.json, ok.json]\nplots: [big.csv, ok.csv]\n"})

    metrics = cli.run("metrics", "show", "--json")
    shown = json.loads(metrics.stdout)["workspace"]["data"]
    assert shown["ok.json"] == {"data": {"acc": 1}} and "16 MiB" in shown["big.json"]["error"]["msg"]
    plots = cli.run("plots", "show", "--json")
    assert list(json.loads(plots.stdout)["data"]) == ["ok.csv"]
    assert "big.csv" in plots.stderr and "16 MiB" in plots.stderr


def test_a_file_just_under_the_limit_is_read(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"m.json": '{"a": 1}' + " " * (MAX_DOCUMENT_BYTES - 9)})
    workspace.write_pipeline({}, metrics=["m.json"])

    assert json.loads(cli.run("metrics", "show", "--json").stdout)["workspace"]["data"]["m.json"] == {"data": {"a": 1}}


def test_a_huge_file_at_a_revision_is_refused_by_its_blob_size(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo", "params": [{"other.yaml": ["k"]}]}}, metrics=["m.json"])
    workspace.write({"other.yaml": "k: 1\n" + OVER + "\n", "m.json": '{"a": 1}' + " " * MAX_DOCUMENT_BYTES})
    workspace.commit("huge")
    workspace.write({"other.yaml": "k: 2\n", "m.json": '{"a": 2}'})

    diff = cli.run("params", "diff")
    assert "other.yaml at 'HEAD'" in diff.stderr and "16 MiB" in diff.stderr
    shown = json.loads(cli.run("metrics", "show", "--json", "--rev", "HEAD").stdout)
    assert "16 MiB" in shown["HEAD"]["data"]["m.json"]["error"]["msg"]
    assert shown["workspace"]["data"]["m.json"] == {"data": {"a": 2}}
