"""`pipe doctor`: what a bug report needs: versions, backends, platform, cache, working link types, remotes.

Read-only apart from two probe files in the cache and `.pipe/tmp`, removed before returning.
Versions come from package metadata (`importlib.metadata`), never from importing the package:
`pipe doctor` stays as fast as `pipe --help`. Outside a project it reports what it can.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil

from pipeline_engine.cache.link import LinkType, link
from pipeline_engine.core.fsutil import remove_path, temp_name
from pipeline_engine.core.layout import objects_dir, tmp_dir
from pipeline_engine.core.redact import mask_text
from pipeline_engine.errors import NotAProjectError, PipeError
from pipeline_engine.ops.remote import RemoteInfo, list_remotes
from pipeline_engine.project import Project
from pipeline_engine.remote.backend import BACKENDS

__all__ = ["Backend", "DoctorReport", "LinkCheck", "Package", "ProjectReport", "check_link_types", "doctor", "filesystem_type"]

#: The distributions pipe's behaviour depends on, in the order a report lists them.
DEPENDENCIES = (
    "click", "rich", "pyyaml", "xxhash", "fsspec", "gitpython", "networkx", "pandas", "jsonschema", "psutil",
)


@dataclass(frozen=True, slots=True)
class Package:
    """An installed distribution's version, or None when it is not installed."""

    name: str
    version: str | None


@dataclass(frozen=True, slots=True)
class Backend:
    """One family of remote URLs and the package that serves it."""

    protocols: tuple[str, ...]
    package: Package
    extra: str | None


@dataclass(frozen=True, slots=True)
class LinkCheck:
    """Whether one link type works from the cache into the workspace here; `detail` says why not."""

    link_type: str
    works: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProjectReport:
    """The project part of the report: where the cache is, which link types work, the remotes."""

    root: str
    cache_dir: str
    cache_filesystem: str | None
    workspace_filesystem: str | None
    cache_types: tuple[str, ...]
    link_checks: tuple[LinkCheck, ...]
    remotes: tuple[RemoteInfo, ...]


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """Everything `pipe doctor` found; paths are absolute, URLs masked. `project` is None outside one."""

    pipe_version: str
    python: str
    python_executable: str
    platform: str
    git: str | None
    dependencies: tuple[Package, ...]
    backends: tuple[Backend, ...]
    project: ProjectReport | None
    problems: tuple[str, ...]


def doctor(start: Path | None = None) -> DoctorReport:
    """Inspect this installation and, when `start` (default: cwd) is inside one, its project."""
    problems: list[str] = []
    project: ProjectReport | None = None
    try:
        project = _inspect_project(Project.find(start), problems)
    except NotAProjectError:
        pass
    except PipeError as exc:  # e.g. an invalid config: still worth reporting the rest
        problems.append(mask_text(str(exc)))
    return DoctorReport(
        pipe_version=_version("pipeline-engine") or "unknown",
        python=f"{platform.python_implementation()} {platform.python_version()}",
        python_executable=sys.executable,
        platform=f"{platform.platform()} ({platform.machine()})",
        git=_git_version(),
        dependencies=tuple(Package(name, _version(name)) for name in DEPENDENCIES),
        backends=_backends(),
        project=project,
        problems=tuple(problems),
    )


def _inspect_project(project: Project, problems: list[str]) -> ProjectReport:
    cache_dir = project.cache_dir
    checks: tuple[LinkCheck, ...] = ()
    if objects_dir(cache_dir).is_dir():
        checks = check_link_types(objects_dir(cache_dir), tmp_dir(project.control_dir))
        working = {c.link_type for c in checks if c.works}
        if not working.intersection(project.config.cache_types):
            problems.append(
                f"none of the configured cache.type ({','.join(project.config.cache_types)}) works between "
                f"the cache and the workspace here; checkout will fail (add 'copy' to cache.type)"
            )
    else:
        problems.append(f"the cache directory '{cache_dir}' does not exist (yet)")
    try:
        remotes = tuple(list_remotes(project))
    except PipeError as exc:
        remotes = ()
        problems.append(mask_text(str(exc)))
    return ProjectReport(
        root=str(project.root),
        cache_dir=str(cache_dir),
        cache_filesystem=filesystem_type(cache_dir),
        workspace_filesystem=filesystem_type(project.root),
        cache_types=tuple(project.config.cache_types),
        link_checks=checks,
        remotes=remotes,
    )


def check_link_types(cache_side: Path, workspace_side: Path) -> tuple[LinkCheck, ...]:
    """Try every link type from a probe file in `cache_side` to `workspace_side`; remove both probes."""
    source = cache_side / temp_name(".doctor")
    checks = []
    try:
        workspace_side.mkdir(parents=True, exist_ok=True)
        source.write_bytes(b"pipe doctor probe\n")
        for kind in LinkType:
            dest = workspace_side / temp_name(".doctor")
            try:
                link(source, dest, (kind,))
                checks.append(LinkCheck(kind.value, True))
            except OSError as exc:
                checks.append(LinkCheck(kind.value, False, exc.strerror or str(exc)))
            finally:
                with contextlib.suppress(OSError):
                    remove_path(dest)
    except OSError as exc:
        where = f"'{cache_side}' and '{workspace_side}'"
        return (LinkCheck("any", False, f"cannot write probe files in {where}: {exc.strerror or exc}"),)
    finally:
        with contextlib.suppress(OSError):
            remove_path(source)
    return tuple(checks)


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding `path` (ext4, btrfs, tmpfs, ...), or None when unknown."""
    real = os.path.realpath(path)
    mounts = [
        p for p in psutil.disk_partitions(all=True)
        if real == p.mountpoint or real.startswith(p.mountpoint.rstrip(os.sep) + os.sep)
    ]
    return max(mounts, key=lambda p: len(p.mountpoint)).fstype if mounts else None


def _backends() -> tuple[Backend, ...]:
    return tuple(
        Backend(b.protocols, Package(b.package, _version(b.package)), b.extra)
        for b in BACKENDS
        if b.package != "fsspec"
    )


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git_version() -> str | None:
    try:
        proc = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip().removeprefix("git version ") or None
