"""The one path gate: every path read from a file (pointer, lock, pipeline, manifest, run cache,
config) passes here before pipe reads, writes or deletes anything through it.

Files that arrive through git are written by other people. A path in them is refused when it
could reach outside the data it tracks:

- lexically (`check_relpath`): empty or `.`, absolute, a `..` component, a component that is
  `.git` or `.pipe` in any case spelling, a NUL, newline or other control character;
- on the real filesystem at use time (`resolve_in_project`): any existing component that
  resolves, through symlinks, outside the project or into its `.git`/`.pipe`.

The last component itself is never followed by pipe's writes (they rename over it) or deletions
(`fsutil.remove_path` removes a link as a link), so a workspace symlink into the cache
(`cache.type: symlink`) passes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from pipeline_engine.errors import UnsafePathError

__all__ = [
    "PROTECTED_DIRS", "all_plain", "check_not_own_file", "check_relpath", "is_protected_name", "is_safe_relpath",
    "resolve_in_project",
]

# Lower-cased names of directories a tracked path may never enter (case-insensitive filesystems
# would let `.GIT/hooks` reach `.git/hooks`).
PROTECTED_DIRS = frozenset({".git", ".pipe"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Anything that needs a closer look: a control character, a leading `/` or `\\` or drive letter,
# or a component that is empty, `.`, `..`, `.git` or `.pipe`. Most paths match none of these
# and are returned as they are: a manifest of 10,000 files is checked in a few milliseconds.
_SUSPECT = re.compile(
    r"[\x00-\x1f\x7f]|^[\\/]|^[A-Za-z]:[\\/]|(?:^|/)(?:\.{0,2}|(?i:\.git|\.pipe))(?:/|$)"
)

# `_SUSPECT` for many paths joined by newlines (`all_plain`): the anchors match at each line.
_SUSPECT_LINES = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f]|^[\\/]|^[A-Za-z]:[\\/]|(?:^|/)(?:\.{0,2}|(?i:\.git|\.pipe))(?:/|$)", re.MULTILINE
)


def is_protected_name(name: str) -> bool:
    """True for a path component naming `.git` or `.pipe` in any case spelling."""
    return name.lower() in PROTECTED_DIRS


def check_relpath(path: object, *, source: str, allow_root: bool = False) -> str:
    """Return `path` as a normalised project-relative POSIX path, or refuse it.

    `.` and empty components are dropped (`./a//b` -> `a/b`); `..` is refused rather than
    resolved, since what it leads to depends on symlinks. `allow_root` accepts `.` (a stage's
    `wdir`), returned as "".

    Raises:
        UnsafePathError: naming `source` and the path, for any of the refusals in the module docstring.
    """
    if not isinstance(path, str):
        raise UnsafePathError(f"{source}: path {path!r} must be a string")
    if path and not _SUSPECT.search(path):
        return path
    shown = path.encode("unicode_escape").decode("ascii")
    if _CONTROL.search(path):
        raise UnsafePathError(f"{source}: path '{shown}' contains a control character (NUL, newline, ...)")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", path):
        raise UnsafePathError(f"{source}: path '{shown}' must be relative to the project")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{source}: path '{shown}' leaves the project ('..' is not allowed)")
    for part in parts:
        if is_protected_name(part):
            raise UnsafePathError(f"{source}: path '{shown}' is inside '{part}', which pipe never touches")
    if not parts and not allow_root:
        raise UnsafePathError(f"{source}: path '{shown}' names the project root itself")
    return "/".join(parts)


def all_plain(paths: Sequence[str]) -> bool:
    """True when `check_relpath` would return every one of `paths` unchanged, found by one regex
    scan over them all (a 10,000-file manifest: ~0.5 ms instead of ~5 ms).

    False says only that some path needs `check_relpath` itself (which refuses or normalises it).
    """
    joined = "\n".join(paths)
    if joined.count("\n") != len(paths) - 1:  # a path holding a newline: let check_relpath name it
        return False
    if not paths:
        return False
    if joined.isascii() and "\\" not in joined and ":" not in joined:
        return _plain_ascii(joined)
    return _SUSPECT_LINES.search(joined) is None


# Bytes a plain ASCII path may hold (`_plain_ascii` deletes them and expects nothing left).
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\n"
# Path components the gate refuses or drops, between newlines (`_plain_ascii` turns `/` into one).
_BAD_PARTS = (b"\n\n", b"\n.\n", b"\n..\n", b"\n.git\n", b"\n.pipe\n")


def _plain_ascii(joined: str) -> bool:
    """`_SUSPECT_LINES.search(joined) is None` for ASCII paths without a backslash or a colon (the
    drive-letter rule's characters), as a few C-speed byte scans instead of a regex tried at every
    position (a 10,000-path manifest: ~0.4 ms instead of ~4 ms): no control character, and no
    component (bounded by `/` or the line's ends) that is empty, `.`, `..`, `.git` or `.pipe` in
    any case (ASCII only: `lower` is exact)."""
    data = joined.encode("ascii")
    if data.translate(None, _PRINTABLE):
        return False
    parts = b"\n" + data.lower().replace(b"/", b"\n") + b"\n"
    return not any(bad in parts for bad in _BAD_PARTS)


# Files pipe itself writes beside the data: a recorded out (pointer, lock, stage) may not name one,
# or checkout would overwrite a pointer, the pipeline or an ignore file with data.
_OWN_FILES = frozenset({"pipeline.yaml", "pipeline.lock"})
_OWN_NAMES = frozenset({".gitignore", ".pipeignore"})
_POINTER_SUFFIX = ".pipe"


def check_not_own_file(relpath: str, *, source: str) -> str:
    """Refuse an out path that names one of pipe's own files (a pointer, the pipeline, an ignore file).

    Raises:
        UnsafePathError: naming `source` and the path.
    """
    name = relpath.rpartition("/")[2]
    if relpath in _OWN_FILES or name in _OWN_NAMES or name.endswith(_POINTER_SUFFIX):
        raise UnsafePathError(f"{source}: path '{relpath}' is one of pipe's own files, not data")
    return relpath


def resolve_in_project(root: Path, relpath: str, *, source: str, follow: bool = False) -> Path:
    """Return `root / relpath` after checking it against the real filesystem.

    Every existing component but the last must be a directory (or a symlink to one) that
    resolves inside the project and outside `.git`/`.pipe`. The last component may be a symlink
    (callers replace or remove it as a link) and is not followed, unless `follow` (for files
    pipe only reads, such as params files: their target must then be inside too). `relpath` must
    already have passed `check_relpath`.

    Raises:
        UnsafePathError: the path resolves outside the project or into `.git`/`.pipe`.
    """
    path = root / relpath
    prefix = "" if source == relpath else f"{source}: "
    checked = relpath if follow else os.path.dirname(relpath)
    if not checked:
        return path
    real_root = os.path.realpath(root)
    real = os.path.realpath(root / checked)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise UnsafePathError(
            f"{prefix}path '{relpath}' goes through a symlink that leads outside the project (to '{real}')"
        )
    inside = os.path.relpath(real, real_root)
    if inside != "." and any(is_protected_name(p) for p in inside.split(os.sep)):
        raise UnsafePathError(f"{prefix}path '{relpath}' goes through a symlink into '{inside}'")
    return path


def is_safe_relpath(path: str) -> bool:
    """True when `check_relpath` accepts `path`: for listings, which skip what the gate refuses instead of failing."""
    try:
        check_relpath(path, source=path)
    except UnsafePathError:
        return False
    return True
