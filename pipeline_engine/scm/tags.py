"""GTO's registry tags: their names, parsing them, and reading and creating annotated tags.

An artifact registry lives in git tags named as GTO (iterative/gto) names them, so GTO, DVC Studio
and their users read what pipe writes and the other way round:

    NAME@vX.Y.Z          register version vX.Y.Z of NAME at the tagged commit
    NAME@vX.Y.Z!         deregister that version
    NAME#STAGE#N         assign STAGE to the version at the tagged commit (N: the artifact's event counter)
    NAME#STAGE!#N        unassign STAGE
    NAME@deprecated      deprecate the whole artifact

These are GTO's default (api) forms; GTO also reads the other forms (`NAME@vX.Y.Z!#N`,
`NAME#STAGE`, `NAME@deprecated#N`), and so does `parse_tag`.

Only annotated tags count (GTO ignores lightweight ones); their creation time orders the events.
Names and stages are checked against GTO's patterns before any tag is made, so a name can never
carry a second '@', '#' or '!' into a tag, nor anything git would read as an option.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline_engine.errors import ScmError, SpecError

__all__ = [
    "NAME_RE", "SEMVER_RE", "RegistryTag", "check_name", "check_version", "create_tag",
    "parse_tag", "read_tags", "remote_tags", "resolve_commit", "tag_name",
]

_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9\-/_]*[a-zA-Z0-9])?"
_SEMVER = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
#: GTO's artifact and stage names (gto/constants.py `name`).
NAME_RE = re.compile(f"^{_NAME}$")
#: A version as GTO writes it: 'v' and a semantic version.
SEMVER_RE = re.compile(f"^v{_SEMVER}$")
_TAG_RE = re.compile(
    f"^(?P<artifact>{_NAME})"
    f"(((#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))(?P<cancel>!?))|@(?P<deprecated>deprecated))"
    r"(#(?P<counter>[0-9]+))?$"
)
_MAX_TAGS = 100_000


@dataclass(frozen=True, slots=True)
class RegistryTag:
    """One registry event read from an annotated tag.

    `action` is one of register, deregister, assign, unassign, deprecate; `rev` the tagged commit;
    `created` the tag's creation time (seconds since the epoch); `counter` GTO's `#N`, if any.
    """

    tag: str
    artifact: str
    action: str
    rev: str
    created: int
    version: str | None = None
    stage: str | None = None
    counter: int | None = None
    message: str = ""


def check_name(value: str, what: str) -> str:
    """`value` when it is a valid GTO artifact or stage name.

    Raises:
        SpecError: it is not (names `what`); this also refuses every tag-injection attempt.
    """
    if not isinstance(value, str) or not NAME_RE.match(value) or len(value) > 200:
        raise SpecError(
            f"invalid {what} {value!r:.80}",
            hint="use letters, digits, '-', '_' and '/', starting and ending with a letter or digit",
        )
    return value


def check_version(value: str) -> str:
    """`value` as GTO writes it ('1.2.3' becomes 'v1.2.3').

    Raises:
        SpecError: it is not a semantic version.
    """
    version = value if value.startswith("v") else f"v{value}"
    if not SEMVER_RE.match(version):
        raise SpecError(f"invalid version {value!r:.80}: not a semantic version", hint="use vMAJOR.MINOR.PATCH, e.g. v1.0.0")
    return version


def tag_name(artifact: str, action: str, *, version: str | None = None, stage: str | None = None,
             counter: int | None = None) -> str:
    """The tag GTO names for an event (see the module docstring); inputs are checked first.

    Raises:
        SpecError: an invalid name, stage or version, or an unknown action.
    """
    check_name(artifact, "artifact name")
    suffix = "" if counter is None else f"#{counter}"
    if action in ("register", "deregister"):
        v = check_version(version or "")
        return f"{artifact}@{v}" + ("!" if action == "deregister" else "") + suffix
    if action in ("assign", "unassign"):
        s = check_name(stage or "", "stage name")
        return f"{artifact}#{s}" + ("!" if action == "unassign" else "") + suffix
    if action == "deprecate":
        return f"{artifact}@deprecated{suffix}"
    raise SpecError(f"unknown registry action {action!r}")


def parse_tag(name: str) -> dict[str, str | int] | None:
    """A tag name's parts (artifact, action, version, stage, counter), or None for a tag GTO would not read."""
    m = _TAG_RE.match(name)
    if m is None:
        return None
    out: dict[str, str | int] = {"artifact": m["artifact"]}
    if m["deprecated"]:
        out["action"] = "deprecate"
    elif m["version"]:
        out["version"] = m["version"]
        out["action"] = "deregister" if m["cancel"] else "register"
    else:
        out["stage"] = m["stage"]
        out["action"] = "unassign" if m["cancel"] else "assign"
    if m["counter"]:
        out["counter"] = int(m["counter"])
    return out


def read_tags(root: Path) -> list[RegistryTag]:
    """Every annotated registry tag of the repository at `root`, oldest first (ties by name).

    Raises:
        ScmError: git fails (not a repository).
    """
    fmt = "%(refname:strip=2)%00%(objecttype)%00%(*objectname)%00%(creatordate:unix)%00%(contents:subject)"
    out = _git(root, "for-each-ref", f"--count={_MAX_TAGS}", f"--format={fmt}", "refs/tags")
    tags: list[RegistryTag] = []
    for line in out.splitlines():
        parts = line.split("\0")
        if len(parts) != 5 or parts[1] != "tag" or not parts[2]:
            continue  # a lightweight tag, or a tag of a tag: GTO reads neither
        parsed = parse_tag(parts[0])
        if parsed is None:
            continue
        try:
            created = int(parts[3])
        except ValueError:
            created = 0
        tags.append(RegistryTag(
            tag=parts[0], artifact=str(parsed["artifact"]), action=str(parsed["action"]), rev=parts[2],
            created=created, version=_opt(parsed.get("version")), stage=_opt(parsed.get("stage")),
            counter=int(parsed["counter"]) if "counter" in parsed else None, message=parts[4][:500],
        ))
    tags.sort(key=lambda t: (t.created, t.counter or 0, t.tag))
    return tags


def remote_tags(url: str) -> list[RegistryTag]:
    """The annotated registry tags of the repository at git URL `url`, read with `git ls-remote` (no clone).

    ls-remote gives no creation times: events are ordered by GTO's counter (registrations, which
    have none, first), which orders the events of one artifact as they were made.

    Raises:
        ScmError: `url` is not a git URL git may open (the `ext::` transport is refused), or git fails.
    """
    if not url or url.startswith("-") or any(ord(c) < 32 for c in url):
        raise ScmError(f"'{url[:80]}' is not a git URL")
    out = _git(Path.cwd(), "-c", "protocol.ext.allow=never", "ls-remote", "--tags", "--", url)
    peeled: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/tags/") and ref.endswith("^{}"):
            peeled[ref[len("refs/tags/"):-3]] = sha  # only annotated tags have a peeled line
    tags = []
    for name, commit in peeled.items():
        parsed = parse_tag(name)
        if parsed is not None:
            tags.append(RegistryTag(
                tag=name, artifact=str(parsed["artifact"]), action=str(parsed["action"]), rev=commit, created=0,
                version=_opt(parsed.get("version")), stage=_opt(parsed.get("stage")),
                counter=int(parsed["counter"]) if "counter" in parsed else None,
            ))
    tags.sort(key=lambda t: (t.counter or 0, t.tag))
    return tags


def create_tag(root: Path, name: str, rev: str, message: str) -> None:
    """Create annotated tag `name` on commit `rev` with `message` (as `git tag -a`).

    Raises:
        ScmError: `rev` names no commit, or the tag exists already.
    """
    if parse_tag(name) is None:
        raise ScmError(f"refusing to create tag {name!r:.80}: not a registry tag name")
    commit = resolve_commit(root, rev)
    if _git(root, "rev-parse", "--verify", "-q", f"refs/tags/{name}", check=False).strip():
        raise ScmError(f"tag '{name}' exists already", hint="see 'pipe artifacts show'")
    _git(root, "tag", "-a", "-m", message, "--", name, commit)


def resolve_commit(root: Path, rev: str) -> str:
    """The full sha of the commit `rev` names.

    Raises:
        ScmError: `rev` names no commit (or starts with '-', which git would read as an option).
    """
    commit = "" if rev.startswith("-") else _git(
        root, "rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}", check=False).strip()
    if not commit:
        raise ScmError(f"'{rev}' names no commit", hint="give a branch, tag or commit sha")
    return commit


def _opt(value: str | int | None) -> str | None:
    return None if value is None else str(value)


def _git(root: Path, *args: str, check: bool = True) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise ScmError(f"git {args[0]} failed: {proc.stderr.strip()[:300]}")
    return proc.stdout
