"""`pipe config` names an unknown section, and the known ones, as every other command does (DVC's
config schema refuses extra sections): `--list` of a file holding one, and `SECTION.KEY` of one."""

from __future__ import annotations

from tests.conftest import Cli, Workspace


def test_list_refuses_a_committed_config_with_an_unknown_section(workspace: Workspace, cli: Cli) -> None:
    config = workspace.root / ".pipe" / "config.yaml"
    config.write_text(config.read_text() + "bogus:\n  x: 1\ncore:\n  jobs: 2\n")

    result = cli.run("config", "--list", exit_code=1)

    assert ".pipe/config.yaml" in result.stderr and "unknown section 'bogus'" in result.stderr
    assert "cache, core, executor, parsing, remotes" in result.stderr and result.stdout == ""
    assert "unknown section 'bogus'" in cli.run("status", exit_code=1).stderr  # as every other command
    assert cli.run("config", "--local", "--list").stdout == ""  # a level without it still lists
    config.write_text(config.read_text().replace("bogus:\n  x: 1\n", ""))
    assert "core.jobs=2" in cli.run("config", "--list").stdout


def test_a_key_in_an_unknown_section_names_the_section_and_the_known_ones(workspace: Workspace, cli: Cli) -> None:
    before = (workspace.root / ".pipe" / "config.yaml").read_text()
    for args in (("nosuch.key",), ("nosuch.key", "1"), ("--unset", "nosuch.key"), ("cor.remote", "x")):
        result = cli.run("config", *args, exit_code=1)
        key = args[0] if not args[0].startswith("-") else args[1]
        assert f"unknown config key '{key}': no section '{key.split('.')[0]}'" in result.stderr, args
        assert "known sections: cache, core, executor, parsing, remote" in result.stderr
    assert "did you mean 'core'" in cli.run("config", "cor.remote", exit_code=1).stderr
    assert (workspace.root / ".pipe" / "config.yaml").read_text() == before
