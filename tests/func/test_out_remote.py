"""A stage out's own `remote:` (DVC's per-output remote): push, fetch and pull use it for that out."""

from __future__ import annotations

from pathlib import Path

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.remote.open import open_remote
from tests.conftest import Cli, Workspace

MODEL = "weights " * 100
FEATURES = "a,b\n1,2\n"


def _setup(workspace: Workspace, cli: Cli, tmp_path: Path, *, default: bool = True) -> tuple[Path, Path]:
    main = workspace.add_remote(tmp_path / "main-store", "main", default=default)
    models = workspace.add_remote(tmp_path / "models-store", "models", default=False)
    workspace.write_pipeline({"train": {
        "cmd": f"printf '{MODEL}' > model.pkl; printf 'a,b\\n1,2\\n' > features.csv; echo ran >> ran.log",
        "outs": [{"model.pkl": {"remote": "models"}}, "features.csv"],
    }})
    cli.run("repro")
    return main, models


def _has(store: Path, content: str) -> bool:
    """The object is on the directory remote `store`, loose or packed."""
    return open_remote("check", str(store), {}, base_dir=store).exists(hash_bytes(content.encode()))


def test_push_sends_an_out_to_its_own_remote_and_the_rest_to_the_default(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    main, models = _setup(workspace, cli, tmp_path)
    result = cli.run("push")
    assert _has(models, MODEL) and not _has(main, MODEL)
    assert _has(main, FEATURES) and not _has(models, FEATURES)
    assert "push to 'main'" in result.stderr and "push to 'models'" in result.stderr


def test_pull_and_fetch_take_an_out_from_its_own_remote(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    _setup(workspace, cli, tmp_path)
    cli.run("push")
    workspace.commit("pipeline and remotes")
    clone = workspace.clone()
    cli.run("fetch")
    assert not (clone.root / "model.pkl").exists()
    cli.run("pull")
    assert clone.read("model.pkl") == MODEL and clone.read("features.csv") == FEATURES


def test_explicit_remote_skips_outs_that_belong_to_another(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    main, models = _setup(workspace, cli, tmp_path)
    cli.run("push", "-r", "main")
    assert _has(main, FEATURES) and not _has(main, MODEL) and not _has(models, MODEL)
    cli.run("push", "-r", "models")
    assert _has(models, MODEL) and _has(models, FEATURES)


def test_outs_that_all_name_a_remote_need_no_default(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    models = tmp_path / "models-store"
    workspace.add_remote(models, "models", default=False)
    workspace.write_pipeline({"train": {"cmd": f"printf '{MODEL}' > model.pkl", "outs": [{"model.pkl": {"remote": "models"}}]}})
    cli.run("repro")
    cli.run("push")
    assert _has(models, MODEL)


def test_an_out_naming_an_unknown_remote_is_an_error_naming_the_out(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    workspace.add_remote(tmp_path / "main-store", "main")
    workspace.write_pipeline({"train": {"cmd": "echo m > model.pkl", "outs": [{"model.pkl": {"remote": "nope"}}]}})
    cli.run("repro")
    result = cli.run("push", exit_code=1)
    assert "model.pkl" in result.stderr and "'nope'" in result.stderr and "Traceback" not in result.stderr


def test_status_cloud_compares_an_out_with_its_own_remote(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    _setup(workspace, cli, tmp_path)
    before = cli.run("status", "-c").stdout
    assert "model.pkl" in before and "remote 'models'" in before, before
    cli.run("push")
    result = cli.run("status", "-c")
    assert result.stdout == "" and "in sync with remotes 'main', 'models'" in result.stderr, result.stderr


def test_repro_pull_restores_an_out_from_its_own_remote(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    _setup(workspace, cli, tmp_path)
    cli.run("push")
    workspace.commit("pipeline and remotes")
    clone = workspace.clone()
    cli.run("repro", "--pull")
    assert clone.read("model.pkl") == MODEL and clone.read("features.csv") == FEATURES
    assert clone.read("ran.log") == "ran\n", "the stage ran instead of being restored"
