"""`pipe artifacts list|register|assign|deprecate|show|get`: the model registry on GTO's git tags.

`artifacts:` in pipeline.yaml names what can be registered; versions and stage promotions are
annotated tags (scm/tags.py), read back into a `Registry` the way GTO reads them: a version is
active until deregistered, each stage holds the version assigned to it last (one per stage), the
latest version is the greatest active semantic version, and a deprecated artifact stays listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.errors import PipeError, ScmError, SpecError
from pipeline_engine.index.project_index import ProjectIndex
from pipeline_engine.index.tracked import read_at
from pipeline_engine.pipeline.outputs import ArtifactSpec
from pipeline_engine.project import Project
from pipeline_engine.scm.tags import (
    RegistryTag,
    check_name,
    check_version,
    create_tag,
    read_tags,
    resolve_commit,
    tag_name,
)

__all__ = [
    "ArtifactState", "VersionState", "artifacts_get", "assign", "deprecate", "list_artifacts",
    "local_path", "register", "registry", "resolve", "show",
]


@dataclass(slots=True)
class VersionState:
    """One registered version: its commit, tag, creation time, stages it holds now, and whether it is active."""

    version: str
    rev: str
    tag: str
    created: int
    active: bool = True
    stages: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ArtifactState:
    """An artifact as the registry tags describe it."""

    name: str
    versions: dict[str, VersionState] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # stage -> version (or commit sha if unregistered)
    deprecated: bool = False
    counter: int = 0  # the greatest '#N' among its tags

    @property
    def latest(self) -> str | None:
        """The greatest active version, by semantic version order."""
        active = [v for v in self.versions.values() if v.active]
        return max(active, key=lambda v: semver_key(v.version)).version if active else None

    def version_at(self, rev: str) -> VersionState | None:
        """The active version registered at commit `rev`."""
        return next((v for v in self.versions.values() if v.rev == rev and v.active), None)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `pipe artifacts show --json`."""
        return {
            "name": self.name, "latest": self.latest, "deprecated": self.deprecated, "stages": dict(self.stages),
            "versions": [
                {"version": v.version, "rev": v.rev, "tag": v.tag, "created_at": v.created,
                 "active": v.active, "stages": list(v.stages)}
                for v in sorted(self.versions.values(), key=lambda v: semver_key(v.version), reverse=True)
            ],
        }


def semver_key(version: str) -> tuple[int, int, int, int, str]:
    """A sort key for 'vX.Y.Z[-pre][+build]': a pre-release sorts before its release."""
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([^+]*))?", version)
    if m is None:
        return (-1, -1, -1, 0, version)
    return (int(m[1]), int(m[2]), int(m[3]), 0 if m[4] else 1, m[4] or "")


def _git_root(project: Project) -> Path:
    git = project.git
    if git is None:
        raise ScmError(f"'{project.root}' is not in a git repository; the registry lives in git tags",
                       hint="run 'git init' and commit first")
    return git.root


def registry(root: Path) -> dict[str, ArtifactState]:
    """Every artifact the registry tags of the repository at `root` name, by name, events replayed oldest first.

    Raises:
        ScmError: git fails.
    """
    return _replay(read_tags(root))


def _replay(tags: list[RegistryTag]) -> dict[str, ArtifactState]:
    """Events oldest first -> states. A stage is assigned per version (GTO): unassigning it from the
    version that holds it gives it back to the version it was assigned to before, if still assigned."""
    arts: dict[str, ArtifactState] = {}
    assigned: dict[str, dict[tuple[str, str], int]] = {}  # artifact -> (stage, version or commit) -> event number
    for number, t in enumerate(tags):
        art = arts.setdefault(t.artifact, ArtifactState(t.artifact))
        live = assigned.setdefault(t.artifact, {})
        art.counter = max(art.counter, t.counter or 0)
        if t.action == "register" and t.version is not None:
            art.versions[t.version] = VersionState(t.version, t.rev, t.tag, t.created)
        elif t.action == "deregister" and t.version in art.versions:
            art.versions[t.version].active = False
        elif t.action == "deprecate":
            art.deprecated = True
        elif t.stage is not None and t.action in ("assign", "unassign"):
            found = art.version_at(t.rev)
            key = (t.stage, found.version if found else t.rev)
            if t.action == "assign":
                live[key] = number
            else:
                live.pop(key, None)
    for name, art in arts.items():
        for (stage, held), number in sorted(assigned.get(name, {}).items(), key=lambda kv: kv[1]):
            version = art.versions.get(held)
            if version is None or version.active:
                art.stages[stage] = held  # the latest assignment still in force wins (one version per stage)
        for stage, held in art.stages.items():
            if held in art.versions:
                art.versions[held].stages.append(stage)
    return arts


def list_artifacts(project: Project) -> dict[str, ArtifactSpec]:
    """The validated `artifacts:` of pipeline.yaml in the workspace, by name.

    Raises:
        SpecError: pipeline.yaml or its `artifacts:` is invalid.
    """
    return dict(ProjectIndex(project).spec.artifacts)


def show(project: Project, name: str | None = None) -> dict[str, ArtifactState]:
    """The registry state of one artifact (`name`) or of all.

    Raises:
        SpecError: `name` is invalid, or no tag registers or assigns it.
    """
    arts = registry(_git_root(project))
    if name is None:
        return arts
    check_name(name, "artifact name")
    if name not in arts:
        raise SpecError(f"artifact '{name}' has no versions in the registry",
                        hint=f"run 'pipe artifacts register {name}'")
    return {name: arts[name]}


def register(project: Project, name: str, version: str | None = None, rev: str = "HEAD", *,
             bump: str | None = None, message: str | None = None) -> str:
    """Tag commit `rev` as version `version` of `name` (or the next one: `bump` major|minor|patch). Returns the tag.

    Without a version, the greatest active version is bumped (its patch unless `bump` says
    otherwise); the first version is v0.0.1, as GTO's.

    Raises:
        SpecError: an invalid name or version, the version exists, or this commit has a version already.
        ScmError: `rev` names no commit.
    """
    check_name(name, "artifact name")
    root = _git_root(project)
    with project.mutex(f"pipe artifacts register {name}"):
        art = registry(root).get(name, ArtifactState(name))
        commit = resolve_commit(root, rev)
        here = art.version_at(commit)
        if here is not None:
            raise SpecError(f"commit {commit[:10]} is registered already as {name} {here.version}",
                            hint="register another commit, or deprecate that version first")
        if version is not None:
            version = check_version(version)
            if version in art.versions:
                raise SpecError(f"{name} {version} is registered already (tag '{art.versions[version].tag}')")
        elif art.latest is None:
            if bump:
                raise SpecError(f"cannot bump {name}: no version is registered yet",
                                hint=f"run 'pipe artifacts register {name}' for v0.0.1, or give a version")
            version = "v0.0.1"
        else:
            major, minor, patch = semver_key(art.latest)[:3]
            version = {"major": f"v{major + 1}.0.0", "minor": f"v{major}.{minor + 1}.0"}.get(
                bump or "patch", f"v{major}.{minor}.{patch + 1}")
        tag = tag_name(name, "register", version=version)
        create_tag(root, tag, commit, message or f"Registering artifact {name} version {version}")
        return tag


def assign(project: Project, name: str, stage: str, version: str | None = None, rev: str = "HEAD", *,
           force: bool = False, message: str | None = None) -> str:
    """Promote a version of `name` (or the commit `rev`, registering it first) to `stage`. Returns the tag.

    Raises:
        SpecError: an invalid name, stage or version, the version is not registered, or it is in the stage already.
    """
    check_name(name, "artifact name")
    check_name(stage, "stage name")
    root = _git_root(project)
    with project.mutex(f"pipe artifacts assign {name}"):
        art = registry(root).get(name, ArtifactState(name))
        if version is not None:
            version = check_version(version)
            if version not in art.versions or not art.versions[version].active:
                raise SpecError(f"{name} {version} is not registered", hint=f"see 'pipe artifacts show {name}'")
            commit = art.versions[version].rev
        else:
            commit = resolve_commit(root, rev)
            found = art.version_at(commit)
            if found is None:
                # registered here rather than through register(), which would take the mutex we hold
                tag = tag_name(name, "register", version=_next_patch(art))
                version = tag.split("@", 1)[1]
                create_tag(root, tag, commit, f"Registering artifact {name} version {version}")
                art = registry(root)[name]
            else:
                version = found.version
        if not force and art.stages.get(stage) == version:
            raise SpecError(f"{name} {version} is in stage '{stage}' already", hint="pass --force to tag it again")
        tag = tag_name(name, "assign", stage=stage, counter=art.counter + 1)
        create_tag(root, tag, commit, message or f"Assigning stage {stage} to artifact {name} version {version}")
        return tag


def _next_patch(art: ArtifactState) -> str:
    if art.latest is None:
        return "v0.0.1"
    major, minor, patch = semver_key(art.latest)[:3]
    return f"v{major}.{minor}.{patch + 1}"


def deprecate(project: Project, name: str, version: str | None = None, stage: str | None = None, *,
              message: str | None = None) -> str:
    """Deprecate the artifact, deregister one version, or (with `stage`) unassign a stage. Returns the tag.

    Raises:
        SpecError: an invalid or unknown name, version or stage, or it is deprecated already.
    """
    check_name(name, "artifact name")
    root = _git_root(project)
    with project.mutex(f"pipe artifacts deprecate {name}"):
        arts = registry(root)
        if name not in arts:
            raise SpecError(f"artifact '{name}' has no versions in the registry")
        art = arts[name]
        if stage is not None:
            check_name(stage, "stage name")
            if stage not in art.stages:
                raise SpecError(f"no version of {name} is in stage '{stage}'")
            held = art.stages[stage]
            commit = art.versions[held].rev if held in art.versions else held
            tag = tag_name(name, "unassign", stage=stage, counter=art.counter + 1)
            text = f"Unassigning stage '{stage}' to artifact '{name}' version '{held}'"
        elif version is not None:
            version = check_version(version)
            if version not in art.versions or not art.versions[version].active:
                raise SpecError(f"{name} {version} is not an active registered version")
            commit = art.versions[version].rev
            tag = tag_name(name, "deregister", version=version)  # GTO: simple, no counter
            text = f"Deregistering artifact {name} version {version}"
        else:
            if art.deprecated:
                raise SpecError(f"artifact '{name}' is deprecated already")
            firsts = [v.rev for v in sorted(art.versions.values(), key=lambda v: v.created)]
            commit = firsts[0] if firsts else "HEAD"
            tag = tag_name(name, "deprecate")
            text = f"Deprecating artifact '{name}'"
        create_tag(root, tag, commit, message or text)
        return tag


def _choose(arts: dict[str, ArtifactState], name: str, version: str | None, stage: str | None,
            where: str) -> str:
    """The commit of `name` at `version`, in `stage`, or at its latest version."""
    check_name(name, "artifact name")
    art = arts.get(name)
    if art is None:
        raise SpecError(f"artifact '{name}' has no versions in the registry {where}")
    if stage is not None:
        check_name(stage, "stage name")
        if stage not in art.stages:
            raise SpecError(f"no version of {name} is in stage '{stage}' {where}")
        chosen = art.stages[stage]
    else:
        chosen = check_version(version) if version is not None else (art.latest or "")
    held = art.versions.get(chosen)
    if held is None and stage is None:
        raise SpecError(f"{name} {chosen or '(no active version)'} is not registered {where}")
    return held.rev if held is not None else chosen


def _path_at(index: ProjectIndex, name: str, commit: str, where: str) -> str:
    spec = index.spec.artifacts.get(name)
    if spec is None:
        raise SpecError(f"'{name}' is not in artifacts: of pipeline.yaml at {commit[:10]} {where}")
    return spec.path


def resolve(source: Project, name: str, *, version: str | None = None, stage: str | None = None) -> tuple[str, str]:
    """(commit sha, artifact path) of `name` at `version`, in `stage`, or at the latest version (DVC's artifacts_show).

    The path is read from `artifacts:` of pipeline.yaml at that commit.

    Raises:
        SpecError: an unknown artifact, version or stage, or no such artifact in pipeline.yaml at that commit.
    """
    where = f"in '{source.root}'"
    commit = _choose(registry(_git_root(source)), name, version, stage, where)
    return commit, _path_at(ProjectIndex.at(source, commit), name, commit, where)


def artifacts_get(url: str, name: str, *, version: str | None = None, stage: str | None = None,
                  out: Path | None = None, project: Project | None = None) -> Path:
    """Write the file artifact `name` registered in the pipe project at git URL `url`. Returns where.

    The version is `version`, the one in `stage`, or the latest. A local repository (a path or
    file://) is read directly: its git objects, or its local cache for tracked data. Any other
    URL: the tags come from `git ls-remote`, the files from a scratch clone (index.external:
    untrusted input, `project`'s temp directory) and tracked data from the source's default remote.

    Raises:
        SpecError: an unknown artifact, version or stage, or no such artifact in pipeline.yaml at that commit.
        NotAProjectError: a local `url` is not a pipe project.
        ObjectNotFoundError: the file is tracked and its object is in neither the source's cache nor remote.
        ScmError, RemoteError: the source cannot be read.
    """
    from pipeline_engine.index.external import is_local_url

    if is_local_url(url):
        source = Project.find(local_path(url))
        commit, path = resolve(source, name, version=version, stage=stage)
        data = read_at(ProjectIndex.at(source, commit), path)
    else:
        commit, path, data = _get_remote(url, name, version, stage, project)
    if data is None:
        raise PipeError(f"'{path}' (artifact '{name}') is not a file at {commit[:10]} in '{url}'",
                        hint="artifacts that are directories are not supported by 'pipe artifacts get' yet")
    dest = out if out is not None else Path(Path(path).name)
    if dest.is_dir():
        dest = dest / Path(path).name
    atomic_write(dest, data)
    return dest


def _get_remote(url: str, name: str, version: str | None, stage: str | None,
                project: Project | None) -> tuple[str, str, bytes | None]:
    from pipeline_engine.core.redact import mask_url
    from pipeline_engine.index.external import download_source, open_external
    from pipeline_engine.scm.tags import remote_tags

    where = f"in '{mask_url(url)}'"
    commit = _choose(_replay(remote_tags(url)), name, version, stage, where)
    with open_external(project, url, commit) as ext:
        path = _path_at(ext.index, name, commit, where)
        data = ext.index.files.read_bytes(path)
        if data is None:
            record = download_source(ext, path, ext.index.project.store)
            data = None if record is None or record.isdir else ext.index.project.store.read_bytes(record.oid)
        return commit, path, data


def local_path(url: str) -> Path:
    """The directory a local repository URL (a path or file://) names.

    Raises:
        PipeError: a remote git URL (not supported yet).
    """
    if url.startswith("file://"):
        return Path(url[len("file://"):])
    if "://" in url or re.match(r"^[\w.-]+@[\w.-]+:", url):
        raise PipeError(f"'{url}': only local repositories are supported by 'pipe artifacts get' for now",
                        hint="clone it and pass the clone's path")
    return Path(url)
