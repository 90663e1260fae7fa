"""Secret masking: the one place that decides what is a credential and how it is shown (`***`).

Used for every output that may carry a remote's URL or options (`pipe remote list`, error
messages, `-v` tracebacks, `pipe doctor`) and to refuse credentials in the committed config.

A URL's user-info is masked whole (`s3://KEY:SECRET@b` -> `s3://***@b`, `https://TOKEN@host`
-> `https://***@host`), except on login schemes (ssh, sftp, ftp) where the user name is an
account name and only the password is masked. Query and fragment parameters whose name looks
like a credential (`token`, `sig`, `X-Amz-Signature`, ...) keep their name and lose their value.
An option is a credential when its name contains secret, password, passphrase, token, key or
credential, unless the name says it is a path to a file (`keyfile`, `key_file`, `credentialpath`):
a path to a key file is not a secret (the file itself stays outside git).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["MASK", "has_credentials", "is_secret_name", "mask_text", "mask_url"]

MASK = "***"

_SECRET_WORDS = ("secret", "password", "passwd", "passphrase", "token", "key", "credential", "connection_string")
_PATH_SUFFIXES = ("file", "path", "dir", "filename")
# Query parameters that carry a credential without one of the words above in their name
# (Azure SAS `sig`, OAuth `code`); any parameter ending in `signature` is one too.
_SECRET_QUERY_NAMES = frozenset({
    "sig", "sas", "auth", "code", "pwd", "pass", "pw", "passcode", "jwt", "bearer", "authorization",
    "session", "sid", "jsessionid", "ticket", "hmac", "apikey",
})
# scp-style `user:password@host:path` (no scheme): the password is masked as in a URL.
_SCP_USERINFO_RE = re.compile(r"^([^/@:\s]+):([^@/\s]+)@([^:/\s]+:)")
# Schemes whose user name is a login, worth showing; elsewhere the user part is an access key or token.
_LOGIN_SCHEMES = frozenset({"ssh", "sftp", "scp", "ftp", "ftps", "git+ssh", "ssh+git"})
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{}]+")
# `user:pa/ss@host` with an unencoded slash in the password: not a valid authority, but masked
# anyway (AWS secret keys often hold a `/`). A port (`host:22/path@x`) is not taken for one.
_LOOSE_USERINFO_RE = re.compile(r"([^/:@?#]+):(?!\d+(?:[/?#]|$))([^@?#]*/[^@?#]*)@")


def is_secret_name(name: str) -> bool:
    """True when an option called `name` holds a credential (`secret_access_key`, not `keyfile`)."""
    lowered = name.lower().replace("-", "_")
    if not any(word in lowered for word in _SECRET_WORDS):
        return False
    return not lowered.endswith(_PATH_SUFFIXES)


def mask_url(url: str) -> str:
    """`url` with its user-info and credential-like query parameters replaced by `***`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _SCP_USERINFO_RE.sub(lambda m: f"{m.group(1)}:{MASK}@{m.group(3)}", url)
    rest = _mask_userinfo(scheme.lower(), rest)
    body, hash_, fragment = rest.partition("#")
    body, qmark, query = body.partition("?")
    path, semi, matrix = body.partition(";")  # path parameters: `/p;token=...;jsessionid=...`
    if semi:
        body = f"{path};{_mask_params(matrix)}"
    if qmark:
        body = f"{body}?{_mask_params(query)}"
    if hash_:
        body = f"{body}#{_mask_params(fragment)}"
    return f"{scheme}://{body}"


def has_credentials(url: str) -> bool:
    """True when `url` carries a password, a token user-info or a credential query parameter."""
    return mask_url(url) != url


def mask_text(text: str) -> str:
    """`text` (a message, a traceback) with every URL in it masked by `mask_url`."""
    return _URL_RE.sub(lambda m: mask_url(m.group(0)), text)


def _mask_userinfo(scheme: str, rest: str) -> str:
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if at:
        after = host + rest[end:]
    else:
        loose = _LOOSE_USERINFO_RE.match(rest)
        if loose is None:
            return rest
        userinfo, after = rest[: loose.end() - 1], rest[loose.end():]
    user, colon, _ = userinfo.partition(":")
    if scheme in _LOGIN_SCHEMES:
        return f"{user}:{MASK}@{after}" if colon else rest
    return f"{MASK}@{after}"


def _mask_params(params: str) -> str:
    parts = re.split(r"([&;])", params)
    for i in range(0, len(parts), 2):
        name, eq, _ = parts[i].partition("=")
        if eq and _is_secret_param(name):
            parts[i] = f"{name}={MASK}"
    return "".join(parts)


def _is_secret_param(name: str) -> bool:
    lowered = unquote(name).lower().replace("-", "_")
    return lowered in _SECRET_QUERY_NAMES or lowered.endswith("signature") or is_secret_name(lowered)
