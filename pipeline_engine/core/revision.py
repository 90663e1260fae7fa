"""The project's files at one revision: the workspace, or a git commit read without a checkout.

Every parser that reads more than the text it is given (pipeline.yaml reads params and vars files,
an index reads the lock and every pointer) reads through a `RevisionFiles`, so the same code serves
the workspace, `HEAD~1`, a tag or an experiment's commit. Paths are project-relative POSIX paths and
pass the one path gate (`core.pathgate`) before anything is read: a file from git never makes pipe
read outside the project or inside `.git`/`.pipe`.

`WorkspaceFiles` is defined here; the git implementation is `scm.git.GitRevisionFiles`
(`Git.files_at(rev, project_prefix=...)`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline_engine.core.fsutil import read_regular
from pipeline_engine.core.pathgate import check_relpath, is_protected_name, resolve_in_project
from pipeline_engine.errors import PathError, SpecError

__all__ = ["WORKSPACE", "RevisionFiles", "WorkspaceFiles", "decode_utf8", "describe_at"]

#: The label of the working tree in messages and tables.
WORKSPACE = "workspace"


class RevisionFiles(Protocol):
    """The project's files at one revision (the workspace, or a git commit read without checkout).

    Every method takes project-relative POSIX paths and refuses, with `UnsafePathError` (a
    SpecError), what the path gate refuses (`..`, absolute paths, `.git`, `.pipe`, ...).
    """

    @property
    def rev(self) -> str | None:
        """None for the workspace; otherwise the full commit sha."""
        ...

    @property
    def label(self) -> str:
        """`workspace`, or the revision as the user named it (`HEAD~1`, `v1`)."""
        ...

    def read_bytes(self, relpath: str) -> bytes | None:
        """The file's content, or None when no file exists there."""
        ...

    def read_text(self, relpath: str) -> str | None:
        """The file's UTF-8 text, or None when absent (SpecError naming the file if not UTF-8)."""
        ...

    def size(self, relpath: str) -> int | None:
        """The file's size in bytes without reading it, or None when no file is there."""
        ...

    def is_file(self, relpath: str) -> bool:
        """True when a regular file exists at `relpath`."""
        ...

    def is_dir(self, relpath: str) -> bool:
        """True when a directory exists at `relpath` ("" is the project root)."""
        ...

    def list_files(self, *, under: str = "", suffix: str = "") -> list[str]:
        """Sorted project-relative paths of the files at or under `under` whose names end with `suffix`."""
        ...

    def describe(self, relpath: str) -> str:
        """How messages name the file: `params.yaml`, or `params.yaml at 'HEAD~1'`."""
        ...


def describe_at(relpath: str, rev: str | None, label: str) -> str:
    """`relpath` in the workspace, `relpath at 'label'` at a revision (shared by both implementations)."""
    return relpath if rev is None else f"{relpath} at '{label}'"


def decode_utf8(data: bytes, *, source: str) -> str:
    """`data` as UTF-8 text.

    Raises:
        SpecError: naming `source` and the offset of the first bad byte.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text (byte {exc.start})") from None


@dataclass(frozen=True, slots=True)
class WorkspaceFiles:
    """The working tree under `root`, read through the path gate.

    A path is checked lexically (`check_relpath`), then against the real filesystem with
    `resolve_in_project(..., follow=True)`: a symlink is followed only when it and every directory
    on the way stay inside the project and outside `.git`/`.pipe` (as the params readers always did).
    """

    root: Path

    @property
    def rev(self) -> str | None:
        """Always None: the workspace is not a commit."""
        return None

    @property
    def label(self) -> str:
        """Always `workspace`."""
        return WORKSPACE

    def _path(self, relpath: str) -> Path:
        rel = check_relpath(relpath, source=relpath, allow_root=True)
        return resolve_in_project(self.root, rel, source=rel, follow=True) if rel else self.root

    def read_bytes(self, relpath: str) -> bytes | None:
        """The file's bytes, None when absent or not a file.

        Raises:
            UnsafePathError: the path gate refuses `relpath`.
            SpecError: the file exists but cannot be read.
        """
        path = self._path(relpath)
        try:
            return read_regular(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except PathError as exc:  # a FIFO or a device: never read (it could block forever)
            raise SpecError(exc.message, hint=exc.hint) from None
        except OSError as exc:
            raise SpecError(f"{relpath}: cannot read: {exc.strerror or exc}") from exc

    def read_text(self, relpath: str) -> str | None:
        """The file's UTF-8 text, None when absent.

        Raises:
            UnsafePathError: the path gate refuses `relpath`.
            SpecError: the file cannot be read or is not UTF-8.
        """
        data = self.read_bytes(relpath)
        return None if data is None else decode_utf8(data, source=relpath)

    def size(self, relpath: str) -> int | None:
        """The file's size in bytes (a stat), None when absent or not a file.

        Raises:
            UnsafePathError: the path gate refuses `relpath`.
        """
        try:
            st = os.stat(self._path(relpath))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def is_file(self, relpath: str) -> bool:
        """True for a regular file (or a link the gate allows to one), and for a FIFO, socket or
        device there: reading it then refuses it by name, where "absent" would mislead (a
        pipeline.yaml that is a FIFO is not "no pipeline")."""
        path = self._path(relpath)
        return path.is_file() or (path.exists() and not path.is_dir())

    def is_dir(self, relpath: str) -> bool:
        """True for a directory (or a link the gate allows to one)."""
        return self._path(relpath).is_dir()

    def list_files(self, *, under: str = "", suffix: str = "") -> list[str]:
        """Sorted paths of files under `under`; `.git`/`.pipe` and symlinked directories are not entered.

        FIFOs, sockets and devices are listed like files (`is_file`), so a reader refuses them by
        name instead of taking a declared metrics file that is a FIFO for an absent one.

        A symlinked file is listed when the gate allows reading it (it stays in the project). This
        walks every directory, tracked data included: to find the pointers of a large git
        workspace, `git ls-files` (index.pointers) is cheaper.
        """
        base = self._path(under)
        prefix = check_relpath(under, source=under, allow_root=True)
        if base.is_file() or (base.exists() and not base.is_dir()):  # a FIFO too: reading it names it
            return [prefix] if prefix.endswith(suffix) else []
        found: list[str] = []
        stack = [(os.fspath(base), prefix)]  # a loop, not os.walk: that recurses once per level (1,500 deep)
        while stack:
            top, rel_top = stack.pop()
            try:
                with os.scandir(top) as it:
                    entries = list(it)
            except OSError:  # gone, or unreadable: as os.walk, nothing listed there
                continue
            for entry in entries:
                rel = f"{rel_top}/{entry.name}" if rel_top else entry.name
                if entry.is_dir():  # a link to a directory is not entered, nor listed
                    if not entry.is_symlink() and not is_protected_name(entry.name):
                        stack.append((entry.path, rel))
                elif entry.name.endswith(suffix) and self._listable(rel):
                    found.append(rel)
        return sorted(found)

    def _listable(self, rel: str) -> bool:
        path = self.root / rel
        if not path.is_symlink():
            return True
        try:
            return resolve_in_project(self.root, rel, source=rel, follow=True).is_file()
        except SpecError:
            return False

    def describe(self, relpath: str) -> str:
        """The path itself: messages about the workspace name files as they always did."""
        return relpath
