"""pipe remote add | modify | list | remove | default: config edits, and secrets that never leak."""

from __future__ import annotations

import yaml

from tests.conftest import Cli, Workspace

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-SECRET"


def _config(workspace: Workspace, name: str = "config.yaml") -> dict:
    path = workspace.root / ".pipe" / name
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def test_add_with_default_writes_url_and_core_remote(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "-d", "store", "s3://bucket/project")
    config = _config(workspace)
    assert config["remotes"] == {"store": {"url": "s3://bucket/project"}}
    assert config["core"]["remote"] == "store"
    listed = cli.run("remote", "list").stdout
    assert "store" in listed and "s3://bucket/project" in listed and "(default)" in listed


def test_add_refuses_an_existing_name_without_force(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "store", "/tmp/one")
    before = workspace.snapshot()
    result = cli.run("remote", "add", "store", "/tmp/two", exit_code=1)
    assert "remote 'store' already exists" in result.stderr and "-f" in result.stderr
    assert workspace.snapshot() == before
    cli.run("remote", "add", "-f", "store", "/tmp/two")
    assert _config(workspace)["remotes"]["store"]["url"] == "/tmp/two"


def test_add_refuses_a_bad_name(workspace: Workspace, cli: Cli) -> None:
    before = workspace.snapshot()
    result = cli.run("remote", "add", "my store", "/tmp/x", exit_code=1)
    assert "remote name 'my store'" in result.stderr
    assert workspace.snapshot() == before


def test_add_refuses_a_password_in_a_committed_url(workspace: Workspace, cli: Cli) -> None:
    before = workspace.snapshot()
    result = cli.run("remote", "add", "box", f"ssh://me:{SECRET}@host/srv", exit_code=1)
    assert "contains a password" in result.stderr
    assert SECRET not in result.output
    assert workspace.snapshot() == before


def test_modify_sets_a_backend_option(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "store", "s3://bucket/p")
    cli.run("remote", "modify", "store", "endpoint_url", "http://127.0.0.1:9000")
    cli.run("remote", "modify", "store", "jobs", "8")
    assert _config(workspace)["remotes"]["store"] == {
        "url": "s3://bucket/p",
        "endpoint_url": "http://127.0.0.1:9000",
        "jobs": 8,
    }


def test_modify_refuses_credentials_outside_local_config(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "store", "s3://bucket/p")
    before = workspace.snapshot()
    result = cli.run("remote", "modify", "store", "secret_access_key", SECRET, exit_code=1)
    assert "'secret_access_key' is a credential" in result.stderr
    assert "--local" in result.stderr
    assert SECRET not in result.output
    assert workspace.snapshot() == before


def test_secrets_go_to_the_git_ignored_local_config_and_are_never_shown(
    workspace: Workspace, cli: Cli
) -> None:
    cli.run("remote", "add", "-d", "store", "s3://bucket/p")
    outputs = [
        cli.run("remote", "modify", "--local", "store", "access_key_id", "AKIAEXAMPLEKEYID").output,
        cli.run("remote", "modify", "--local", "store", "secret_access_key", SECRET).output,
        cli.run("remote", "list").output,
        cli.run("remote", "list", "--json").output,
    ]
    assert all(SECRET not in o and "AKIAEXAMPLEKEYID" not in o for o in outputs)
    assert "secret_access_key=***" in outputs[2]
    assert _config(workspace, "config.local.yaml")["remotes"]["store"]["secret_access_key"] == SECRET
    assert SECRET not in (workspace.root / ".pipe" / "config.yaml").read_text()
    workspace.commit("remote")
    assert SECRET not in workspace.git("show", "HEAD:.pipe/config.yaml")
    assert "config.local.yaml" not in workspace.git("ls-files", ".pipe")


def test_modify_refuses_an_unknown_option(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "store", "s3://bucket/p")
    before = workspace.snapshot()
    result = cli.run("remote", "modify", "store", "endpoint", "http://x", exit_code=1)
    assert "unknown option 'endpoint'" in result.stderr and "endpoint_url" in result.stderr
    assert workspace.snapshot() == before


def test_modify_refuses_a_bad_value_type(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "store", "/tmp/x")
    before = workspace.snapshot()
    result = cli.run("remote", "modify", "store", "jobs", "many", exit_code=1)
    assert "'jobs' must be a int" in result.stderr
    assert workspace.snapshot() == before


def test_modify_of_an_unknown_remote_names_the_configured_ones(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "store", "/tmp/x")
    before = workspace.snapshot()
    result = cli.run("remote", "modify", "nope", "jobs", "2", exit_code=1)
    assert "no remote named 'nope' (configured: store)" in result.stderr
    assert workspace.snapshot() == before


def test_modify_unset_removes_the_option(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "store", "s3://bucket/p")
    cli.run("remote", "modify", "--local", "store", "profile", "dev")
    cli.run("remote", "modify", "--local", "--unset", "store", "profile")
    assert "remotes" not in _config(workspace, "config.local.yaml")
    before = workspace.snapshot()
    result = cli.run("remote", "modify", "--unset", "store", "profile", exit_code=1)
    assert "has no option 'profile' in .pipe/config.yaml" in result.stderr
    assert workspace.snapshot() == before


def test_remove_drops_the_remote_from_both_files_and_the_default(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "-d", "store", "s3://bucket/p")
    cli.run("remote", "modify", "--local", "store", "secret_access_key", SECRET)
    cli.run("remote", "remove", "store")
    assert "remotes" not in _config(workspace) and "core" not in _config(workspace)
    assert "remotes" not in _config(workspace, "config.local.yaml")
    before = workspace.snapshot()
    result = cli.run("remote", "remove", "store", exit_code=1)
    assert "no remote named 'store'" in result.stderr
    assert workspace.snapshot() == before


def test_default_shows_sets_and_unsets(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "a", "/tmp/a")
    cli.run("remote", "add", "b", "/tmp/b")
    assert "no default remote" in cli.run("remote", "default").stderr
    cli.run("remote", "default", "b")
    assert cli.run("remote", "default").stdout.strip() == "b"
    cli.run("remote", "default", "--unset")
    assert "core" not in _config(workspace)
    before = workspace.snapshot()
    result = cli.run("remote", "default", "c", exit_code=1)
    assert "no remote named 'c'" in result.stderr
    assert workspace.snapshot() == before


def test_push_without_any_remote_says_how_to_add_one(workspace: Workspace, cli: Cli) -> None:
    before = workspace.snapshot()
    result = cli.run("push", exit_code=1)
    assert "no remote given and no default remote set" in result.stderr
    assert "pipe remote add -d" in result.stderr
    assert workspace.snapshot() == before
