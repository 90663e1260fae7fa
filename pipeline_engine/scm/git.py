"""Git access: the few things pipe needs from the repository, through gitpython.

This module is the one writer of .gitignore lines; `ignore_line` escapes git's pattern characters
so that a line ignores exactly the tracked path (`scan[1].csv`, `#a`, `trail `) and nothing beside it.

gitpython costs ~0.15 s to import, so it is imported only when a method needs the repository
object; ignore-file edits are plain file I/O and stay cheap.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.errors import PathError, ScmError

__all__ = ["Git", "find_git_root", "ignore_line", "is_ignorable"]

# Characters a .gitignore line gives a meaning to: globs, negation, comment, the escape itself, and
# spaces (trailing ones are dropped unless escaped). A backslash before any of them makes it literal.
_GITIGNORE_SPECIAL = frozenset("[]*?!#\\ \t")
# No escape exists for these: a .gitignore line ends at a newline, and a trailing CR is stripped.
_UNIGNORABLE = ("\n", "\r")
# .gitignore edits are read-modify-write, and stages running in parallel (repro -j) save their outs
# at the same time: without this, one stage's line could overwrite another's, leaving an out unignored.
_ignore_lock = threading.Lock()


def is_ignorable(name: str) -> bool:
    """True when a .gitignore line can match exactly the file called `name`."""
    return not any(c in name for c in _UNIGNORABLE)


def ignore_line(name: str) -> str:
    """The .gitignore line (anchored, escaped) that matches exactly `name` in the same directory.

    Raises:
        PathError: `name` holds a newline or carriage return.
    """
    if not is_ignorable(name):
        raise PathError(
            f"{name!r}: git cannot ignore a name holding a newline or carriage return",
            hint="rename the file without line breaks, then add it",
        )
    return "/" + "".join(f"\\{c}" if c in _GITIGNORE_SPECIAL else c for c in name)


def find_git_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding `.git`, or None."""
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


class Git:
    """A git working tree rooted at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._repo: Any = None

    @property
    def repo(self) -> Any:
        """The gitpython Repo, opened on first use."""
        if self._repo is None:
            import git

            try:
                self._repo = git.Repo(self.root)
            except git.GitError as exc:
                raise ScmError(f"cannot open the git repository at '{self.root}': {exc}") from exc
        return self._repo

    def ignore(self, relpath: str) -> bool:
        """Add the line that ignores exactly `relpath` to the .gitignore beside it, once; True when added.

        Raises:
            PathError: the name holds a newline or carriage return, which no .gitignore line can match.
        """
        parent, _, name = relpath.rpartition("/")
        gitignore = self.root / parent / ".gitignore"
        entry = ignore_line(name)
        with _ignore_lock:
            lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
            if entry in lines:
                return False
            text = "\n".join([*lines, entry]) + "\n"
            atomic_write(gitignore, text, fsync=False)
            return True

    def unignore(self, relpath: str) -> None:
        """Remove the line `ignore` added for `relpath` (or an older pipe's unescaped `/<name>`).

        The .gitignore goes when it becomes empty.
        """
        parent, _, name = relpath.rpartition("/")
        gitignore = self.root / parent / ".gitignore"
        ours = {f"/{name}"} | ({ignore_line(name)} if is_ignorable(name) else set())
        with _ignore_lock:
            if not gitignore.exists():
                return
            lines = [ln for ln in gitignore.read_text(encoding="utf-8").splitlines() if ln not in ours]
            if lines:
                atomic_write(gitignore, "\n".join(lines) + "\n", fsync=False)
            else:
                gitignore.unlink()

    def tracked_under(self, relpath: str) -> list[str]:
        """Files git tracks at or under `relpath` (cheap: one `git ls-files`)."""
        proc = self._git("ls-files", "-z", "--", relpath or ".")
        return [p for p in proc.split("\0") if p]

    def read_at(self, rev: str, relpath: str) -> bytes | None:
        """The content of `relpath` at `rev`, or None when it does not exist there."""
        import git

        try:
            blob = self.repo.commit(rev).tree / relpath
        except KeyError:
            return None
        except (git.GitError, ValueError) as exc:
            raise ScmError(f"cannot read revision '{rev}': {exc}") from exc
        data: bytes = blob.data_stream.read()
        return data

    def iter_files_at(self, rev: str, *, suffix: str) -> Iterator[tuple[str, bytes]]:
        """(path, content) of every file at `rev` whose name ends with `suffix`."""
        import git

        try:
            tree = self.repo.commit(rev).tree
        except (git.GitError, ValueError) as exc:
            raise ScmError(f"cannot read revision '{rev}': {exc}") from exc
        for item in tree.traverse():
            if item.type == "blob" and item.path.endswith(suffix):
                yield item.path, item.data_stream.read()

    def revisions(self, *, all_commits: bool) -> list[str]:
        """Commit shas: HEAD only, or every commit reachable from any branch or tag."""
        if not all_commits:
            head = self._git("rev-parse", "--verify", "-q", "HEAD", check=False).strip()
            return [head] if head else []
        out = self._git("rev-list", "--all", check=False)
        return out.split()

    def _git(self, *args: str, check: bool = True) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        proc = subprocess.run(
            ["git", *args], cwd=self.root, capture_output=True, text=True, env=env, check=False
        )
        if check and proc.returncode != 0:
            raise ScmError(f"git {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout
