"""Filesystem primitives: atomic writes, fast tree walks, project-relative paths."""

from __future__ import annotations

import bisect
import contextlib
import errno
import itertools
import operator
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline_engine.errors import PathError

__all__ = [
    "IGNORE_FILE",
    "READ_NONBLOCK",
    "TEMP_PREFIX",
    "atomic_write",
    "copy_file",
    "ignore_rule",
    "is_exec",
    "make_parents",
    "open_regular",
    "read_regular",
    "relpath_in",
    "remove_path",
    "require_regular",
    "shown_path",
    "special_kind",
    "temp_name",
    "temp_owner",
    "walk_files",
    "walk_runs",
]

# Every temporary file pipe creates is named `.pipetmp-<pid>-<random>[suffix]`: short whatever
# the target's name (never past NAME_MAX), and tied to the process that made it, so a later
# command can tell the leftovers of a killed process from the files of a live one.
TEMP_PREFIX = ".pipetmp-"
_TEMP_RE = re.compile(r"^\.pipetmp-(\d+)-")
_TEMP_TOKEN = secrets.token_hex(4)
_temp_counter = itertools.count()


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
    """A fresh temporary file name (no directory) for this process: `.pipetmp-<pid>-<hex>`.

    A random token drawn once per process plus a counter: unique across threads and across
    processes that reuse a PID, without a `getrandom` call for each of 10,000 files.
    """
    return f"{TEMP_PREFIX}{os.getpid()}-{_TEMP_TOKEN}{next(_temp_counter):x}{suffix}"


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
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    try:
        shutil.rmtree(path)
    except RecursionError:  # Python < 3.12 recurses once per level: a tree from git may nest 1,500 deep
        _remove_deep_tree(os.fspath(path))


def _remove_deep_tree(path: str) -> None:
    """`shutil.rmtree` without recursion: directories opened by name from their parent's descriptor
    with O_NOFOLLOW, entries unlinked through it, so a symlink inside is removed, never followed."""
    stack = [(os.open(path, _DIR_FLAGS | os.O_NOFOLLOW), "")]  # (descriptor, its name in the parent)
    try:
        while stack:
            fd, _ = stack[-1]
            with os.scandir(fd) as it:
                sub = next((e.name for e in it if e.is_dir(follow_symlinks=False)), None)
            if sub is not None:
                stack.append((os.open(sub, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd), sub))
                continue
            with os.scandir(fd) as it:
                for entry in it:
                    os.unlink(entry.name, dir_fd=fd)
            os.close(fd)
            _, name = stack.pop()
            if stack:
                os.rmdir(name, dir_fd=stack[-1][0])
    finally:
        for fd, _ in stack:
            os.close(fd)
    os.rmdir(path)


def make_parents(path: Path) -> None:
    """Create the missing parent directories of `path`, as `path.parent.mkdir(parents=True,
    exist_ok=True)` does but in a loop: pathlib recurses once per missing level, and a path from
    git (a stage out, a manifest entry) may be 1,500 levels deep.

    Raises:
        FileExistsError: a parent exists and is not a directory; OSError as `mkdir`.
    """
    missing = []
    parent = path.parent
    while not parent.is_dir() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            if not directory.is_dir():
                raise


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


IGNORE_FILE = ".pipeignore"


def walk_files(
    root: Path,
    *,
    skip: frozenset[str] = frozenset(),
    link_roots: Sequence[Path] = (),
    shown_as: str = "",
    ignore_root: Path | None = None,
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (POSIX path relative to `root`, stat) for every regular file under `root`.

    Symlinks to regular files are followed (their target's stat is yielded) when the target is
    inside `root` or inside one of `link_roots` (a cache that `cache.type: symlink` links to);
    any other symlink is refused. A dangling link into a `link_roots` cache (its object was
    quarantined or collected) is skipped, as if the file were missing. Directories named in
    `skip` (e.g. `.git`) are not entered, and pipe's own temporary files (`temp_name()`) are
    never yielded.
    Errors name a file as `shown_as/<relative path>` (e.g. its project-relative path).

    With `ignore_root` (the project root, an ancestor of `root`), `.pipeignore` files are honoured
    as git honours .gitignore files: gitignore syntax, each file's patterns relative to its own
    directory, deeper files and later lines winning; those in `ignore_root` and the directories
    down to `root` apply too. An ignored directory is not entered. Without any `.pipeignore`
    nothing is matched (and pathspec is not imported).

    Paths come in sorted order (Python string order), one directory listing held at a time
    per level, so a caller can stream a million files.

    Raises:
        PathError: a symlink leads outside `root` and `link_roots`, or not to a regular file
            (a symlink to a directory included).
    """
    for prefix, names, stats in walk_runs(root, skip=skip, link_roots=link_roots, shown_as=shown_as,
                                          ignore_root=ignore_root):
        for name, st in zip(names, stats, strict=True):
            yield prefix + name, st


def walk_runs(
    root: Path,
    *,
    skip: frozenset[str] = frozenset(),
    link_roots: Sequence[Path] = (),
    shown_as: str = "",
    ignore_root: Path | None = None,
    enter: Callable[[str], bool] | None = None,
    contained_in: Path | None = None,
    top_files: bool = True,
) -> Iterator[tuple[str, list[str], list[os.stat_result]]]:
    """`walk_files` a run of one directory's files at a time: `(prefix, names, stats)`, each file's
    path being `prefix + name`; the same files, rules and order (at most 4096 files a run).

    To split one walk between processes: `enter` says which sub-directories of `root` this walk
    enters (the others are left to another walk), `top_files` whether it yields the files
    directly in `root` (they are stat'ed only if so), and `contained_in` (an ancestor of `root`,
    the tracked directory being split) is where symlinks may lead besides `link_roots`.

    A million unchanged files cost a `stat` each and little else: each directory is read and its
    files stat'ed through a descriptor of the directory (`fstatat`: the kernel resolves one name,
    not the whole path, per file; a sub-directory is opened by name with `O_NOFOLLOW`), and a
    directory of plain files is stat'ed and handed over in bulk, with no per-file Python beyond
    the `stat` call.

    Raises:
        PathError: as `walk_files`.
    """
    allowed = [os.path.realpath(contained_in or root), *(os.path.realpath(r) for r in link_roots)]
    rules = _ancestor_ignores(ignore_root, root) if ignore_root is not None else ()
    honour = ignore_root is not None
    stack: list[_Dir] = []  # directories being listed, depth first; each holds its descriptor
    try:
        stack.append(_Dir(str(root), "", rules, honour, shown_as, None))
        stack[0].files = top_files
        while stack:
            top = stack[-1]
            names, stats, sub = top.next_run(allowed, skip)
            if names:
                yield top.prefix, names, stats
            if sub is not None and (enter is None or len(stack) > 1 or enter(sub)):
                stack.append(_Dir(f"{top.path}/{sub}", f"{top.prefix}{sub}/", top.rules, honour, shown_as, top.fd))
            elif sub is None and top.done:
                stack.pop().close()
    finally:
        for d in stack:
            d.close()


# Files per run of `walk_runs`: bounds the stat results held at once in a huge flat directory.
_RUN = 4096
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_name = operator.attrgetter("name")
# Called through `map`, a C loop: no Python frame per file. Without keyword arguments (those cost
# five times the call): `is_file` and `stat` follow symlinks, so they are only used on entries
# known not to be symlinks, where they are `lstat`'s answers.
_is_dir = operator.methodcaller("is_dir", follow_symlinks=False)


def _dir_last(entry: os.DirEntry[str]) -> str:
    return entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name


class _Dir:
    """One directory being walked: its descriptor, entries in path order and the ignore rules that apply.

    Sorted by name, with `/` appended to directory names: walking depth-first in that order
    yields the full relative paths in sorted order (a name sorts before `name/...` exactly when
    it sorts before `name/`), so no caller needs to sort a million paths.
    """

    __slots__ = ("done", "entries", "fd", "files", "i", "names", "path", "plain", "prefix", "rules", "shown_as")

    def __init__(
        self, path: str, prefix: str, rules: tuple[_IgnoreFile, ...], honour: bool, shown_as: str,
        parent_fd: int | None,
    ) -> None:
        # Below the root, by name from the parent's descriptor and never through a symlink.
        self.fd = (os.open(path, _DIR_FLAGS) if parent_fd is None
                   else os.open(path.rpartition("/")[2], _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd))
        try:
            with os.scandir(self.fd) as it:
                entries = list(it)
        except BaseException:
            os.close(self.fd)
            raise
        plain_files = not any(map(os.DirEntry.is_symlink, entries)) and all(map(os.DirEntry.is_file, entries))
        has_dirs = not plain_files and any(map(_is_dir, entries))
        entries.sort(key=_dir_last if has_dirs else _name)
        self.names = list(map(_name, entries))
        if honour and IGNORE_FILE in self.names:
            rules = (*rules, _read_ignore(Path(path) / IGNORE_FILE, prefix, "", shown_as))
        self.path, self.prefix, self.rules, self.shown_as = path, prefix, rules, shown_as
        self.entries, self.i, self.done = entries, 0, not entries
        self.files = True  # False: its sub-directories only (another walk takes its files)
        # Nothing to decide per entry: no sub-directory, symlink, ignore rule or temporary file.
        first_temp = bisect.bisect_left(self.names, TEMP_PREFIX)
        self.plain = (plain_files and not rules
                      and not (first_temp < len(self.names) and self.names[first_temp].startswith(TEMP_PREFIX)))

    def next_run(
        self, allowed: Sequence[str], skip: frozenset[str]
    ) -> tuple[list[str], list[os.stat_result], str | None]:
        """The next files (names, stats) and, when the run ends at one, the sub-directory to enter next."""
        entries, i, end = self.entries, self.i, len(self.entries)
        if self.plain and not self.files:
            self.i, self.done = end, True
            return [], [], None
        if self.plain:
            stop = min(end, i + _RUN)
            self.i, self.done = stop, stop == end
            return self.names[i:stop], list(map(os.DirEntry.stat, entries[i:stop])), None
        names: list[str] = []
        stats: list[os.stat_result] = []
        rules, prefix, sub = self.rules, self.prefix, None
        while i < end and len(names) < _RUN:
            entry = entries[i]
            i += 1
            name = entry.name
            if name.startswith(TEMP_PREFIX) and _TEMP_RE.match(name):
                continue  # a pipe temporary file (a checkout in progress, or killed): never data
            if entry.is_dir(follow_symlinks=False):
                if name not in skip and not (rules and _ignored(rules, f"{prefix}{name}/")):
                    sub = name
                    break
            elif not self.files or (rules and _ignored(rules, prefix + name)):
                continue
            elif entry.is_file(follow_symlinks=False):
                names.append(name)
                stats.append(entry.stat(follow_symlinks=False))
            elif entry.is_symlink():
                rel = prefix + name
                st = _symlink_target_stat(allowed, f"{self.path}/{name}",
                                          f"{self.shown_as}/{rel}" if self.shown_as else rel)
                if st is not None:
                    names.append(name)
                    stats.append(st)
        self.i, self.done = i, i == end
        return names, stats, sub

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# One .pipeignore: (`strip`, `prepend`, compiled spec). It applies to walked paths starting with
# `strip` (its directory inside the walked root); a file above the root sees `prepend + path`.
_IgnoreFile = tuple[str, str, Any]


def _read_ignore(path: Path, strip: str, prepend: str, shown_as: str) -> _IgnoreFile:
    import pathspec  # only when a .pipeignore exists: status stays free of it otherwise

    where = f"{shown_as}/{strip}{IGNORE_FILE}" if shown_as else shown_path(path)
    try:
        lines = read_regular(path).decode("utf-8").splitlines()  # a FIFO is refused, never waited on
    except UnicodeDecodeError as exc:
        raise PathError(f"cannot read '{where}': not UTF-8 text (byte {exc.start})",
                        hint=f"fix or remove '{where}'") from None
    except OSError as exc:
        raise PathError(f"cannot read '{where}': {exc.strerror or exc}", hint=f"fix or remove '{where}'") from exc
    return strip, prepend, pathspec.GitIgnoreSpec.from_lines(lines)


def ignore_rule(ignore_root: Path, rel: str, *, isdir: bool) -> str | None:
    """`FILE: 'PATTERN'` of the `.pipeignore` rule hiding project path `rel` (or a directory above it), or None.

    The rules of `walk_files`: gitignore syntax, each file's patterns relative to its directory,
    the deepest file with a matching pattern deciding, its last match winning.

    Raises:
        PathError: a `.pipeignore` on the way cannot be read.
    """
    parts = rel.split("/")
    found = [(depth, ignore_root.joinpath(*parts[:depth]) / IGNORE_FILE) for depth in range(len(parts))]
    specs = [(depth, path, _read_ignore(path, "", "", "")[2]) for depth, path in found if path.is_file()]
    for end in range(1, len(parts) + 1):  # an ignored directory hides everything below it
        slash = "/" if end < len(parts) or isdir else ""
        for depth, path, spec in reversed(specs):
            result = spec.check_file("/".join(parts[depth:end]) + slash) if depth < end else None
            if result is None or result.include is None:
                continue
            if not result.include:
                break
            pattern = spec.patterns[result.index].pattern if result.index is not None else None
            return f"{path.relative_to(ignore_root).as_posix()}: '{pattern}'"
    return None


def _ancestor_ignores(ignore_root: Path, root: Path) -> tuple[_IgnoreFile, ...]:
    """The .pipeignore files of `ignore_root` and of each directory down to (not including) `root`."""
    try:
        parts = root.relative_to(ignore_root).parts
    except ValueError:
        return ()
    found = []
    for depth in range(len(parts)):
        candidate = ignore_root.joinpath(*parts[:depth]) / IGNORE_FILE
        if candidate.is_file() or (candidate.exists() and not candidate.is_dir()):  # a FIFO is refused by name
            found.append(_read_ignore(candidate, "", "/".join(parts[depth:]) + "/", ""))
    return tuple(found)


def _ignored(rules: Sequence[_IgnoreFile], rel: str) -> bool:
    """gitignore precedence: the deepest file with a matching pattern decides, its last match wins."""
    for strip, prepend, spec in reversed(rules):
        if not rel.startswith(strip):
            continue
        result = spec.check_file(prepend + rel[len(strip):])
        if result.include is not None:
            return bool(result.include)
    return False


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


#: Open flags for reading a file that may turn out to be a FIFO: opening one to read waits for a
#: writer, with O_NONBLOCK it returns at once (and reads of a regular file ignore the flag).
READ_NONBLOCK = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)
_SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"))


def special_kind(mode: int) -> str:
    """What a FIFO, socket or device is ("a FIFO (named pipe)", ...); "" for a regular file, a
    directory or a symlink."""
    return next((name for test, name in _SPECIAL if test(mode)), "")


def require_regular(mode: int, shown: str) -> None:
    """Refuse to read what is not a regular file: reading a FIFO blocks until some process writes
    to it (`pipe add` hung), and a device may never end.

    Inside a tracked directory such entries are skipped by the walk, as git skips them; a path
    named on its own (an out, a dep, `pipe add PATH`) is refused here.

    Raises:
        PathError: naming `shown` and what it is.
    """
    if stat.S_ISREG(mode):
        return
    kind = special_kind(mode) or ("a directory" if stat.S_ISDIR(mode) else "not a regular file")
    raise PathError(
        f"'{shown}' is {kind}; pipe tracks regular files (and directories of them), never reads this",
        hint=f"move '{shown}' out of the way, or replace it by a regular file",
    )


def open_regular(path: str | os.PathLike[str]) -> tuple[int, os.stat_result]:
    """A descriptor to read regular file `path`, and its stat data; never waits on a FIFO.

    Raises:
        FileNotFoundError, NotADirectoryError, OSError: as `os.open` would; IsADirectoryError.
        PathError: `path` is a FIFO, a socket or a device (`require_regular`).
    """
    fd = os.open(path, READ_NONBLOCK)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        require_regular(st.st_mode, shown_path(path))
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The bytes of file `path` (`open_regular`, which says what it raises)."""
    fd, _ = open_regular(path)
    with open(fd, "rb") as f:
        return f.read()


def shown_path(path: str | os.PathLike[str]) -> str:
    """`path` as a message shows it: relative to the current directory when it is inside it (as
    the user typed it, usually), else as given."""
    text = os.fspath(path)
    with contextlib.suppress(ValueError, OSError):
        rel = os.path.relpath(text)
        if not rel.startswith(".."):
            return rel
    return text


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
