"""The backend table: URL schemes, DVC-style option names mapped to fsspec kwargs, secrets, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_engine.errors import ConfigError
from pipeline_engine.remote.backend import backend_for, check_option, is_secret, protocol_of, redact_url
from pipeline_engine.remote.open import open_remote


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("s3://b/p", "s3"),
        ("/data/store", "file"),
        ("../store", "file"),
        ("file:///x", "file"),
        ("GS://b", "gs"),
        ("memory://x", "memory"),
    ],
)
def test_protocol_of(url: str, protocol: str) -> None:
    assert protocol_of(url) == protocol


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("ssh://me:hunter2@host:22/srv") == "ssh://me:***@host:22/srv"
    assert redact_url("ssh://me@host/srv") == "ssh://me@host/srv"
    assert redact_url("s3://bucket/p") == "s3://bucket/p"


def test_options_are_converted_and_checked() -> None:
    assert check_option("r", "s3://b", "jobs", "16") == 16
    assert check_option("r", "s3://b", "use_ssl", "false") is False
    with pytest.raises(ConfigError, match="option 'jobs' must be a positive integer"):
        check_option("r", "s3://b", "jobs", 0)
    with pytest.raises(ConfigError, match="unknown option 'endpoint_url' for 'ssh' remotes"):
        check_option("r", "ssh://host/p", "endpoint_url", "x")


def test_credentials_are_marked_secret() -> None:
    assert is_secret("s3://b", "secret_access_key") and is_secret("s3://b", "access_key_id")
    assert is_secret("ssh://h/p", "password") and is_secret("az://c/p", "connection_string")
    assert not is_secret("s3://b", "endpoint_url") and not is_secret("s3://b", "jobs")


def test_unknown_scheme_gets_a_generic_backend_with_common_options() -> None:
    backend = backend_for("weird://thing")
    assert backend.option_names == ("jobs", "pack_size", "pack_threshold")


def test_s3_options_reach_s3fs_under_its_own_names(tmp_path: Path) -> None:
    options = {
        "endpoint_url": "http://127.0.0.1:9",
        "region": "eu-west-1",
        "access_key_id": "AKID",
        "secret_access_key": "SECRET",
        "jobs": 3,
    }
    remote = open_remote("r", "s3://bucket/pre/fix/", options, base_dir=tmp_path)
    assert remote.root == "bucket/pre/fix"
    assert remote.jobs == 3
    assert remote.fs.client_kwargs == {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-1"}
    assert (remote.fs.key, remote.fs.secret) == ("AKID", "SECRET")


def test_relative_local_path_is_taken_from_the_project_root(tmp_path: Path) -> None:
    remote = open_remote("r", "../shared/store", {}, base_dir=tmp_path / "project")
    assert remote.root == str(tmp_path / "shared" / "store")
