"""pipe doctor: versions, backends, cache and link types, remotes masked; inside and outside a project."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

from tests.conftest import Cli, Workspace

SECRET = "wJalrXUtnFEMI-DOCTOR-SECRET"


def test_doctor_reports_versions_cache_link_types_and_masked_remotes(workspace: Workspace, cli: Cli) -> None:
    cli.run("remote", "add", "-d", "store", "s3://bucket/p")
    cli.run("remote", "modify", "--local", "store", "secret_access_key", SECRET)
    cli.run("remote", "add", "--local", "web", f"https://me:{SECRET}@host/p?token={SECRET}")
    before = workspace.snapshot()

    text = cli.run("doctor").stdout
    data = json.loads(cli.run("doctor", "--json").stdout)

    assert SECRET not in text and SECRET not in json.dumps(data)
    assert f"pipe:        {metadata.version('pipeline-engine')}" in text
    assert data["pipe_version"] == metadata.version("pipeline-engine")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in data["python"]
    deps = {d["name"]: d["version"] for d in data["dependencies"]}
    assert deps["click"] == metadata.version("click") and deps["fsspec"] == metadata.version("fsspec")
    backends = {b["package"]["name"]: b["package"]["version"] for b in data["backends"]}
    assert backends["s3fs"] == metadata.version("s3fs")
    assert "gcsfs" in backends and "sshfs" in backends

    project = data["project"]
    assert Path(project["root"]) == workspace.root.resolve()
    assert Path(project["cache_dir"]) == workspace.root.resolve() / ".pipe" / "cache"
    checks = {c["link_type"]: c for c in project["link_checks"]}
    assert set(checks) == {"reflink", "hardlink", "symlink", "copy"}
    # On the one filesystem the tests use, copy, hardlink and symlink always work; reflink may not.
    assert checks["copy"]["works"] and checks["hardlink"]["works"] and checks["symlink"]["works"]
    assert checks["reflink"]["works"] or checks["reflink"]["detail"]
    remotes = {r["name"]: r for r in project["remotes"]}
    assert remotes["store"]["is_default"] and not remotes["web"]["is_default"]
    assert remotes["store"]["options"] == {"secret_access_key": "***"}
    assert remotes["web"]["url"] == "https://***@host/p?token=***"
    assert "hardlink  works" in text and "https://***@host/p?token=***" in text
    # The probes are gone and nothing else changed.
    assert workspace.snapshot() == before
    assert not list((workspace.root / ".pipe").rglob(".pipetmp-*"))


def test_doctor_outside_a_project_prints_what_it_can(bare_dir: Path, cli: Cli) -> None:
    text = cli.run("doctor").stdout
    assert "project:     none" in text and "dependencies:" in text
    data = json.loads(cli.run("doctor", "--json").stdout)
    assert data["project"] is None and data["problems"] == []
    assert list(bare_dir.iterdir()) == []


def test_doctor_with_an_invalid_config_reports_it_and_the_rest(workspace: Workspace, cli: Cli) -> None:
    (workspace.root / ".pipe" / "config.yaml").write_text(
        f"schema: 1\nremotes:\n  s:\n    url: s3://K:{SECRET}@b/p\ncache:\n  bogus: 1\n"
    )
    result = cli.run("doctor")
    assert "problem:" in result.stdout and "bogus" in result.stdout
    assert SECRET not in result.output and "dependencies:" in result.stdout


def test_doctor_does_not_import_the_libraries_it_reports_on(workspace: Workspace) -> None:
    code = textwrap.dedent(
        """
        import sys
        from pipeline_engine.cli import cli
        try:
            cli.main(["doctor"], prog_name="pipe", standalone_mode=False)
        finally:
            heavy = sorted(m for m in sys.modules if m.split('.')[0] in {"pandas", "networkx", "fsspec", "s3fs", "git"})
            print("HEAVY:" + " ".join(heavy))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=workspace.root, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rpartition("HEAVY:")[2].split() == []


def test_doctor_says_when_no_configured_link_type_works(workspace: Workspace, cli: Cli) -> None:
    config = workspace.root / ".pipe" / "config.yaml"
    config.write_text(config.read_text() + "cache:\n  type: reflink\n")
    data = json.loads(cli.run("doctor", "--json").stdout)
    reflink_works = next(c["works"] for c in data["project"]["link_checks"] if c["link_type"] == "reflink")
    if reflink_works:  # btrfs, xfs...: then a configuration that works says nothing
        assert data["problems"] == []
    else:
        assert len(data["problems"]) == 1 and "cache.type (reflink)" in data["problems"][0]
    config.write_text(config.read_text().replace("type: reflink", "type: reflink,copy"))
    assert json.loads(cli.run("doctor", "--json").stdout)["problems"] == []
