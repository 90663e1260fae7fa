"""Filesystem primitives: atomic writes, fast tree walks, project-relative paths."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from pipeline_engine.errors import PathError

__all__ = [
    "TEMP_PREFIX", "atomic_write", "copy_file", "is_exec", "relpath_in", "remove_path", "temp_name",
    "temp_owner", "walk_files",
]

# Every temporary file pipe creates is named `.pipetmp-<pid>-<random>[suffix]`: short whatever
# the target's name (never past NAME_MAX), and tied to the process that made it, so a later
# command can tell the leftovers of a killed process from the files of a live one.
TEMP_PREFIX = ".pipetmp-"
_TEMP_RE = re.compile(r"^\.pipetmp-(\d+)-")


def atomic_write(path: Path, data: bytes | str, *, fsync: bool = True) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never half of one.

    The file keeps the mode of the file it replaces; a new file gets `0666 & ~umask` (the kernel
    applies the umask to the temp file's `open`), like any file an editor would create. The temp
    file is `temp_name()` beside `path`: short whatever `path`'s name, and tied to this PID.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    tmp = path.parent / temp_name()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def temp_name(suffix: str = "") -> str:
    """A fresh temporary file name (no directory) for this process: `.pipetmp-<pid>-<8 hex>`."""
    return f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def temp_owner(name: str) -> int | None:
    """The PID that created temporary file `name`, or None when `name` is not a pipe temp name."""
    m = _TEMP_RE.match(name)
    return int(m.group(1)) if m else None


def remove_path(path: Path) -> None:
    """Delete a file, a symlink (as a link, never its target) or a directory tree; absent is fine.

    `shutil.rmtree` does not follow symlinks inside the tree either, so nothing outside `path`
    is ever deleted through a link.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def copy_file(src: str | os.PathLike[str], dest: str | os.PathLike[str], *, mode: int = 0o644) -> None:
    """Copy `src` to a new file `dest` (which must not exist) with as few syscalls as possible.

    `shutil.copyfile` spends several extra stats and opens per file; with 10,000 small files
    that overhead, not the bytes, is the cost. The kernel copies the data (`sendfile`).
    """
    fi = os.open(src, os.O_RDONLY)
    try:
        fo = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            remaining = os.fstat(fi).st_size
            while remaining > 0:
                sent = os.sendfile(fo, fi, None, min(remaining, 1 << 30))
                if sent == 0:
                    break
                remaining -= sent
        finally:
            os.close(fo)
    finally:
        os.close(fi)


def is_exec(mode: int) -> bool:
    """True when the owner may execute a file with this mode."""
    return bool(mode & stat.S_IXUSR)


def walk_files(
    root: Path, *, skip: frozenset[str] = frozenset(), link_roots: Sequence[Path] = (), shown_as: str = ""
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (POSIX path relative to `root`, stat) for every regular file under `root`.

    Symlinks to regular files are followed (their target's stat is yielded) when the target is
    inside `root` or inside one of `link_roots` (a cache that `cache.type: symlink` links to);
    any other symlink is refused. A dangling link into a `link_roots` cache (its object was
    quarantined or collected) is skipped, as if the file were missing. Directories named in
    `skip` (e.g. `.git`) are not entered, and pipe's own temporary files (`temp_name()`) are
    never yielded. Order is unspecified: callers sort when it matters.
    Errors name a file as `shown_as/<relative path>` (e.g. its project-relative path).

    Raises:
        PathError: a symlink leads outside `root` and `link_roots`, or not to a regular file
            (a symlink to a directory included).
    """
    allowed = [os.path.realpath(root), *(os.path.realpath(r) for r in link_roots)]
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        path, prefix = stack.pop()
        with os.scandir(path) as it:
            for entry in it:
                if entry.name.startswith(TEMP_PREFIX) and _TEMP_RE.match(entry.name):
                    continue  # a pipe temporary file (a checkout in progress, or killed): never data
                rel = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in skip:
                        stack.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    yield rel, entry.stat(follow_symlinks=False)
                elif entry.is_symlink():
                    st = _symlink_target_stat(allowed, entry.path, f"{shown_as}/{rel}" if shown_as else rel)
                    if st is not None:
                        yield rel, st


def _symlink_target_stat(allowed: Sequence[str], path: str, rel: str) -> os.stat_result | None:
    """The stat of a symlink's target; None for a dangling link into a cache (its object was removed)."""
    target = os.path.realpath(path)
    inside = [a for a in allowed if target == a or target.startswith(a.rstrip(os.sep) + os.sep)]
    if not inside:
        raise PathError(f"'{rel}' is a symlink pointing outside the tracked directory ('{target}')")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if inside[0] == allowed[0]:
            raise PathError(f"'{rel}' is a symlink to a file that does not exist ('{target}')") from None
        return None
    if not stat.S_ISREG(st.st_mode):
        raise PathError(f"'{rel}' is a symlink to something that is not a regular file")
    return st


def relpath_in(root: Path, path: str | os.PathLike[str], *, cwd: Path | None = None) -> str:
    """Return `path` as a POSIX path relative to `root`, refusing anything outside it.

    Raises:
        PathError: the path resolves outside `root` (through `..` or a symlinked parent).
    """
    p = Path(path)
    if not p.is_absolute():
        p = (cwd or Path.cwd()) / p
    # Resolve the parent only: the last component may be a symlink we must inspect, not follow.
    absolute = Path(os.path.normpath(p))
    parent = absolute.parent.resolve()
    real_root = root.resolve()
    candidate = parent / absolute.name if absolute.name else parent
    try:
        rel = candidate.relative_to(real_root)
    except ValueError:
        raise PathError(f"'{path}' is outside the project '{root}'") from None
    posix = PurePosixPath(*rel.parts).as_posix()
    return "" if posix == "." else posix
