"""`pipe config`: git-like levels (system < global < project < local), schema checks, secrets, masking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Cli, Workspace

SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCY"


@pytest.fixture(autouse=True)
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The global and system config directories, in temp dirs (as the docs tell users they can)."""
    dirs = {"global": tmp_path / "user-config", "system": tmp_path / "system-config"}
    monkeypatch.setenv("PIPE_GLOBAL_CONFIG_DIR", str(dirs["global"]))
    monkeypatch.setenv("PIPE_SYSTEM_CONFIG_DIR", str(dirs["system"]))
    return dirs


def _file(workspace: Workspace, name: str) -> dict:
    path = workspace.root / ".pipe" / name
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def test_set_writes_the_project_file_by_default_and_get_reads_it_back(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("config", "core.jobs", "4")
    assert "set 'core.jobs' in .pipe/config.yaml" in result.stderr
    assert _file(workspace, "config.yaml")["core"]["jobs"] == 4  # an integer, not the string "4"
    assert cli.run("config", "core.jobs").stdout == "4\n"
    assert workspace.project().config.jobs == 4
    cli.run("config", "core.no_scm", "no")
    assert _file(workspace, "config.yaml")["core"]["no_scm"] is False
    cli.run("config", "cache.type", "hardlink, copy")
    assert workspace.project().config.cache_types == ("hardlink", "copy")
    assert cli.run("config", "cache.type").stdout == "hardlink,copy\n"


def test_each_level_overrides_the_ones_below(workspace: Workspace, cli: Cli, user_dirs: dict[str, Path]) -> None:
    expected_origin = {
        "system": str(user_dirs["system"] / "config.yaml"),
        "global": str(user_dirs["global"] / "config.yaml"),
        "project": ".pipe/config.yaml",
        "local": ".pipe/config.local.yaml",
    }
    for jobs, level in enumerate(("system", "global", "project", "local"), start=1):
        cli.run("config", f"--{level}", "core.jobs", str(jobs))
        shown = cli.run("config", "--show-origin", "core.jobs").stdout
        assert shown == f"{expected_origin[level]}\t{jobs}\n", f"after setting {level}"
        assert workspace.project().config.jobs == jobs, f"after setting {level}"
    # A level given explicitly reads that level only, even where a higher one overrides it.
    assert cli.run("config", "--global", "core.jobs").stdout == "2\n"
    assert cli.run("config", "--system", "--show-origin", "core.jobs").stdout == f"{expected_origin['system']}\t1\n"
    # Unsetting the higher levels uncovers the lower ones again.
    for level, below in (("local", 3), ("project", 2), ("global", 1)):
        result = cli.run("config", f"--{level}", "--unset", "core.jobs")
        assert f"unset 'core.jobs' in {expected_origin[level]}" in result.stderr
        assert cli.run("config", "core.jobs").stdout == f"{below}\n"
        assert workspace.project().config.jobs == below
    assert yaml.safe_load((user_dirs["global"] / "config.yaml").read_text()) == {"schema": 1}


def test_a_global_remote_serves_every_project_and_project_and_local_override_it(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    cli.run("config", "--global", "remote.shared.url", str(tmp_path / "global-store"))
    cli.run("config", "--global", "core.remote", "shared")
    assert "shared" in cli.run("remote", "list").stdout
    workspace.write({"data.txt": "hello\n"})
    cli.run("add", "data.txt")
    cli.run("push")
    assert any((tmp_path / "global-store").rglob("*")), "push went to the remote from the global config"
    # The project's own default wins over the global one, and the local file over both.
    cli.run("remote", "add", "team", str(tmp_path / "team-store"))
    cli.run("config", "core.remote", "team")
    assert workspace.project().config.default_remote == "team"
    cli.run("config", "--local", "core.remote", "shared")
    assert cli.run("config", "--show-origin", "core.remote").stdout == ".pipe/config.local.yaml\tshared\n"
    assert workspace.project().config.default_remote == "shared"


def test_relative_paths_in_the_global_file_are_from_its_directory(
    workspace: Workspace, cli: Cli, user_dirs: dict[str, Path]
) -> None:
    cli.run("config", "--global", "cache.dir", "shared-cache")
    assert workspace.project().cache_dir == user_dirs["global"] / "shared-cache"
    workspace.write({"data.txt": "hello\n"})
    cli.run("add", "data.txt")
    assert any((user_dirs["global"] / "shared-cache" / "objects").rglob("*")), "the object went to the global cache"
    cli.run("config", "--global", "remote.mine.url", "store")
    assert workspace.project().config.remotes["mine"].url == str(user_dirs["global"] / "store")
    assert cli.run("config", "remote.mine.url").stdout == f"{user_dirs['global'] / 'store'}\n"


def test_global_and_system_levels_work_outside_a_project(bare_dir: Path, cli: Cli, user_dirs: dict[str, Path]) -> None:
    cli.run("config", "--system", "core.jobs", "3")
    cli.run("config", "--global", "remote.s.url", "s3://bucket/p")
    cli.run("config", "--global", "core.remote", "s")
    assert cli.run("config", "core.jobs").stdout == "3\n"
    listed = cli.run("config", "--list", "--show-origin").stdout.splitlines()
    assert listed == [
        f"{user_dirs['system'] / 'config.yaml'}\tcore.jobs=3",
        f"{user_dirs['global'] / 'config.yaml'}\tcore.remote=s",
        f"{user_dirs['global'] / 'config.yaml'}\tremote.s.url=s3://bucket/p",
    ]
    for level in ("--local", "--project"):
        result = cli.run("config", level, "core.jobs", "2", exit_code=1)
        assert "not inside one" in result.stderr and "--global" in result.stderr
    result = cli.run("config", "core.jobs", "2", exit_code=1)  # the default level is the project's
    assert "project config" in result.stderr
    assert not (bare_dir / ".pipe").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG location is Linux's (platformdirs elsewhere)")
def test_default_global_file_is_in_the_users_config_dir(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PIPE_GLOBAL_CONFIG_DIR")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cli.run("config", "--global", "core.jobs", "5")
    path = tmp_path / "home" / ".config" / "pipe" / "config.yaml"
    assert yaml.safe_load(path.read_text())["core"]["jobs"] == 5
    assert cli.run("config", "--show-origin", "core.jobs").stdout == f"{path}\t5\n"


def test_list_shows_each_level_in_order_with_secrets_masked(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "-d", "store", "s3://bucket/project")
    cli.run("config", "remote.store.region", "eu-west-1")
    cli.run("config", "--local", "remote.store.secret_access_key", SECRET)
    cli.run("config", "--local", "remote.store.endpoint_url", f"https://user:{SECRET}@minio.internal")
    cli.run("config", "--global", "core.jobs", "2")
    listed = cli.run("config", "--list").stdout
    assert listed.splitlines() == [
        "core.jobs=2",
        "core.remote=store",
        "remote.store.region=eu-west-1",
        "remote.store.url=s3://bucket/project",
        "remote.store.endpoint_url=https://***@minio.internal",
        "remote.store.secret_access_key=***",
    ]
    with_origin = cli.run("config", "-l", "--show-origin").stdout.splitlines()
    assert with_origin[-1] == ".pipe/config.local.yaml\tremote.store.secret_access_key=***"
    assert with_origin[1] == ".pipe/config.yaml\tcore.remote=store"
    assert cli.run("config", "--local", "--list").stdout.splitlines() == listed.splitlines()[-2:]
    shown = cli.run("config", "remote.store.secret_access_key").stdout
    assert shown == "***\n"
    for args in (
        ("config", "-l"), ("config", "-l", "--show-origin"), ("config", "remote.store.endpoint_url"),
        ("remote", "list"),
    ):
        result = cli.run(*args)
        assert SECRET not in result.stdout + result.stderr, args
    assert _file(workspace, "config.local.yaml")["remotes"]["store"]["secret_access_key"] == SECRET


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("remote.store.secret_access_key", SECRET),
        ("remote.store.url", f"s3://AKIA:{SECRET}@bucket/p"),
        ("remote.store.endpoint_url", f"https://user:{SECRET}@minio.internal"),
        ("remote.other.url", f"https://host/p?token={SECRET}"),
    ],
)
def test_a_credential_is_refused_in_the_project_file(workspace: Workspace, cli: Cli, key: str, value: str) -> None:
    cli.run("remote", "add", "store", "s3://bucket/project")
    before = workspace.read(".pipe/config.yaml")
    result = cli.run("config", key, value, exit_code=1)
    assert SECRET not in result.stderr
    assert "would be committed in .pipe/config.yaml" in result.stderr
    assert f"'pipe config --local {key} VALUE'" in result.stderr
    assert workspace.read(".pipe/config.yaml") == before
    cli.run("config", "--local", key, value)  # the hint's command works
    cli.run("config", "--global", key, value)  # the user's own file is outside git too
    assert SECRET not in workspace.read(".pipe/config.yaml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("core.remot", "x"), "unknown config key 'core.remot' (did you mean 'core.remote'?)"),
        (("cache.typ", "copy"), "(did you mean 'cache.type'?)"),
        (("core.bogus", "1"), "known: cache.dir, cache.jobs, cache.type, core.jobs, core.no_scm, core.remote"),
        (("stages.x", "1"), "unknown config key 'stages.x'"),
        (("remote.store", "x"), "a remote's key is remote.NAME.OPTION"),
        (("cache.type", "hardlinks"), "'cache.type' must be a comma-separated list of reflink, hardlink, symlink, copy"),
        (("cache.type", ""), "'cache.type' must be"),
        (("core.jobs", "0"), "'core.jobs' must be an integer from 1 to 1024, not '0'"),
        (("core.jobs", "many"), "'core.jobs' must be an integer"),
        (("core.no_scm", "maybe"), "'core.no_scm' must be true or false, not 'maybe'"),
        (("core.remote", "stor"), "no remote named 'stor' (did you mean 'store'?)"),
        (("remote.store.regoin", "eu"), "unknown option 'regoin' for 's3' remotes"),
        (("remote.store.jobs", "lots"), "option 'jobs' must be a int"),
        (("remote.nowhere.region", "eu"), "no remote named 'nowhere' with a URL"),
        (("remote.bad name.url", "/tmp/x"), "remote name 'bad name' must be letters"),
        (("remote.store.url", "a\nb"), "'url' must be a non-empty string without control characters"),
    ],
)
def test_invalid_keys_and_values_are_refused_and_nothing_is_written(
    workspace: Workspace, cli: Cli, args: tuple[str, ...], message: str
) -> None:
    cli.run("remote", "add", "store", "s3://bucket/project")
    before = workspace.snapshot()
    result = cli.run("config", *args, exit_code=1)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert workspace.snapshot() == before


def test_get_and_unset_of_a_key_that_is_not_set(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("config", "core.remote", exit_code=1)
    assert "'core.remote' is not set in any config level" in result.stderr
    assert cli.run("config", "core.remote", exit_code=1).stdout == ""
    cli.run("config", "--local", "core.jobs", "2")
    result = cli.run("config", "--unset", "core.jobs", exit_code=1)
    assert "'core.jobs' is not set in .pipe/config.yaml" in result.stderr
    assert "'pipe config --local --unset core.jobs'" in result.stderr
    result = cli.run("config", "--project", "core.jobs", exit_code=1)
    assert "'core.jobs' is not set in .pipe/config.yaml" in result.stderr
    assert ".pipe/config.local.yaml" in result.stderr and "'pipe config --local core.jobs'" in result.stderr
    cli.run("config", "--local", "--unset", "core.jobs")  # the hint's command works
    assert "core" not in _file(workspace, "config.local.yaml")


def test_unset_of_a_remote_url_that_would_orphan_its_options_is_refused(workspace: Workspace, cli: Cli) -> None:
    cli.run("config", "remote.store.url", "s3://bucket/p")
    cli.run("config", "remote.store.region", "eu-west-1")
    result = cli.run("config", "--unset", "remote.store.url", exit_code=1)
    assert "pipe remote remove store" in result.stderr
    cli.run("config", "--unset", "remote.store.region")
    cli.run("config", "--unset", "remote.store.url")  # the last setting: the remote goes away
    assert "remotes" not in _file(workspace, "config.yaml")
    assert cli.run("config", "--list").stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("--list", "core.jobs"),
        ("--list", "--unset"),
        ("--show-origin", "core.jobs", "3"),
        ("--show-origin", "--unset", "core.jobs"),
        ("--unset", "core.jobs", "3"),
        ("--local", "--global", "core.jobs"),
        (),
    ],
)
def test_conflicting_flags_are_usage_errors(workspace: Workspace, cli: Cli, args: tuple[str, ...]) -> None:
    before = workspace.snapshot()
    result = cli.run("config", *args, exit_code=2)
    assert "Usage:" in result.stderr
    assert workspace.snapshot() == before


@pytest.mark.parametrize(
    ("level", "label"),
    [("local", ".pipe/config.local.yaml"), ("project", ".pipe/config.yaml"), ("global", None)],
)
@pytest.mark.parametrize(
    ("content", "message", "repair"),
    [
        ("cache:\n  type: hardlinks\n", "'cache.type' must be a comma-separated list", "cache.type"),
        ("core:\n  jobs: -1\n", "'core.jobs' must be an integer from 1 to 1024, not -1", "core.jobs"),
        ("core:\n  remot: x\n", "unknown key 'core.remot' (did you mean 'core.remote'?)", "core.remot"),
        ("remotes:\n  s:\n    region: eu\n", "remote 's' has no 'url'", "remote.s.region"),
        ("cache: [1\n", "", None),
    ],
)
def test_an_error_in_a_config_file_names_that_file_and_pipe_config_repairs_it(
    workspace: Workspace, cli: Cli, user_dirs: dict[str, Path], level: str, label: str | None, content: str,
    message: str, repair: str | None,
) -> None:
    if level == "global":
        path = user_dirs["global"] / "config.yaml"
        path.parent.mkdir()
        label = str(path)
    else:
        path = workspace.root / ".pipe" / ("config.local.yaml" if level == "local" else "config.yaml")
    path.write_text(f"schema: 1\n{content}")
    result = cli.run("status", exit_code=1)
    assert result.stderr.startswith(f"error: {label}"), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if level != "local":
        assert "config.local.yaml" not in result.stderr
    if repair is None:  # not YAML: pipe config cannot read it either, and says which file to fix
        result = cli.run("config", "--list", exit_code=1)
        assert result.stderr.startswith(f"error: {label}") and f"fix or remove {label}" in result.stderr
        return
    # Like DVC's config command, pipe config reads the files unchecked: it shows the wrong value...
    assert f"{repair}=" in cli.run("config", "--list").stdout
    # ...and can remove it, after which every command works again.
    cli.run("config", f"--{level}", "--unset", repair)
    cli.run("status")


def test_setting_a_key_repairs_its_wrong_value_but_not_another_one(workspace: Workspace, cli: Cli) -> None:
    (workspace.root / ".pipe" / "config.yaml").write_text("schema: 1\ncore:\n  jobs: lots\n")
    result = cli.run("config", "core.no_scm", "false", exit_code=1)  # the file would still be invalid
    assert all(s in result.stderr for s in (".pipe/config.yaml", "'core.jobs'", "1024", "'lots'"))
    assert "no_scm" not in workspace.read(".pipe/config.yaml")
    cli.run("config", "core.jobs", "2")
    assert workspace.project().config.jobs == 2
    cli.run("config", "core.no_scm", "false")
    cli.run("status")


def test_a_config_directory_that_cannot_be_written_is_an_error_naming_the_file(
    bare_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (bare_dir / "not-a-dir").write_text("")
    monkeypatch.setenv("PIPE_SYSTEM_CONFIG_DIR", str(bare_dir / "not-a-dir" / "pipe"))
    result = cli.run("config", "--system", "core.jobs", "2", exit_code=1)
    assert f"cannot write {bare_dir / 'not-a-dir' / 'pipe' / 'config.yaml'}" in result.stderr
    assert "use '--global'" in result.stderr
    assert "Traceback" not in result.stderr


def test_concurrent_writes_to_the_global_file_all_survive(bare_dir: Path, user_dirs: dict[str, Path]) -> None:
    """`pipe config --global` takes the config lock beside the file: no read-modify-write is lost."""
    names = [f"r{i}" for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipeline_engine", "config", "--global", f"remote.{n}.url", f"/data/{n}"],
            cwd=bare_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in names
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    written = yaml.safe_load((user_dirs["global"] / "config.yaml").read_text())
    assert written["remotes"] == {n: {"url": f"/data/{n}"} for n in names}
    assert sorted(p.name for p in user_dirs["global"].iterdir()) == ["config.lock", "config.yaml"]  # no temp left


def test_remote_remove_of_a_global_remote_says_where_it_is_instead_of_claiming_success(
    workspace: Workspace, cli: Cli
) -> None:
    cli.run("config", "--global", "remote.gr.url", "/tmp/somewhere")
    result = cli.run("remote", "remove", "gr", exit_code=1)
    assert "global or system config" in result.output and "--global --unset remote.gr.url" in result.output
    cli.run("config", "--global", "--unset", "remote.gr.url")
    assert "gr" not in cli.run("remote", "list").output
