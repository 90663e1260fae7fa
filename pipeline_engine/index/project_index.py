"""ProjectIndex: everything one command knows about a project at one revision, each part read once, on first use.

A command builds one index and passes it to the services it calls, so `pipe status train` parses
pipeline.yaml once, lists the pointer files once, and resolves its targets by one set of rules
(`index/targets.py`). The index is a snapshot: a command that changes the files it was built from
(writes the lock, adds a pointer) builds a new one for what it reads afterwards.

The same index reads the workspace or a git revision (`ProjectIndex.at(project, "HEAD~1")`): the
parts come from a `RevisionFiles`, so history and experiment commands read old pointers, locks,
params and specs through it without checking anything out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, parse_pointer
from pipeline_engine.core.layout import PIPELINE_FILE, tmp_dir
from pipeline_engine.core.record import PathRecord
from pipeline_engine.core.revision import RevisionFiles, WorkspaceFiles
from pipeline_engine.errors import ScmError, SpecError
from pipeline_engine.index.pointers import find_pointers
from pipeline_engine.index.targets import Selection, StageOut, select_targets
from pipeline_engine.project import Project

if TYPE_CHECKING:  # imported where used: a data-only command (checkout, push) never loads the pipeline code
    from pipeline_engine.index.pipeline import Pipeline
    from pipeline_engine.pipeline.lock import LockFile
    from pipeline_engine.pipeline.spec import PipelineSpec

__all__ = ["ProjectIndex"]


class ProjectIndex:
    """Stages, lock entries, pointers, owned paths, used objects and target resolution for one command.

    Every part is a lazily computed attribute: a data-only command never parses pipeline.yaml, and a
    stage-only one never lists pointer files. Not thread-safe while parts are first computed: build
    the parts a worker thread needs (`pipeline`, `pointers`) before starting threads.
    """

    def __init__(self, project: Project, files: RevisionFiles | None = None) -> None:
        self.project = project
        self.files: RevisionFiles = files or WorkspaceFiles(project.root)

    @classmethod
    def at(cls, project: Project, rev: str) -> ProjectIndex:
        """The index of the project as committed at git revision `rev` (read without checking it out).

        Raises:
            ScmError: the project is not in a git repository, or `rev` names no commit.
        """
        git = project.git
        if git is None:
            raise ScmError(f"'{project.root}' is not in a git repository, so it has no revision '{rev}'",
                           hint="run 'git init' and commit, or leave out the revision")
        return cls(project, git.files_at(rev, project_prefix=project.relpath_from_git("")))

    @property
    def is_workspace(self) -> bool:
        """True for the working tree; False for a committed revision."""
        return self.files.rev is None

    @cached_property
    def has_pipeline(self) -> bool:
        """True when the project has a pipeline.yaml (at this revision)."""
        return self.files.is_file(PIPELINE_FILE)

    @cached_property
    def spec(self) -> PipelineSpec:
        """pipeline.yaml, parsed and validated (an empty spec when there is none).

        Raises:
            SpecError: the file, a params file or a vars file it reads is invalid.
        """
        from pipeline_engine.pipeline.interpolate import BoolStyle, ListStyle
        from pipeline_engine.pipeline.spec import PipelineSpec, load_spec

        project = self.project
        if not self.has_pipeline:
            return PipelineSpec()
        # A text that passed the schema once is not checked again (core.schema's memo in .pipe/tmp),
        # at any revision: `metrics show -A` over 200 commits validates each distinct text once.
        return load_spec(self.files, bool_style=BoolStyle(project.config.parsing_bool),
                         list_style=ListStyle(project.config.parsing_list), memo=tmp_dir(project.control_dir))

    @cached_property
    def lock(self) -> LockFile:
        """pipeline.lock (empty when absent).

        Raises:
            SpecError: the lock file is invalid.
        """
        from pipeline_engine.pipeline.lock import read_lock

        return read_lock(self.files)

    @cached_property
    def pointers(self) -> tuple[Pointer, ...]:
        """Every pointer file, sorted by path (in the workspace git lists them: `index.pointers.find_pointers`).

        Raises:
            SpecError: a pointer file is invalid.
        """
        if self.is_workspace:
            return tuple(find_pointers(self.project))
        files = self.files
        return tuple(parse_pointer(files.read_bytes(rel) or b"", rel, source=files.describe(rel))
                     for rel in files.list_files(suffix=POINTER_SUFFIX))

    @cached_property
    def pipeline(self) -> Pipeline:
        """The DAG of pipeline.yaml (edges through pointer-tracked paths too) and the lock.

        Raises:
            SpecError: there is no pipeline.yaml, or it or pipeline.lock is invalid (CycleError for a cycle).
        """
        from pipeline_engine.index.pipeline import Pipeline
        from pipeline_engine.pipeline.graph import build_graph

        if not self.has_pipeline:
            raise SpecError(f"there is no {PIPELINE_FILE} in '{self.project.root}'",
                            hint="add a stage with 'pipe stage add -n NAME -d DEP -o OUT COMMAND'")
        stages = self.spec.stages
        tracked = [p.data_relpath for p in self.pointers] if stages else []
        return Pipeline(build_graph(stages, tracked_paths=tracked), self.lock)

    @cached_property
    def stage_outs(self) -> tuple[StageOut, ...]:
        """Cached outs recorded in pipeline.lock that pipeline.yaml declares as cached outs of that stage.

        `cache: false` outs are left out (their content is never in the store), and so are lock
        entries pipeline.yaml does not declare: pipeline.lock comes through git like everything
        else, and must not choose on its own what checkout writes or push sends.
        """
        if not self.has_pipeline or not self.lock.stages:  # a lock without pipeline.yaml declares nothing
            return ()
        declared = {(n, o.path) for n, s in self.spec.stages.items() for o in s.outs if o.cache}
        return tuple(StageOut(name, r) for name, entry in self.lock.stages.items() for r in entry.outs
                     if (name, r.path) in declared)

    @cached_property
    def owners(self) -> Mapping[str, str]:
        """Project-relative path -> who tracks it: a pointer file (`data.pipe`) or `stage 'NAME'`."""
        owned = {o.path: f"stage '{name}'" for name, s in self.spec.stages.items() for o in s.outs}
        owned.update((p.data_relpath, p.relpath) for p in self.pointers)
        return owned

    @cached_property
    def out_remotes(self) -> Mapping[str, str]:
        """Stage out path -> the remote its `remote:` names (DVC's per-output remote); outs without one are absent."""
        return {o.path: o.remote for s in self.spec.stages.values() for o in s.outs if o.remote}

    @cached_property
    def unpushed(self) -> frozenset[str]:
        """Stage outs declared `push: false`: cached locally, never uploaded."""
        return frozenset(o.path for s in self.spec.stages.values() for o in s.outs if not o.push)

    def select(self, targets: Sequence[str]) -> Selection:
        """Resolve user targets (stage names, `name@item`, groups, paths, paths inside tracked directories).

        Raises:
            StageNotFoundError: a target names nothing on disk and is close to a stage name.
        """
        return select_targets(self, targets)

    def used_outs(self, targets: Sequence[str] = (), *, remote: str | None = None,
                  fetch_manifests: bool = False) -> list[PathRecord]:
        """Every out the targets reference (all tracked data when empty): see `index.used.used_outs`.

        Raises:
            PathError: a target tracks nothing, or its pointer file was deleted from the workspace.
            ObjectNotFoundError: a target inside a directory whose manifest is not in the cache.
        """
        from pipeline_engine.index.used import used_outs

        return used_outs(self.project, targets=targets, remote=remote, fetch_manifests=fetch_manifests, index=self)
