"""Indexes of many revisions for one command: what commits share is read and parsed once.

`pipe gc -A`, `pipe push -A` and `pipe fetch -A` read the pointers and the lock of every commit.
Consecutive commits share most of them, so `History.index(revision)` returns a `ProjectIndex`
whose pointers, lock and pipeline.yaml come from a per-command memo keyed by git object ids:
a directory tree already listed is not listed again, and a pointer file, lock or pipeline.yaml
blob already parsed is not read or parsed again. Everything else (targets, stage outs, remotes)
is the `ProjectIndex` logic unchanged, so a revision means the same thing to every command.

Blobs are read through gitpython, never checked out; paths pass the path gate exactly as
`GitRevisionFiles.list_files` would list them (links, submodules and protected names skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, parse_pointer
from pipeline_engine.core.layout import tmp_dir
from pipeline_engine.core.pathgate import check_relpath, is_safe_relpath
from pipeline_engine.errors import PipeError, ScmError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.revisions import Revision
from pipeline_engine.pipeline.interpolate import BoolStyle, ListStyle
from pipeline_engine.pipeline.lock import LOCK_FILE, LockFile, parse_lock
from pipeline_engine.pipeline.spec import PIPELINE_FILE, PipelineSpec, parse_spec
from pipeline_engine.project import Project
from pipeline_engine.scm.git import is_link_blob

__all__ = ["History", "PointerError"]

# The mode of a directory entry: a commit's root tree is built from its sha with it.
_TREE_MODE = 0o040000
# Commits named on one `git log` command line.
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class PointerError:
    """A pointer file at a revision that could not be parsed: its path and the error (naming it and the revision)."""

    relpath: str
    error: PipeError


@dataclass(slots=True)
class _Memo:
    """Per-command memo; keys are git object ids (content), values what parsing them gave."""

    trees: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    pointers: dict[tuple[str, str], Pointer | PipeError] = field(default_factory=dict)
    locks: dict[str, LockFile | PipeError] = field(default_factory=dict)
    specs: dict[tuple[str, str], PipelineSpec] = field(default_factory=dict)
    templated: dict[str, bool] = field(default_factory=dict)  # pipeline.yaml blob -> has `${`


class History:
    """The `ProjectIndex` of each revision a command covers, sharing one memo (see the module docstring).

    Not thread-safe: build the indexes and read their parts before starting worker threads.
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self._memo = _Memo()
        self._workspace: ProjectIndex | None = None
        self._root_trees: dict[str, str] = {}  # commit sha -> its root tree's sha (`read_trees`)

    def read_trees(self, revisions: Sequence[Revision]) -> None:
        """Look up the root trees of `revisions` in one git call per 1000 (gitpython parses a commit in ~1 ms).

        Raises:
            ScmError: git cannot read the commits.
        """
        git = self.project.git
        shas = [r.sha for r in revisions if r.sha is not None and r.sha not in self._root_trees]
        if git is None or not shas:
            return
        import git as gitpython

        for start in range(0, len(shas), _BATCH):
            try:
                out: str = git.repo.git.log("--no-walk=unsorted", "--format=%H %T", *shas[start:start + _BATCH])
            except gitpython.GitCommandError as exc:
                raise ScmError(f"cannot read the commits of '{git.root}': {exc.stderr.strip()}") from exc
            for line in out.splitlines():
                sha, _, tree = line.partition(" ")
                self._root_trees[sha] = tree

    def index(self, revision: Revision) -> ProjectIndex:
        """The index of `revision`: the workspace's (built once), or a commit's read from git.

        Raises:
            ScmError: the commit cannot be read.
        """
        if revision.sha is None:
            if self._workspace is None:
                self._workspace = ProjectIndex(self.project)
            return self._workspace
        git = self.project.git
        if git is None:
            raise ScmError(f"'{self.project.root}' is not in a git repository, so it has no revision "
                           f"'{revision.label}'")
        import git as gitpython

        from pipeline_engine.scm.git import GitRevisionFiles

        try:
            root = self._root_trees.get(revision.sha)
            if root is None:
                commit = git.repo.commit(revision.sha)
                root = commit.tree
            else:  # a commit object read only if a file is read through `files` (a params file)
                commit = gitpython.Commit(git.repo, bytes.fromhex(revision.sha))
                root = gitpython.Tree(git.repo, bytes.fromhex(root), _TREE_MODE, "")
            tree = _subtree(root, self.project.relpath_from_git(""))
        except (gitpython.GitError, ValueError) as exc:
            raise ScmError(f"cannot read revision '{revision.label}': {exc}") from exc
        prefix = check_relpath(self.project.relpath_from_git(""), source="project root", allow_root=True)
        files = GitRevisionFiles(commit, label=revision.label, prefix=prefix)
        return _CommitIndex(self.project, files, tree, self._memo)

    @staticmethod
    def pointers_of(index: ProjectIndex) -> tuple[tuple[Pointer, ...], tuple[PointerError, ...]]:
        """The readable pointer files of `index`, and each one that could not be parsed (gc reports them all).

        The same content gives the same `PointerError.error` object at every revision: report each once.
        """
        if isinstance(index, _CommitIndex):
            return index.pointer_errors()
        found: list[Pointer] = []
        errors: list[PointerError] = []
        files = index.files
        for rel in files.list_files(suffix=POINTER_SUFFIX):
            try:
                found.append(parse_pointer(files.read_bytes(rel) or b"", rel, source=files.describe(rel)))
            except PipeError as exc:
                errors.append(PointerError(rel, exc))
        return tuple(found), tuple(errors)


def _subtree(tree: Any, prefix: str) -> Any:
    """The tree of the project directory in a commit, or None when the commit has no such directory."""
    for part in prefix.strip("/").split("/") if prefix.strip("/") else ():
        found = next((i for i in tree if i.name == part), None)
        if found is None or found.type != "tree":
            return None
        tree = found
    return tree


class _CommitIndex(ProjectIndex):
    """A commit's index whose pointers, lock and pipeline.yaml are parsed once per blob (the shared memo)."""

    def __init__(self, project: Project, files: Any, tree: Any, memo: _Memo) -> None:
        super().__init__(project, files)
        self._tree = tree
        self._memo = memo
        self._schema_memo = tmp_dir(project.control_dir)

    def pointer_errors(self) -> tuple[tuple[Pointer, ...], tuple[PointerError, ...]]:
        """Every readable pointer file of the commit, and those that could not be parsed (gc reports them all)."""
        found: list[Pointer] = []
        errors: list[PointerError] = []
        for rel, blob in self._pointer_blobs():
            key = (rel, blob.hexsha)
            parsed = self._memo.pointers.get(key)
            if parsed is None:
                try:
                    parsed = parse_pointer(blob.data_stream.read(), rel, source=self.files.describe(rel),
                                           memo=self._schema_memo)
                except PipeError as exc:
                    parsed = exc
                self._memo.pointers[key] = parsed
            if isinstance(parsed, PipeError):
                errors.append(PointerError(rel, parsed))
            else:
                found.append(parsed)
        return tuple(found), tuple(errors)

    @cached_property
    def has_pipeline(self) -> bool:
        """As `ProjectIndex.has_pipeline`, from the tree already listed (no commit object read)."""
        return self._blob(PIPELINE_FILE) is not None

    @cached_property
    def pointers(self) -> tuple[Pointer, ...]:
        """As `ProjectIndex.pointers`, parsed once per distinct pointer blob.

        Raises:
            SpecError: a pointer file is invalid (the message names it and the revision).
        """
        found, errors = self.pointer_errors()
        if errors:
            raise errors[0].error
        return found

    @cached_property
    def lock(self) -> LockFile:
        """As `ProjectIndex.lock`, parsed once per distinct blob.

        Raises:
            SpecError: the lock file is invalid (the message names it and the revision).
        """
        blob = self._blob(LOCK_FILE)
        if blob is None:
            return LockFile()
        parsed = self._memo.locks.get(blob.hexsha)
        if parsed is None:
            try:
                parsed = parse_lock(blob.data_stream.read(), source=self.files.describe(LOCK_FILE),
                                    memo=self._schema_memo)
            except PipeError as exc:
                parsed = exc
            self._memo.locks[blob.hexsha] = parsed
        if isinstance(parsed, PipeError):
            raise parsed
        return parsed

    @cached_property
    def spec(self) -> PipelineSpec:
        """As `ProjectIndex.spec`; parsed once per pipeline.yaml blob unless it interpolates `${...}`.

        A text with `${...}` reads params and vars files, so it is parsed again for each project tree.

        Raises:
            SpecError: the file, a params file or a vars file it reads is invalid.
        """
        blob = self._blob(PIPELINE_FILE)
        if blob is None:
            return PipelineSpec()
        templated = self._memo.templated.get(blob.hexsha)
        if templated is None:
            templated = self._memo.templated[blob.hexsha] = b"${" in blob.data_stream.read()
        key = (blob.hexsha, self._tree.hexsha if templated else "")
        parsed = self._memo.specs.get(key)
        if parsed is None:
            data: bytes = blob.data_stream.read()
            from pipeline_engine.core.revision import decode_utf8

            config = self.project.config
            # Errors are not remembered: one may come from a params file of this commit only.
            text = decode_utf8(data, source=self.files.describe(PIPELINE_FILE))
            parsed = parse_spec(text, files=self.files, bool_style=BoolStyle(config.parsing_bool),
                                list_style=ListStyle(config.parsing_list), memo=self._schema_memo)
            self._memo.specs[key] = parsed
        return parsed

    def _blob(self, name: str) -> Any:
        """The regular-file blob `name` at the project root of the commit, or None."""
        if self._tree is None:
            return None
        item = next((i for i in self._tree if i.name == name), None)
        if item is None or item.type != "blob" or is_link_blob(item):
            return None
        return item

    def _pointer_blobs(self) -> list[tuple[str, Any]]:
        """(project-relative path, blob) of every pointer file, sorted; unchanged subtrees come from the memo."""
        if self._tree is None:
            return []
        return sorted(self._walk(self._tree), key=lambda pair: pair[0])

    def _walk(self, root: Any) -> list[tuple[str, Any]]:
        # Subtrees before their parent, with a stack: a commit may nest directories 1,500 deep.
        trees = self._memo.trees
        stack = [root]
        while stack:
            tree = stack[-1]
            if tree.hexsha in trees:  # listed already (a commit seen before, or the same subtree twice)
                stack.pop()
                continue
            pending = [i for i in tree if i.type == "tree" and i.hexsha not in trees]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            listed: list[tuple[str, Any]] = []
            for item in tree:
                if item.type == "tree":
                    listed.extend((f"{item.name}/{rel}", blob) for rel, blob in trees[item.hexsha])
                elif (item.type == "blob" and item.name.endswith(POINTER_SUFFIX)
                      and not is_link_blob(item)):
                    listed.append((item.name, item))
            trees[tree.hexsha] = listed
        listed = trees[root.hexsha]
        return [(rel, blob) for rel, blob in listed if is_safe_relpath(rel)]
