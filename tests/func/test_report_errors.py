"""One unreadable metrics or plots file does not fail the command (DVC's behaviour): the others are
shown, the file's error is a warning on stderr and an `error` entry in `--json`, and the exit code is 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli, Workspace


def _broken_metrics(workspace: Workspace, outside: Path) -> None:
    outside.write_text('{"secret": 42}')
    workspace.write({"ok.json": '{"acc": 0.9}', "bad.json": "{broken", "bad.yaml": "a: [1\n",
                     "dir.json": {"inner.txt": "not a metrics file\n"}})
    (workspace.root / "out.json").symlink_to(outside)
    (workspace.root / "dangling.json").symlink_to("nowhere.json")
    workspace.write_pipeline({}, metrics=["ok.json", "bad.json", "bad.yaml", "dir.json", "out.json", "dangling.json"])


def test_metrics_show_reports_each_unreadable_file_and_shows_the_others(workspace: Workspace, cli: Cli,
                                                                        tmp_path: Path) -> None:
    _broken_metrics(workspace, tmp_path / "outside.json")

    result = cli.run("metrics", "show")

    assert "acc" in result.stdout and "0.9" in result.stdout
    assert "secret" not in result.stdout and "42" not in result.stdout
    for name in ("bad.json", "bad.yaml", "out.json", "dangling.json"):
        assert f"warning:" in result.stderr and name in result.stderr, name
    assert "Traceback" not in result.stderr


def test_metrics_show_json_has_an_error_entry_per_unreadable_file(workspace: Workspace, cli: Cli,
                                                                  tmp_path: Path) -> None:
    _broken_metrics(workspace, tmp_path / "outside.json")

    shown: dict[str, Any] = json.loads(cli.run("metrics", "show", "--json").stdout)["workspace"]["data"]

    assert shown["ok.json"] == {"data": {"acc": 0.9}}
    assert set(shown) == {"ok.json", "bad.json", "bad.yaml", "out.json", "dangling.json"}
    for name in ("bad.json", "bad.yaml", "out.json", "dangling.json"):
        assert set(shown[name]) == {"error"} and name in shown[name]["error"]["msg"], name
    assert "symlink" in shown["dangling.json"]["error"]["msg"]


def test_metrics_diff_compares_the_readable_files_and_warns_of_the_others(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({}, metrics=["a.json", "b.json"])
    workspace.write({"a.json": '{"x": 1}', "b.json": '{"y": 1}'})
    workspace.commit("metrics")
    workspace.write({"a.json": '{"x": 2}'})
    (workspace.root / "b.json").unlink()
    (workspace.root / "b.json").symlink_to("gone.json")

    result = cli.run("metrics", "diff", "--json")

    assert json.loads(result.stdout) == {"a.json": {"x": {"old": 1, "new": 2, "diff": 1}}}
    assert "b.json" in result.stderr and "symlink" in result.stderr


def test_plots_show_draws_the_others_when_one_file_links_outside(workspace: Workspace, cli: Cli,
                                                                 tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("x,y\n1,666\n")
    workspace.write({"a.csv": "x,y\n1,2\n2,3\n"})
    (workspace.root / "leak.csv").symlink_to(outside)
    workspace.write({"pipeline.yaml": "plots:\n  - a.csv\n  - leak.csv\n"})

    result = cli.run("plots", "show", "--json")

    data = json.loads(result.stdout)["data"]
    assert "a.csv" in data and "666" not in result.stdout
    assert "leak.csv" in result.stderr and "outside the project" in result.stderr


def test_declared_metrics_not_produced_yet_are_named(workspace: Workspace, cli: Cli) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo '{\"acc\": 1}' > eval.json", "metrics": [{"eval.json": {"cache": False}}]}})

    result = cli.run("metrics", "show")

    assert result.stdout == "" and "'eval.json', declared in pipeline.yaml, does not exist" in result.stderr
    assert "pipe repro" in result.stderr
    assert json.loads(cli.run("metrics", "show", "--json").stdout) == {"workspace": {"data": {}}}


def test_plots_show_names_a_dangling_link(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"a.csv": "x,y\n1,2\n", "pipeline.yaml": "plots:\n  - a.csv\n  - b.csv\n"})
    (workspace.root / "b.csv").symlink_to("gone.csv")

    result = cli.run("plots", "show", "--json")

    assert list(json.loads(result.stdout)["data"]) == ["a.csv"]
    assert "'b.csv' is a symlink to 'gone.csv', which does not exist" in result.stderr
