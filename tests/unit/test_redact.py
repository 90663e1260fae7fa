"""core.redact: what counts as a credential, and that masking never lets one through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline_engine.core.redact import has_credentials, is_secret_name, mask_text, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("s3://KEY:SECRET@bucket/p", "s3://***@bucket/p"),
        ("s3://KEY:SEC/RET@bucket/p", "s3://***@bucket/p"),  # an unencoded '/' in an AWS secret
        ("https://user:pw@host/p", "https://***@host/p"),
        ("https://ghp_TOKEN@github.com/o/r", "https://***@github.com/o/r"),
        ("ssh://me:pw@host:22/srv", "ssh://me:***@host:22/srv"),
        ("ssh://me@host/srv", "ssh://me@host/srv"),
        ("ssh://host:22/srv/a@b", "ssh://host:22/srv/a@b"),
        ("gs://bucket/user@x/y", "gs://bucket/user@x/y"),
        ("https://h/p?X-Amz-Signature=abc&X-Amz-Date=1", "https://h/p?X-Amz-Signature=***&X-Amz-Date=1"),
        ("https://h/p?X-Amz-Credential=AK%2F1&X-Amz-Security-Token=T", "https://h/p?X-Amz-Credential=***&X-Amz-Security-Token=***"),
        ("az://c/p?sv=2022&sig=ZZ%2F", "az://c/p?sv=2022&sig=***"),
        ("https://h/p?access_token=a;key=b;page=2", "https://h/p?access_token=***;key=***;page=2"),
        ("https://h/cb#access_token=a&state=s", "https://h/cb#access_token=***&state=s"),
        ("s3://bucket/p", "s3://bucket/p"),
        ("/plain/path", "/plain/path"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert has_credentials(url) == (masked != url)


@pytest.mark.parametrize(
    "name", ["access_key_id", "secret_access_key", "session_token", "password", "account_key", "sas_token",
             "client_secret", "passphrase", "connection_string", "API-Key"],
)
def test_credential_option_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["keyfile", "key_file", "credentialpath", "ssh_key_path", "endpoint_url", "region", "profile",
             "jobs", "signature_version", "user"],
)
def test_not_credential_option_names(name: str) -> None:
    assert not is_secret_name(name)


def test_mask_text_masks_every_url_in_a_message() -> None:
    text = "remote 'r' (s3://K:S1@b/p): cannot get 'https://h/o?sig=S2': see https://docs.example/x"
    assert mask_text(text) == "remote 'r' (s3://***@b/p): cannot get 'https://h/o?sig=***': see https://docs.example/x"


_part = st.text(alphabet=st.characters(blacklist_characters="@/?#:*\n\r\t '\"<>()[]{}", blacklist_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=20)


@given(scheme=st.sampled_from(["s3", "https", "ssh", "az", "webdav"]), user=_part, password=_part, host=_part)
def test_a_password_never_survives_masking(scheme: str, user: str, password: str, host: str) -> None:
    url = f"{scheme}://{user}:{password}@{host}/path"
    shown = mask_text(f"error: {url} failed")
    assert f":{password}@" not in shown and "***" in shown
    assert has_credentials(url)


@pytest.mark.parametrize("url", [
    "https://h/p?pwd=hunter2", "https://h/p?pass=hunter2", "https://h/p?jwt=hunter2", "https://h/p?bearer=hunter2",
    "https://h/p?authorization=hunter2", "https://h/p?session=hunter2", "https://h/p?ticket=hunter2",
    "https://h/p?hmac=hunter2", "https://h/p;token=hunter2", "https://h/p;jsessionid=hunter2",
    "me:hunter2@host:/p",
])
def test_more_credential_spellings_are_masked_and_count_as_credentials(url: str) -> None:
    """Red-team findings: these went into the committed config and were printed in clear."""
    assert "hunter2" not in mask_url(url) and has_credentials(url)


@pytest.mark.parametrize("url", ["git@github.com:org/repo", "https://h/a;b/c", "ssh://me@host/p", "/data/remote"])
def test_plain_locations_are_left_alone(url: str) -> None:
    assert mask_url(url) == url and not has_credentials(url)
