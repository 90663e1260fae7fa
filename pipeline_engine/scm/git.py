"""Git access: the few things pipe needs from the repository, through gitpython.

This module is the one writer of .gitignore lines; `ignore_line` escapes git's pattern characters
so that a line ignores exactly the tracked path (`scan[1].csv`, `#a`, `trail `) and nothing beside it.

gitpython costs ~0.15 s to import, so it is imported only when a method needs the repository
object; ignore-file edits are plain file I/O and stay cheap.

`Git.files_at` gives the project's files at a commit (`GitRevisionFiles`, a `core.revision.RevisionFiles`)
read from git's object database: no checkout, no worktree.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write, shown_path
from pipeline_engine.core.pathgate import check_relpath, is_safe_relpath
from pipeline_engine.core.revision import decode_utf8, describe_at
from pipeline_engine.core.yamlio import read_utf8
from pipeline_engine.errors import PathError, ScmError, UnsafePathError

__all__ = ["Git", "GitRevisionFiles", "find_git_root", "ignore_line", "is_ignorable", "is_link_blob"]

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
            lines = read_utf8(gitignore, source=shown_path(gitignore)).splitlines() if gitignore.exists() else []
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
            lines = [ln for ln in read_utf8(gitignore, source=shown_path(gitignore)).splitlines() if ln not in ours]
            if lines:
                atomic_write(gitignore, "\n".join(lines) + "\n", fsync=False)
            else:
                gitignore.unlink()

    def tracked_under(self, relpath: str) -> list[str]:
        """Files git tracks at or under `relpath` (cheap: one `git ls-files`)."""
        proc = self._git("ls-files", "-z", "--", relpath or ".")
        return [p for p in proc.split("\0") if p]

    def is_committed(self, relpath: str) -> bool:
        """True when git holds `relpath` as committed: tracked (a file, or files under a directory),
        with no change in the work tree or index and nothing untracked or ignored under it.

        Used before pipe deletes a path it did not write: such a path can be restored from git.
        """
        if not relpath or not self._git("--literal-pathspecs", "ls-files", "-z", "--", relpath, check=False):
            return False
        status = self._git("--literal-pathspecs", "status", "--porcelain", "-z", "--ignored=matching",
                           "--untracked-files=all", "--", relpath, check=False)
        return status == ""

    def files_at(self, rev: str, *, project_prefix: str = "") -> GitRevisionFiles:
        """The project's files at `rev`; `project_prefix` is the project root relative to the git root.

        The revision is resolved to a commit once, here.

        Raises:
            ScmError: `rev` names no commit (the message names it; the hint lists revisions).
        """
        import git

        # git itself resolves the name: GitPython's rev_parse raises KeyError, IndexError or
        # NotImplementedError on revisions a user may type (`HEAD:dir/..`, `@{-1}`, `main@{yesterday}`).
        sha = self._git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}",
                        check=False).strip() if rev and not rev.startswith("-") else ""
        try:
            commit = self.repo.commit(sha) if sha else None
        except (git.GitError, git.BadName, git.BadObject, ValueError):
            commit = None
        if commit is None:
            raise ScmError(f"unknown revision '{rev}'", hint="run 'git log --oneline' to list revisions")
        prefix = check_relpath(project_prefix, source="project root", allow_root=True) if project_prefix else ""
        return GitRevisionFiles(commit, label=rev, prefix=prefix)

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

    def is_revision(self, name: str) -> bool:
        """True when `name` names a commit (a branch, a tag, a sha)."""
        if not name or name.startswith("-"):
            return False
        return bool(self._git("rev-parse", "--verify", "-q", f"{name}^{{commit}}", check=False).strip())

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


# A git tree entry's mode: a symbolic link (its blob holds the target path, not content).
_LINK_MODE = 0o120000


class GitRevisionFiles:
    """The project's files in one commit, read from git's object database (a `RevisionFiles`).

    Paths pass the lexical path gate (`check_relpath`). A symbolic link stored in the commit is
    never followed: where it lies the target cannot be checked against the real filesystem, and a
    link's blob is a path that could lead anywhere. Listing and `is_file` skip it; reading it by name
    (`read_bytes`, a directory on the way) is an `UnsafePathError` saying so, so that a params file
    kept as a link is an error, not silently missing. Submodules are neither files nor directories.

    Each directory's entries are read once and kept (a commit never changes), so reading N files
    in the same directories costs N blob reads; `list_files` walks the tree once per call.
    Safe to share between threads (one lock around the object database).
    """

    __slots__ = ("_commit", "_dirs", "_label", "_lock", "_prefix")

    def __init__(self, commit: Any, *, label: str, prefix: str = "") -> None:
        self._commit = commit
        self._label = label
        self._prefix = prefix
        self._dirs: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    @property
    def rev(self) -> str:
        """The full commit sha."""
        sha: str = self._commit.hexsha
        return sha

    @property
    def label(self) -> str:
        """The revision as the user named it."""
        return self._label

    def describe(self, relpath: str) -> str:
        """`relpath at 'label'`."""
        return describe_at(relpath, self.rev, self._label)

    def _entries(self, dirpath: str) -> dict[str, Any] | None:
        """Entries of the project directory `dirpath` by name; None when it is not a directory there."""
        if dirpath in self._dirs:
            return self._dirs[dirpath]
        # Each directory from its parent's entries, top down in a loop (a path may be 1,500 levels deep).
        missing = [dirpath]
        while missing[-1] and (parent := missing[-1].rpartition("/")[0]) not in self._dirs:
            missing.append(parent)
        for path in reversed(missing):
            self._dirs[path] = self._load(path)
        return self._dirs[dirpath]

    def _load(self, dirpath: str) -> dict[str, Any] | None:
        """`_entries` of `dirpath`, its parent's being known."""
        if dirpath:
            parent, _, name = dirpath.rpartition("/")
            item = (self._dirs[parent] or {}).get(name)
            if item is not None and is_link_blob(item):
                raise UnsafePathError(
                    f"{self.describe(dirpath)}: is a symbolic link; pipe does not follow links read from git history"
                )
            tree = item if item is not None and item.type == "tree" else None
        else:
            tree = self._commit.tree
            for part in self._prefix.split("/") if self._prefix else ():
                found = {i.name: i for i in tree}.get(part) if tree is not None else None
                tree = found if found is not None and found.type == "tree" else None
        return None if tree is None else {item.name: item for item in tree}

    def _item(self, relpath: str) -> Any:
        rel = check_relpath(relpath, source=self.describe(relpath), allow_root=True)
        parent, _, name = rel.rpartition("/")
        with self._lock:
            return (self._entries(parent) or {}).get(name) if rel else self._commit.tree

    def read_bytes(self, relpath: str) -> bytes | None:
        """The blob's content, None when no file is there.

        Raises:
            UnsafePathError: the path gate refuses `relpath`, or it (or a directory on the way) is a link.
        """
        item = self._item(relpath)
        if item is None or item.type != "blob":
            return None
        if is_link_blob(item):
            raise UnsafePathError(
                f"{self.describe(relpath)}: is a symbolic link; pipe does not follow links read from git history"
            )
        with self._lock:
            data: bytes = item.data_stream.read()
        return data

    def size(self, relpath: str) -> int | None:
        """The blob's size in bytes (from the object header, not its content), None when no file is there.

        Raises:
            UnsafePathError: the path gate refuses `relpath`.
        """
        item = self._item(relpath)
        if item is None or item.type != "blob":
            return None
        with self._lock:
            size: int = item.size
        return size

    def read_text(self, relpath: str) -> str | None:
        """The blob's UTF-8 text, None when absent.

        Raises:
            UnsafePathError: as `read_bytes`.
            SpecError: the blob is not UTF-8; the message names the file and the revision.
        """
        data = self.read_bytes(relpath)
        return None if data is None else decode_utf8(data, source=self.describe(relpath))

    def is_file(self, relpath: str) -> bool:
        """True for a regular blob (not a link, not a submodule)."""
        item = self._item(relpath)
        return item is not None and item.type == "blob" and not is_link_blob(item)

    def is_dir(self, relpath: str) -> bool:
        """True for a tree ("" is the project root, when it exists in the commit); a link is not one."""
        rel = check_relpath(relpath, source=self.describe(relpath), allow_root=True)
        if rel and (item := self._item(rel)) is not None and is_link_blob(item):
            return False
        with self._lock:
            return self._entries(rel) is not None

    def list_files(self, *, under: str = "", suffix: str = "") -> list[str]:
        """Sorted project-relative paths of the regular files at or under `under` ending with `suffix`.

        One walk of the subtree; links, submodules and anything under a `.git`/`.pipe` directory are skipped.
        """
        rel = check_relpath(under, source=self.describe(under), allow_root=True)
        if self.is_file(rel):
            return [rel] if rel.endswith(suffix) else []
        found: list[str] = []
        with self._lock:
            if self._entries(rel) is None:
                return []
            stack = [(rel, self._entries(rel) or {})]
            while stack:
                top, entries = stack.pop()
                for name, item in entries.items():
                    path = f"{top}/{name}" if top else name
                    if not is_safe_relpath(path):
                        continue
                    if item.type == "tree":
                        stack.append((path, {i.name: i for i in item}))
                    elif item.type == "blob" and not is_link_blob(item) and name.endswith(suffix):
                        found.append(path)
        return sorted(found)


def is_link_blob(item: Any) -> bool:
    """True for a git blob that is a symbolic link (mode 120000): never followed at a revision."""
    return bool(item.type == "blob" and (item.mode & 0o170000) == _LINK_MODE)
