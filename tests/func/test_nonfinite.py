"""Metrics and plot data holding NaN or Infinity (Python's json and pandas write them for a diverged
run; DVC reads them) are read: `nan` in tables, missing points in plots. Params still refuse them."""

from __future__ import annotations

import json
import math
from typing import Any

from tests.conftest import Cli, Workspace


def test_metrics_show_prints_nan_and_inf(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"m.json": '{"loss": NaN, "grad": Infinity, "acc": 0.5}'})
    workspace.write_pipeline({}, metrics=["m.json"])

    table = cli.run("metrics", "show", "--csv").stdout
    assert table.splitlines() == ["Path,acc,grad,loss", "m.json,0.5,inf,nan"]
    shown = json.loads(cli.run("metrics", "show", "--json").stdout)  # DVC writes NaN too; json.loads reads it
    data = shown["workspace"]["data"]["m.json"]["data"]
    assert math.isnan(data["loss"]) and data["grad"] == math.inf and data["acc"] == 0.5


def test_a_metric_that_stays_nan_is_unchanged_in_a_diff(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({}, metrics=["m.json"])
    workspace.write({"m.json": '{"loss": NaN, "acc": 0.5}'})
    workspace.commit("diverged")
    workspace.write({"m.json": '{"loss": NaN, "acc": 0.6}'})

    changes = json.loads(cli.run("metrics", "diff", "--json").stdout)
    assert list(changes["m.json"]) == ["acc"]
    workspace.write({"m.json": '{"loss": 0.1, "acc": 0.6}'})
    assert cli.run("metrics", "diff", "--csv", "--no-path").stdout.splitlines()[1:] == [
        "acc,0.5,0.6,0.1,+20.00%", "loss,nan,0.1,-,-"]


def test_plots_show_draws_nan_as_a_missing_point(workspace: Workspace, cli: Cli) -> None:
    rows = [{"step": 0, "loss": 1.0}, {"step": 1, "loss": math.nan}, {"step": 2, "loss": math.inf}, {"step": 3, "loss": 0.5}]
    workspace.write({"loss.json": json.dumps(rows), "pipeline.yaml": "plots:\n  - loss.json:\n      x: step\n"})

    result = cli.run("plots", "show", "--json")

    assert "warning" not in result.stderr
    spec: dict[str, Any] = json.loads(result.stdout, parse_constant=_not_json)["data"]["loss.json"][0]["content"]
    assert [(p["step"], p["loss"]) for p in spec["data"]["values"]] == [(0, 1.0), (1, None), (2, None), (3, 0.5)]
    cli.run("plots", "show")  # the page renders too
    assert (workspace.root / "pipe_plots" / "index.html").is_file()


def test_params_still_refuse_nan(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"params.json": '{"lr": NaN}'})
    workspace.write_pipeline({"train": {"cmd": "echo", "params": [{"params.json": ["lr"]}]}})

    assert "NaN is not a finite number" in cli.run("status", exit_code=1).output


def _not_json(name: str) -> None:
    raise AssertionError(f"not JSON: {name}")


def test_plots_csv_nan_and_inf_cells_are_missing_points(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"loss.csv": "step,loss\n0,1.0\n1,nan\n2,-inf\n3,1e400\n4,NaN\n5,0.5\n6,text\n",
                     "pipeline.yaml": "plots:\n  - loss.csv:\n      x: step\n"})

    spec: dict[str, Any] = json.loads(cli.run("plots", "show", "--json").stdout, parse_constant=_not_json)[
        "data"]["loss.csv"][0]["content"]

    assert [p["loss"] for p in spec["data"]["values"]] == [1.0, None, None, None, None, 0.5, "text"]
