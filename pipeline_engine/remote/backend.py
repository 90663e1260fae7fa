"""The table of fsspec backends: URL scheme -> package, extra, and DVC-style option names -> fsspec kwargs.

Pure data, no fsspec import: `pipe remote modify` validates option names against it without paying
for fsspec, and `remote.open` turns a remote's options into backend keyword arguments with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_engine.core.redact import is_secret_name, mask_url
from pipeline_engine.errors import ConfigError

__all__ = [
    "BACKENDS",
    "COMMON_OPTIONS",
    "Backend",
    "Option",
    "backend_for",
    "check_option",
    "is_secret",
    "protocol_of",
    "redact_url",
]


@dataclass(frozen=True, slots=True)
class Option:
    """One remote option: its DVC-style name, where it goes in the fsspec kwargs, its type.

    `listed` options are passed to the backend as a one-item list (sshfs takes `client_keys=[path]`).
    An `int` option is at least `minimum`.
    """

    name: str
    target: tuple[str, ...]
    kind: type = str
    secret: bool = False
    listed: bool = False
    minimum: int = 1


@dataclass(frozen=True, slots=True)
class Backend:
    """How to open one family of URLs.

    `object_store` backends write an object with one PUT, which is atomic: the object appears whole or
    not at all. Other backends write to a temporary name and rename it into place. A `local` backend's
    URL is a path on this machine; a relative one is taken from the project root.
    """

    protocols: tuple[str, ...]
    package: str
    extra: str | None
    object_store: bool
    options: tuple[Option, ...] = ()
    fixed: Mapping[str, Any] | None = None
    errors: tuple[str, ...] = ()
    read_only: bool = False
    local: bool = False

    def option(self, name: str) -> Option | None:
        """The option called `name` (backend-specific or common), or None."""
        for opt in (*self.options, *COMMON_OPTIONS):
            if opt.name == name:
                return opt
        return None

    @property
    def option_names(self) -> tuple[str, ...]:
        """Every option name this backend accepts, sorted."""
        return tuple(sorted(o.name for o in (*self.options, *COMMON_OPTIONS)))


#: Options every remote accepts; they configure pipe itself, not the backend: concurrent transfers,
#: objects smaller than `pack_threshold` bytes go into packs (0: never), packs of about `pack_size` bytes.
COMMON_OPTIONS = (
    Option("jobs", (), int),
    Option("pack_threshold", (), int, minimum=0),
    Option("pack_size", (), int),
)

_S3 = Backend(
    protocols=("s3", "s3a"),
    package="s3fs",
    extra="s3",
    object_store=True,
    options=(
        Option("endpoint_url", ("client_kwargs", "endpoint_url")),
        Option("region", ("client_kwargs", "region_name")),
        Option("profile", ("profile",)),
        Option("access_key_id", ("key",), secret=True),
        Option("secret_access_key", ("secret",), secret=True),
        Option("session_token", ("token",), secret=True),
        Option("use_ssl", ("use_ssl",), bool),
        Option("ssl_verify", ("client_kwargs", "verify"), bool),
        Option("sse", ("s3_additional_kwargs", "ServerSideEncryption")),
        Option("acl", ("s3_additional_kwargs", "ACL")),
    ),
    # Listings must be fresh: another machine may have pushed since the last look.
    fixed={"use_listings_cache": False},
    errors=("botocore.exceptions.BotoCoreError", "botocore.exceptions.ClientError"),
)
_GS = Backend(
    protocols=("gs", "gcs"),
    package="gcsfs",
    extra="gs",
    object_store=True,
    options=(
        Option("projectname", ("project",)),
        Option("credentialpath", ("token",)),
        Option("endpointurl", ("endpoint_url",)),
    ),
    fixed={"use_listings_cache": False},
)
_AZURE = Backend(
    protocols=("az", "azure", "abfs", "abfss"),
    package="adlfs",
    extra="azure",
    object_store=True,
    options=(
        Option("account_name", ("account_name",)),
        Option("account_key", ("account_key",), secret=True),
        Option("connection_string", ("connection_string",), secret=True),
        Option("sas_token", ("sas_token",), secret=True),
        Option("tenant_id", ("tenant_id",)),
        Option("client_id", ("client_id",)),
        Option("client_secret", ("client_secret",), secret=True),
    ),
)
_SSH = Backend(
    protocols=("ssh", "sftp"),
    package="sshfs",
    extra="ssh",
    object_store=False,
    options=(
        Option("user", ("username",)),
        Option("port", ("port",), int),
        Option("password", ("password",), secret=True),
        Option("keyfile", ("client_keys",), listed=True),
        Option("passphrase", ("passphrase",), secret=True),
    ),
)
_HTTP = Backend(
    protocols=("http", "https"), package="aiohttp", extra=None, object_store=True, read_only=True,
    errors=("aiohttp.ClientError",),  # a refused request (403, 500) is the remote's error, not a bug
)
_WEBDAV = Backend(
    protocols=("webdav", "webdavs", "dav", "davs"), package="webdav4", extra=None, object_store=True
)
_LOCAL = Backend(protocols=("file", "local"), package="fsspec", extra=None, object_store=False, local=True)
_MEMORY = Backend(protocols=("memory",), package="fsspec", extra=None, object_store=True)

BACKENDS: tuple[Backend, ...] = (_S3, _GS, _AZURE, _SSH, _HTTP, _WEBDAV, _LOCAL, _MEMORY)
# Any other scheme goes to whatever fsspec backend the user installed, with only the common options.
_GENERIC_OBJECT_STORE = Backend(protocols=(), package="fsspec", extra=None, object_store=True)


def protocol_of(url: str) -> str:
    """The URL's scheme; a plain path is `file`."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep and scheme.isidentifier() else "file"


def backend_for(url: str) -> Backend:
    """The backend entry for `url` (a generic one for schemes not in the table)."""
    protocol = protocol_of(url)
    for backend in BACKENDS:
        if protocol in backend.protocols:
            return backend
    return _GENERIC_OBJECT_STORE


def check_option(remote: str, url: str, name: str, value: Any) -> Any:
    """Validate one option of `remote` and return its value converted to the option's type.

    Raises:
        ConfigError: the backend has no such option, or the value has the wrong type.
    """
    backend = backend_for(url)
    opt = backend.option(name)
    if opt is None:
        raise ConfigError(
            f"remote '{remote}': unknown option '{name}' for '{protocol_of(url)}' remotes "
            f"(known: {', '.join(backend.option_names)})"
        )
    return _convert(remote, opt, value)


def is_secret(url: str, name: str) -> bool:
    """True when option `name` of a remote at `url` holds a credential (by the table or by its name)."""
    opt = backend_for(url).option(name)
    return (opt is not None and opt.secret) or is_secret_name(name)


def _convert(remote: str, opt: Option, value: Any) -> Any:
    if opt.kind is bool and isinstance(value, str):
        lowered = value.lower()
        if lowered in {"true", "yes", "1"}:
            return True
        if lowered in {"false", "no", "0"}:
            return False
    elif opt.kind is int and isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, opt.kind) or (opt.kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"remote '{remote}': option '{opt.name}' must be a {opt.kind.__name__}, not {value!r}"
        )
    if isinstance(value, int) and not isinstance(value, bool) and value < opt.minimum:
        kind = "a positive integer" if opt.minimum == 1 else f"an integer of at least {opt.minimum}"
        raise ConfigError(f"remote '{remote}': option '{opt.name}' must be {kind}")
    return value


def redact_url(url: str) -> str:
    """`url` with its credentials (user-info, token-like query parameters) masked, safe to print."""
    return mask_url(url)
