"""pipe metrics show / diff: metrics files of the workspace and of git revisions, in DVC's shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli, Workspace


def _json(cli: Cli, *args: str, exit_code: int = 0) -> Any:
    return json.loads(cli.run("metrics", *args, "--json", exit_code=exit_code).stdout)


def _top_level(workspace: Workspace, *paths: str) -> None:
    """pipeline.yaml with no stages and the top-level `metrics:` key."""
    workspace.write_pipeline({}, metrics=list(paths))


def _history(workspace: Workspace) -> list[str]:
    """main: three commits (tag v1 on the first), branch 'exp' forks from the second with its own commit."""
    _top_level(workspace, "metrics.json")
    shas = workspace.history([
        {"metrics.json": '{"acc": 0.5, "loss": {"train": 1.0}}'},
        {"metrics.json": '{"acc": 0.6, "loss": {"train": 0.8}}'},
    ])
    workspace.git("tag", "v1", shas[0])
    workspace.git("checkout", "-q", "-b", "exp")
    shas += workspace.history([{"metrics.json": '{"acc": 0.9, "loss": {"train": 0.1}}'}])
    workspace.git("checkout", "-q", "main")
    shas += workspace.history([{"metrics.json": '{"acc": 0.7, "loss": {"train": 0.5}}'}])
    return shas


def _data(acc: float, loss: float) -> dict[str, Any]:
    return {"data": {"metrics.json": {"data": {"acc": acc, "loss": {"train": loss}}}}}


def test_show_prints_the_workspace_metrics_of_stages_and_the_top_level_key(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"res.json": '{"auc": 0.75, "n": 3}', "eval": {"a.yaml": "f1: 0.5\n", "b.toml": "x = 1\n",
                                                               "notes.txt": "not metrics"}})
    workspace.write_pipeline(
        {"train": {"cmd": "cp res.json train.json", "deps": ["res.json"],
                   "metrics": [{"train.json": {"cache": False}}]}},
        metrics=["eval"],
    )
    cli.run("repro")

    assert _json(cli, "show") == {"workspace": {"data": {
        "eval/a.yaml": {"data": {"f1": 0.5}},
        "eval/b.toml": {"data": {"x": 1}},
        "train.json": {"data": {"auc": 0.75, "n": 3}},
    }}}
    table = cli.run("metrics", "show", "--csv").stdout
    assert table.splitlines() == ["Path,auc,f1,n,x", "eval/a.yaml,-,0.5,-,-", "eval/b.toml,-,-,-,1",
                                  "train.json,0.75,-,3,-"]


def test_show_all_tags_branches_commits_and_revs(workspace: Workspace, cli: Cli) -> None:
    shas = _history(workspace)

    assert _json(cli, "show", "-T") == {"workspace": _data(0.7, 0.5), "v1": _data(0.5, 1.0)}
    assert _json(cli, "show", "-a") == {"workspace": _data(0.7, 0.5), "exp": _data(0.9, 0.1),
                                        "main": _data(0.7, 0.5)}
    assert _json(cli, "show", "--rev", "exp", "--rev", "v1") == {
        "workspace": _data(0.7, 0.5), "exp": _data(0.9, 0.1), "v1": _data(0.5, 1.0)}
    every = _json(cli, "show", "-A")
    # `pipe init`'s commit has no pipeline.yaml: it has no metrics files, and is listed empty.
    assert {k: v for k, v in every.items() if v != {"data": {}}} == {
        "workspace": _data(0.7, 0.5), **{s[:7]: _data(*v) for s, v in zip(
            shas, [(0.5, 1.0), (0.6, 0.8), (0.9, 0.1), (0.7, 0.5)], strict=True)}}
    md = cli.run("metrics", "show", "-T", "--md").stdout
    assert md.splitlines() == [
        "| Revision  | Path         | acc | loss.train |",
        "|-----------|--------------|-----|------------|",
        "| workspace | metrics.json | 0.7 | 0.5        |",
        "| v1        | metrics.json | 0.5 | 1.0        |",
    ]


def test_show_targets_filter_by_path(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"m": {"a.json": '{"a": 1}', "b.json": '{"b": 2}'}, "other.json": '{"o": 3}'})
    _top_level(workspace, "m", "other.json")

    assert _json(cli, "show", "m/b.json") == {"workspace": {"data": {"m/b.json": {"data": {"b": 2}}}}}
    assert set(_json(cli, "show", "m")["workspace"]["data"]) == {"m/a.json", "m/b.json"}


def test_diff_marks_changed_new_and_removed_metrics(workspace: Workspace, cli: Cli) -> None:
    _top_level(workspace, "metrics.json", "gone.yaml")
    workspace.history([{"metrics.json": '{"acc": 0.5, "loss": 2, "same": 1, "old_only": 7, "tag": "a"}',
                        "gone.yaml": "x: 1\n"}])
    workspace.write({"metrics.json": '{"acc": 0.75, "loss": 1, "same": 1, "new_only": 3, "tag": "b"}'})
    (workspace.root / "gone.yaml").unlink()

    assert _json(cli, "diff") == {
        "gone.yaml": {"x": {"old": 1, "new": None}},
        "metrics.json": {
            "acc": {"old": 0.5, "new": 0.75, "diff": 0.25},
            "loss": {"old": 2, "new": 1, "diff": -1},
            "new_only": {"old": None, "new": 3},
            "old_only": {"old": 7, "new": None},
            "tag": {"old": "a", "new": "b"},
        },
    }
    assert _json(cli, "diff", "--all")["metrics.json"]["same"] == {"old": 1, "new": 1, "diff": 0}
    md = cli.run("metrics", "diff", "--md").stdout.splitlines()
    assert md[0] == "| Path         | Metric   | HEAD | workspace | Change  | Change % |"
    assert "| metrics.json | acc      | 0.5  | 0.75      | 0.25    | +50.00%  |" in md
    assert "| metrics.json | new_only | -    | 3         | added   | -        |" in md
    assert "| gone.yaml    | x        | 1    | -         | deleted | -        |" in md
    assert not any("same" in line for line in md)


def test_diff_between_two_revisions_and_precision(workspace: Workspace, cli: Cli) -> None:
    _top_level(workspace, "m.json")
    workspace.history([{"m.json": '{"auc": 0.123456789}'}, {"m.json": '{"auc": 0.2}'}, {"m.json": '{"auc": 0.9}'}])

    assert _json(cli, "diff", "HEAD~2", "HEAD~1") == {
        "m.json": {"auc": {"old": 0.123456789, "new": 0.2, "diff": 0.2 - 0.123456789}}}
    rows = cli.run("metrics", "diff", "HEAD~2", "HEAD~1", "--csv", "--precision", "3").stdout.splitlines()
    assert rows == ["Path,Metric,HEAD~2,HEAD~1,Change,Change %", "m.json,auc,0.123,0.2,0.077,+62.00%"]
    assert cli.run("metrics", "diff", "HEAD", "HEAD").stdout == ""


def test_cached_metrics_are_read_from_the_cache_at_old_revisions(workspace: Workspace, cli: Cli) -> None:
    # A `metrics:` out is cached by default (as in DVC): git ignores it, the lock records its oid.
    workspace.stage("train", "cp result.json metrics.json", deps=["result.json"], metrics=["metrics.json"])
    workspace.write({"result.json": '{"acc": 0.5}'})
    cli.run("repro")
    workspace.commit("first")
    workspace.git("tag", "v1")
    workspace.write({"result.json": '{"acc": 0.8}'})
    cli.run("repro")
    workspace.commit("second")
    assert "metrics.json" not in workspace.git("ls-files")

    assert _json(cli, "show", "--rev", "v1") == {
        "workspace": {"data": {"metrics.json": {"data": {"acc": 0.8}}}},
        "v1": {"data": {"metrics.json": {"data": {"acc": 0.5}}}},
    }
    assert _json(cli, "diff", "v1") == {"metrics.json": {"acc": {"old": 0.5, "new": 0.8, "diff": 0.8 - 0.5}}}

    old_oid = _lock_at(workspace, "v1")["stages"]["train"]["outs"][0]["oid"]
    (workspace.root / ".pipe" / "cache" / "objects" / old_oid[:2] / old_oid[2:]).unlink()
    result = cli.run("metrics", "show", "--rev", "v1", exit_code=0)
    assert "'metrics.json' at 'v1'" in result.stderr and "pipe fetch --rev v1" in result.stderr
    assert "acc" in result.stdout  # the workspace's metrics are still shown
    diff = cli.run("metrics", "diff", "v1", exit_code=0)
    assert "pipe fetch --rev v1" in diff.stderr and "Traceback" not in diff.stderr


def _lock_at(workspace: Workspace, rev: str) -> Any:
    import yaml

    return yaml.safe_load(workspace.git("show", f"{rev}:pipeline.lock"))


def test_dvc_get_started_layout_is_shown_and_diffed(workspace: Workspace, cli: Cli) -> None:
    # example-get-started: `evaluate` writes the whole eval/ directory (dvclive), a cached out;
    # the top-level `metrics:` key names eval/metrics.json inside it.
    workspace.write({"src": {"evaluate.sh": "mkdir -p eval/plots && cp scores.json eval/metrics.json "
                                            "&& echo '[]' > eval/plots/roc.json\n"},
                     "scores.json": '{"avg_prec": {"train": 0.9, "test": 0.8}, "roc_auc": {"train": 0.95, "test": 0.9}}'})
    workspace.write_pipeline(
        {"evaluate": {"cmd": "sh src/evaluate.sh", "deps": ["src/evaluate.sh", "scores.json"], "outs": ["eval"]}},
        metrics=["eval/metrics.json"],
    )
    cli.run("repro")
    workspace.commit("baseline")
    workspace.write({"scores.json": '{"avg_prec": {"train": 0.9, "test": 0.85}, "roc_auc": {"train": 0.95, "test": 0.9}}'})
    cli.run("repro")

    shown = _json(cli, "show", "--rev", "HEAD")
    assert shown["HEAD"] == {"data": {"eval/metrics.json": {"data": {
        "avg_prec": {"train": 0.9, "test": 0.8}, "roc_auc": {"train": 0.95, "test": 0.9}}}}}
    assert _json(cli, "diff") == {"eval/metrics.json": {"avg_prec.test": {"old": 0.8, "new": 0.85,
                                                                          "diff": 0.85 - 0.8}}}


def test_a_metrics_directory_that_is_a_cached_out_is_listed_from_its_manifest(workspace: Workspace,
                                                                              cli: Cli) -> None:
    workspace.write({"src.json": '{"a": 1}'})
    workspace.write_pipeline({"eval": {"cmd": "mkdir -p eval/sub && cp src.json eval/sub/m.json && echo x > eval/log.txt",
                                       "deps": ["src.json"], "outs": ["eval"]}}, metrics=["eval"])
    cli.run("repro")
    workspace.commit("first")
    workspace.write({"src.json": '{"a": 2}'})
    cli.run("repro")

    assert _json(cli, "show", "--rev", "HEAD") == {
        "workspace": {"data": {"eval/sub/m.json": {"data": {"a": 2}}}},
        "HEAD": {"data": {"eval/sub/m.json": {"data": {"a": 1}}}},
    }
    assert _json(cli, "show", "--rev", "HEAD", "eval/sub")["HEAD"] == {"data": {"eval/sub/m.json": {"data": {"a": 1}}}}


def test_a_metrics_link_leading_outside_the_project_is_refused(workspace: Workspace, cli: Cli,
                                                               tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": 1}')
    (workspace.root / "m.json").symlink_to(secret)
    _top_level(workspace, "m.json")

    result = cli.run("metrics", "show", "--json", exit_code=0)
    assert "password" not in result.stdout and "m.json" in result.stderr


def test_hostile_metrics_files_are_refused_with_the_file_named(workspace: Workspace, cli: Cli) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
    )
    workspace.write({"bomb.yaml": bomb, "deep.json": "[" * 10_000 + "]" * 10_000, "ok.json": '{"fine": 1}'})
    _top_level(workspace, "bomb.yaml", "deep.json", "ok.json")

    result = cli.run("metrics", "show", exit_code=0)
    assert "bomb.yaml" in result.stderr and "deep.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert "fine" in result.stdout
    shown = _json(cli, "show", exit_code=0)["workspace"]["data"]
    assert shown["ok.json"] == {"data": {"fine": 1}}
    assert shown["bomb.yaml"]["error"]["type"] == "SpecError"
    assert shown["deep.json"]["error"]["type"] == "SpecError"


def test_a_file_broken_on_one_side_is_reported_not_diffed(workspace: Workspace, cli: Cli) -> None:
    _top_level(workspace, "a.json", "b.json")
    workspace.history([{"a.json": '{"x": 1}', "b.json": '{"y": 1}'}])
    workspace.write({"a.json": '{"x": 2}', "b.json": '{"y": [unclosed'})

    result = cli.run("metrics", "diff", "--json", exit_code=0)
    assert json.loads(result.stdout) == {"a.json": {"x": {"old": 1, "new": 2, "diff": 1}}}
    assert "b.json" in result.stderr


def test_json_output_does_not_import_pandas(workspace: Workspace) -> None:
    import subprocess
    import sys

    _top_level(workspace, "m.json")
    workspace.history([{"m.json": '{"a": 1}'}])
    code = ("import sys\nfrom pipeline_engine.cli import cli\n"
            "cli.main(['metrics', 'show', '-A', '--json'], prog_name='pipe', standalone_mode=False)\n"
            "cli.main(['metrics', 'diff', '--json'], prog_name='pipe', standalone_mode=False)\n"
            "print('PANDAS' if 'pandas' in sys.modules else 'NO-PANDAS')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=workspace.root, capture_output=True, text=True, check=True)
    assert proc.stdout.rstrip().endswith("NO-PANDAS")


def test_no_metrics_is_a_message_not_an_error(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("metrics", "show")
    assert result.stdout == "" and "no metrics found" in result.stderr
    assert _json(cli, "show") == {"workspace": {"data": {}}}


def test_no_path_and_one_output_format(workspace: Workspace, cli: Cli) -> None:
    _top_level(workspace, "m.json")
    workspace.history([{"m.json": '{"a": 1}'}])
    workspace.write({"m.json": '{"a": 2}'})

    assert cli.run("metrics", "diff", "--csv", "--no-path").stdout.splitlines() == [
        "Metric,HEAD,workspace,Change,Change %", "a,1,2,1,+100.00%"]
    assert "choose one of" in cli.run("metrics", "diff", "--json", "--md", exit_code=2).stderr


def test_unknown_revision_is_an_error_naming_it(workspace: Workspace, cli: Cli) -> None:
    assert "unknown revision 'nope'" in cli.run("metrics", "diff", "nope", exit_code=1).stderr
