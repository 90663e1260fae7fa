"""pipe remote add | modify | list | remove | default: config edits, and secrets that never leak."""

from __future__ import annotations

import pytest
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
    assert "'profile'" in result.stderr and ".pipe/config.yaml" in result.stderr
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
    assert "pipe remote add -d" in result.stderr  # the hint
    assert workspace.snapshot() == before


# --- credentials: refused in the committed config by every writer, masked in every output ---

TOKEN = "ghp_0123456789abcdefTOKENVALUE"
CREDENTIAL_URLS = [
    pytest.param(f"s3://AKIAEXAMPLE:{SECRET}@bucket/p", id="s3-userinfo"),
    pytest.param(f"s3://AKIAEXAMPLE:{SECRET}/with/slash@bucket/p", id="s3-userinfo-unencoded-slash"),
    pytest.param(f"https://me:{SECRET}@host.example/data", id="https-user-password"),
    pytest.param(f"https://{TOKEN}@host.example/data", id="https-token-as-user"),
    pytest.param(f"https://host.example/data?token={TOKEN}&v=1", id="query-token"),
    pytest.param(f"https://host.example/d?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature={SECRET}", id="presigned"),
    pytest.param(f"azure://container/p?sv=2022&sig={SECRET}", id="sas-sig"),
]
SECRET_PARTS = (SECRET, TOKEN, "AKIAEXAMPLE")


def _leaks(text: str) -> list[str]:
    return [s for s in SECRET_PARTS if s in text]


@pytest.mark.parametrize("url", CREDENTIAL_URLS)
def test_credential_urls_are_refused_in_the_committed_config_and_masked_everywhere(
    workspace: Workspace, cli: Cli, url: str
) -> None:
    before = workspace.snapshot()
    refused = cli.run("remote", "add", "r", url, exit_code=1)
    assert "contains a password or token" in refused.stderr and "--local" in refused.stderr
    assert not _leaks(refused.output), refused.output
    assert workspace.snapshot() == before

    added = cli.run("remote", "add", "--local", "-d", "r", url)
    assert "***" in added.stderr and not _leaks(added.output), added.output
    local_text = (workspace.root / ".pipe" / "config.local.yaml").read_text()
    assert SECRET in local_text or TOKEN in local_text
    assert not _leaks((workspace.root / ".pipe" / "config.yaml").read_text())
    listed = cli.run("remote", "list").stdout
    as_json = cli.run("remote", "list", "--json").stdout
    assert listed.startswith("r ") and "***" in listed and "***" in as_json
    assert not _leaks(listed) and not _leaks(as_json), (listed, as_json)


def test_modify_url_refuses_credentials_in_the_committed_config(workspace: Workspace, cli: Cli) -> None:
    # The reproduction: `remote add` refused this URL but `remote modify ... url` wrote it.
    cli.run("remote", "add", "s", "s3://b/p")
    before = workspace.snapshot()
    result = cli.run("remote", "modify", "s", "url", f"s3://KEY:{SECRET}@b/p", exit_code=1)
    assert "contains a password or token" in result.stderr
    assert "pipe remote modify --local s url" in result.stderr
    assert SECRET not in result.output
    assert workspace.snapshot() == before
    cli.run("remote", "modify", "--local", "s", "url", f"s3://KEY:{SECRET}@b/p")
    assert SECRET not in (workspace.root / ".pipe" / "config.yaml").read_text()
    assert "s3://***@b/p" in cli.run("remote", "list").stdout


@pytest.mark.parametrize(
    "option", ["access_key_id", "secret_access_key", "session_token", "account_key", "sas_token", "password"]
)
def test_every_credential_option_is_refused_outside_local(workspace: Workspace, cli: Cli, option: str) -> None:
    url = {"account_key": "az://c/p", "sas_token": "az://c/p", "password": "ssh://me@host/srv"}.get(option, "s3://b/p")
    cli.run("remote", "add", "r", url)
    before = workspace.snapshot()
    result = cli.run("remote", "modify", "r", option, SECRET, exit_code=1)
    assert f"'{option}' is a credential" in result.stderr and SECRET not in result.output
    assert workspace.snapshot() == before
    cli.run("remote", "modify", "--local", "r", option, SECRET)
    listed = cli.run("remote", "list").stdout + cli.run("remote", "list", "--json").stdout
    assert f"{option}=***" in listed and SECRET not in listed


def test_a_key_file_path_is_not_a_secret(workspace: Workspace, cli: Cli) -> None:
    # A path to a key file is not a credential: the key stays in its file, outside git.
    cli.run("remote", "add", "box", "ssh://me@host/srv")
    cli.run("remote", "modify", "box", "keyfile", "~/.ssh/id_ed25519")
    assert _config(workspace)["remotes"]["box"]["keyfile"] == "~/.ssh/id_ed25519"
    assert "keyfile=~/.ssh/id_ed25519" in cli.run("remote", "list").stdout


def test_a_secret_already_in_the_committed_config_is_masked_and_blocks_other_writes(
    workspace: Workspace, cli: Cli
) -> None:
    # Written by an older pipe or by hand: shown masked; any write of the committed file refuses
    # to carry it on, naming the remote; fixing the URL is the write that goes through.
    (workspace.root / ".pipe" / "config.yaml").write_text(
        f"schema: 1\nremotes:\n  s:\n    url: s3://KEY:{SECRET}@b/p\n    secret_access_key: {SECRET}\n"
        "  t:\n    url: /tmp/t\n"
    )
    listed = cli.run("remote", "list").stdout + cli.run("remote", "list", "--json").stdout
    assert SECRET not in listed and "s3://***@b/p" in listed and "secret_access_key=***" in listed
    before = workspace.snapshot()
    for args in (["remote", "default", "t"], ["remote", "add", "u", "/tmp/u"], ["remote", "modify", "t", "jobs", "2"]):
        result = cli.run(*args, exit_code=1)
        assert "remote 's'" in result.stderr and "--local" in result.stderr, result.stderr
        assert SECRET not in result.output
        assert workspace.snapshot() == before
    cli.run("remote", "modify", "s", "url", "s3://b/p", exit_code=1)  # the option still holds one
    cli.run("remote", "modify", "--unset", "s", "secret_access_key", exit_code=1)  # so does the URL
    assert workspace.snapshot() == before
    cli.run("remote", "remove", "s")
    assert SECRET not in (workspace.root / ".pipe" / "config.yaml").read_text()
    cli.run("remote", "default", "t")


def test_verbose_tracebacks_and_messages_mask_urls(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline_engine.cli import render
    from pipeline_engine.errors import RemoteError

    try:
        try:
            raise OSError(f"cannot reach https://me:{SECRET}@host/p?X-Amz-Signature={TOKEN}")
        except OSError as exc:
            raise RemoteError(f"remote 'r' (s3://KEY:{SECRET}@b/p): failed", hint=f"s3://k:{SECRET}@b") from exc
    except RemoteError as exc:
        render.error(exc, verbose=True)
    err = capsys.readouterr().err
    assert "Traceback" in err and "OSError" in err and "s3://***@b/p" in err
    assert SECRET not in err and TOKEN not in err, err


def test_an_option_url_with_credentials_is_a_credential(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "store", "s3://bucket/p")
    before = workspace.snapshot()
    result = cli.run("remote", "modify", "store", "endpoint_url", f"http://minio:{SECRET}@127.0.0.1:9000", exit_code=1)
    assert "'endpoint_url' is a credential" in result.stderr and SECRET not in result.output
    assert workspace.snapshot() == before
    cli.run("remote", "modify", "--local", "store", "endpoint_url", f"http://minio:{SECRET}@127.0.0.1:9000")
    listed = cli.run("remote", "list").stdout
    assert "endpoint_url=http://***@127.0.0.1:9000" in listed and SECRET not in listed


def test_a_failing_push_with_v_masks_the_url_in_messages_and_traceback(workspace: Workspace, cli: Cli) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace.write({"f.csv": "1\n"})
    cli.run("add", "f.csv")
    cli.run("remote", "add", "--local", "-d", "web", f"https://me:{SECRET}@127.0.0.1:{port}/p?token={TOKEN}")
    result = cli.run("-v", "push", exit_code=1)
    assert "Traceback" in result.stderr and f"https://***@127.0.0.1:{port}/p?token=***" in result.stderr
    assert not _leaks(result.output), result.output
