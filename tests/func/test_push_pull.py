"""pipe push | fetch | pull against a local-directory remote and the moto S3 server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import oid_to_relpath
from tests.conftest import Cli, Workspace
from tests.s3server import S3Server, s3_bucket_fixture, s3_server_fixture  # noqa: F401 - fixtures

IMAGES = {f"{i:03}.txt": f"image {i}\n" * (i + 1) for i in range(40)}
SECRET = "moto-accepts-any-secret-0123456789"


DATA = {"data/images": IMAGES, "data/model.bin": b"\x00\x01" * 500}


def _image_oid(name: str) -> str:
    return hash_bytes(IMAGES[name].encode())


def test_push_then_pull_into_a_fresh_clone_gives_identical_bytes(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    workspace.track(DATA)
    result = cli.run("push")
    assert "42 transferred" in result.stderr and "0 failed" in result.stderr
    workspace.commit("data and remote")
    clone = workspace.clone()
    assert not (clone.root / "data/images").exists()
    result = cli.run("pull")
    assert "42 transferred" in result.stderr
    for name, text in IMAGES.items():
        assert clone.read(f"data/images/{name}") == text
    assert (clone.root / "data/model.bin").read_bytes() == b"\x00\x01" * 500
    assert "up to date" in cli.run("status").stderr


def test_second_push_transfers_nothing(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    workspace.track(DATA)
    cli.run("push")
    result = cli.run("push")
    assert "0 transferred" in result.stderr and "42 already present" in result.stderr


def test_rerun_push_uploads_only_what_is_missing(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    cli.run("remote", "modify", "store", "pack_threshold", "0")  # loose: the test damages object files
    workspace.track(DATA)
    store = local_remote
    cli.run("push")
    # As if the first push had been interrupted: two files and so their manifest never arrived.
    manifest = next(store.glob("??/*.dir"))
    for path in (manifest, *(store / oid_to_relpath(_image_oid(n)) for n in ("001.txt", "002.txt"))):
        os.unlink(path)
    result = cli.run("push")
    assert "3 transferred" in result.stderr and "39 already present" in result.stderr


def test_push_of_targets_sends_only_their_objects(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    workspace.track(DATA)
    store = local_remote
    result = cli.run("push", "data/model.bin")
    assert "1 transferred" in result.stderr
    assert len([p for p in store.rglob("*") if p.is_file()]) == 1


def test_corrupt_cache_object_is_not_pushed_and_its_manifest_waits(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    workspace.track(DATA)
    store = local_remote
    cache_obj = workspace.project().store.path_of(_image_oid("007.txt"))
    os.chmod(cache_obj, 0o644)
    cache_obj.write_text("damaged")
    result = cli.run("push", exit_code=1)
    assert "data/images/007.txt" in result.stderr and _image_oid("007.txt") in result.stderr
    assert "corrupt in the cache" in result.stderr
    assert "2 object(s) failed (40 transferred" in result.stderr
    pushed = {p.parent.name + p.name for p in store.rglob("*") if p.is_file()}
    assert _image_oid("007.txt") not in pushed
    assert not any(oid.endswith(".dir") for oid in pushed), "a manifest whose files are missing was pushed"


def test_corrupt_remote_object_is_reported_and_the_rest_still_pulled(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    cli.run("remote", "modify", "store", "pack_threshold", "0")  # loose: the test damages object files
    workspace.track(DATA)
    store = local_remote
    cli.run("push")
    bad = _image_oid("003.txt")
    (store / oid_to_relpath(bad)).write_text("bit rot")
    workspace.commit("data and remote")
    clone = workspace.clone()
    result = cli.run("pull", exit_code=1)
    assert f"data/images/003.txt ({bad})" in result.stderr and "corrupt on remote 'store'" in result.stderr
    assert "1 object(s) failed (41 transferred" in result.stderr
    assert (clone.root / "data/model.bin").read_bytes() == b"\x00\x01" * 500
    project = clone.project()
    assert not project.store.exists(bad)
    assert sum(1 for _ in project.store.iter_oids()) == 41
    leftovers = [p for p in project.store.root.rglob("*") if p.is_file() and ".pipetmp" in p.name]
    assert not leftovers, "a refused download was left behind"


def test_missing_remote_object_is_reported_by_path_and_id(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    cli.run("remote", "modify", "store", "pack_threshold", "0")  # loose: the test damages object files
    workspace.track(DATA)
    store = local_remote
    cli.run("push")
    gone = _image_oid("010.txt")
    os.unlink(store / oid_to_relpath(gone))
    workspace.commit("data and remote")
    clone = workspace.clone()
    result = cli.run("fetch", exit_code=1)
    assert f"data/images/010.txt ({gone})" in result.stderr and "is not on remote 'store'" in result.stderr
    assert not (clone.root / "data/images").exists(), "fetch must not touch the workspace"
    assert sum(1 for _ in clone.project().store.iter_oids()) == 41


def test_pull_allow_missing_skips_what_the_remote_lacks_but_not_a_corrupt_object(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    # DVC's `pull --allow-missing` (CI pulls of a project whose remote lacks some outs): a warning, exit 0
    cli.run("remote", "modify", "store", "pack_threshold", "0")  # loose: the test damages object files
    workspace.track({"data/model.bin": b"\x00\x01" * 500, "data/notes.txt": "not pushed\n"})
    cli.run("push", "data/model.bin")
    workspace.commit("data and remote")
    clone = workspace.clone()
    assert "is not on remote 'store'" in cli.run("pull", exit_code=1).stderr
    result = cli.run("pull", "--allow-missing")
    assert "skipped 'data/notes.txt'" in result.stderr
    assert (clone.root / "data/model.bin").read_bytes() == b"\x00\x01" * 500
    assert not (clone.root / "data/notes.txt").exists()
    cli.run("checkout", exit_code=1)
    assert "skipped 'data/notes.txt'" in cli.run("checkout", "--allow-missing").stderr
    (clone.root / "data/model.bin").unlink()
    clone.project().store.path_of(hash_bytes(b"\x00\x01" * 500)).unlink()
    (local_remote / oid_to_relpath(hash_bytes(b"\x00\x01" * 500))).write_bytes(b"bit rot")
    assert "corrupt on remote 'store'" in cli.run("pull", "--allow-missing", exit_code=1).stderr


def test_missing_backend_names_the_extra_to_install(workspace: Workspace, cli: Cli) -> None:
    workspace.track(DATA)
    cli.run("remote", "add", "-d", "gcs", "gs://bucket/project")
    before = workspace.snapshot()
    result = cli.run("push", exit_code=1)
    assert "the 'gs' backend is not installed" in result.stderr
    assert "pip install 'pipeline-engine[gs]'" in result.stderr
    assert workspace.snapshot() == before


def test_unknown_remote_name_is_an_error(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    workspace.track(DATA)
    result = cli.run("fetch", "-r", "elsewhere", exit_code=1)
    assert "'elsewhere'" in result.stderr and "configured: store" in result.stderr


@pytest.mark.s3
def test_s3_push_and_pull_with_credentials_from_local_config(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server, s3_bucket: str
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    workspace.track(DATA)
    outputs = [
        cli.run("remote", "add", "-d", "s3", f"s3://{s3_bucket}/project").output,
        cli.run("remote", "modify", "--local", "s3", "endpoint_url", s3_server.endpoint_url).output,
        cli.run("remote", "modify", "--local", "s3", "access_key_id", "AKIDLOCALONLY").output,
        cli.run("remote", "modify", "--local", "s3", "secret_access_key", SECRET).output,
        cli.run("push").output,
        cli.run("push", "-j", "2").output,
        cli.run("remote", "list").output,
    ]
    assert "42 transferred" in outputs[4] and "42 already present" in outputs[5]
    assert all(SECRET not in o and "AKIDLOCALONLY" not in o for o in outputs)
    committed = yaml.safe_load((workspace.root / ".pipe/config.yaml").read_text())
    assert committed["remotes"]["s3"] == {"url": f"s3://{s3_bucket}/project"}
    listing = s3_server.client().list_objects_v2(Bucket=s3_bucket)  # type: ignore[attr-defined]
    keys = {o["Key"] for o in listing["Contents"]}
    # The 41 small files went into one pack (uploaded before its index); the manifest, sent alone, is loose.
    assert len([k for k in keys if k.startswith("project/packs/")]) == 2 and len(keys) == 3
    local_config = (workspace.root / ".pipe/config.local.yaml").read_text()
    workspace.commit("data and remote")
    clone = workspace.clone()
    (clone.root / ".pipe/config.local.yaml").write_text(local_config)  # the teammate's own credentials
    cli.run("pull")
    assert clone.read("data/images/039.txt") == IMAGES["039.txt"]


@pytest.mark.s3
def test_s3_missing_bucket_fails_fast_naming_the_remote_and_no_secret_shown(
    workspace: Workspace, cli: Cli, s3_server: S3Server, s3_bucket: str
) -> None:
    workspace.track(DATA)
    cli.run("remote", "add", "-d", "s3", "s3://no-such-bucket-here/p")
    cli.run("remote", "modify", "--local", "s3", "endpoint_url", s3_server.endpoint_url)
    cli.run("remote", "modify", "--local", "s3", "access_key_id", "AKIDLOCALONLY")
    cli.run("remote", "modify", "--local", "s3", "secret_access_key", SECRET)
    result = cli.run("push", exit_code=1)
    assert "remote 's3' (s3://no-such-bucket-here/p)" in result.stderr
    assert "bucket does not exist" in result.stderr and "stopped after" in result.stderr
    assert SECRET not in result.output


def test_push_skips_stage_outs_declared_push_false(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    workspace.write({"data.txt": "rows\n"})
    workspace.write_pipeline(
        {
            "make": {
                "cmd": "cp data.txt shared.txt && cp data.txt scratch.txt && echo more >> scratch.txt",
                "deps": ["data.txt"],
                "outs": ["shared.txt", {"scratch.txt": {"push": False}}],
            }
        }
    )
    cli.run("repro")
    store = local_remote
    result = cli.run("push")
    assert "1 transferred" in result.stderr
    assert {p.parent.name + p.name for p in store.glob("??/*")} == {hash_bytes(b"rows\n")}


def test_a_path_inside_a_tracked_directory_is_a_target_of_push_fetch_and_pull(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    workspace.track(DATA)
    store = local_remote
    cli.run("push", "data/images/003.txt")
    assert (store / oid_to_relpath(_image_oid("003.txt"))).is_file()
    assert not (store / oid_to_relpath(_image_oid("004.txt"))).exists()
    cli.run("push")
    workspace.commit("data and remote")
    clone = workspace.clone()
    cli.run("pull", "data/images/007.txt")  # the manifest is fetched for it, then only that file
    assert clone.read("data/images/007.txt") == IMAGES["007.txt"]
    assert sorted(p.name for p in (clone.root / "data/images").iterdir()) == ["007.txt"]
    cli.run("fetch", "data/images/008.txt")
    assert (clone.root / ".pipe/cache/objects" / oid_to_relpath(_image_oid("008.txt"))).is_file()
    assert not (clone.root / ".pipe/cache/objects" / oid_to_relpath(_image_oid("009.txt"))).exists()


def test_the_pipeline_file_as_a_target_selects_every_stage(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    # DVC's `dvc push dvc.yaml` / `dvc pull dvc.yaml`: the outs of every stage of the file, not pointer data
    workspace.write({"foo": "foo\n"})
    workspace.write_pipeline({"s": {"cmd": "cp foo bar", "deps": ["foo"], "outs": ["bar"]}})
    workspace.track({"x.csv": "x\n"})
    cli.run("repro")
    assert "1 transferred" in cli.run("push", "pipeline.yaml").stderr
    workspace.commit("stage and data")
    clone = workspace.clone()
    cli.run("pull", "pipeline.yaml")
    assert clone.read("bar") == "foo\n" and not (clone.root / "x.csv").exists()
    assert cli.run("status", "pipeline.yaml").stderr.startswith("up to date")
