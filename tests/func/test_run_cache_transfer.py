"""push / pull --run-cache: a teammate restores outputs of runs made elsewhere instead of rerunning."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli, Workspace


def _pipeline(workspace: Workspace, counter: Path) -> None:
    cmd = (
        f"echo run >> {counter} && "
        "python -c \"import yaml;print(yaml.safe_load(open('params.yaml'))['n'] * 10)\" > out.txt"
    )
    workspace.write_pipeline({"make": {"cmd": cmd, "params": ["n"], "outs": ["out.txt"]}})


def test_pull_run_cache_lets_a_clone_restore_instead_of_rerunning(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    counter = tmp_path / "runs.log"
    _pipeline(workspace, counter)
    workspace.write({"params.yaml": "n: 1\n"})
    cli.run("repro")
    workspace.write({"params.yaml": "n: 2\n"})
    cli.run("repro")
    store = workspace.add_remote(tmp_path / "remote-store")
    pushed = cli.run("push", "--run-cache")
    # 2 entries and the n=1 output; the n=2 output went with the plain push
    assert all(s in pushed.stderr for s in ("run cache", "'store'", "3 transferred", "1 already present"))
    assert len(list((store / "runs").glob("??/*"))) == 2
    workspace.commit("n=2")
    assert counter.read_text().count("run") == 2

    clone = workspace.clone()
    clone.write({"params.yaml": "n: 1\n"})  # a run only the first workspace made
    cli.run("pull", "--run-cache")
    result = cli.run("repro")
    assert counter.read_text().count("run") == 2, "the command must not run again"
    assert clone.read("out.txt") == "10\n"
    assert "restored" in result.stderr + result.stdout


def test_fetch_run_cache_skips_invalid_entries(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    _pipeline(workspace, tmp_path / "runs.log")
    workspace.write({"params.yaml": "n: 1\n"})
    cli.run("repro")
    store = workspace.add_remote(tmp_path / "remote-store")
    cli.run("push", "--run-cache")
    bogus = store / "runs" / "ab" / ("c" * 30)
    bogus.parent.mkdir(parents=True, exist_ok=True)
    bogus.write_text(json.dumps({"schema": 1, "outs": [{"path": "../../etc/passwd", "oid": "x", "size": 1}]}))
    result = cli.run("fetch", "--run-cache", exit_code=1)
    assert "not a valid run-cache entry" in result.stderr
    assert not (workspace.root / ".pipe/cache/runs/ab" / ("c" * 30)).exists()
