"""pipe: declarative pipelines and data versioning. Public API: Project, the errors, __version__."""

from __future__ import annotations

from pipeline_engine.errors import (
    CacheError,
    CheckoutError,
    ConfigError,
    CorruptObjectError,
    CycleError,
    LockedError,
    MissingOutputError,
    NotAProjectError,
    ObjectNotFoundError,
    PathError,
    PipeError,
    PipeInterrupted,
    ProjectExistsError,
    RemoteError,
    RemoteNotConfiguredError,
    ScmError,
    SpecError,
    StageFailedError,
    StageNotFoundError,
    UnsafePathError,
)
from pipeline_engine.project import Project

__version__ = "0.1.0"

__all__ = [
    "CacheError",
    "CheckoutError",
    "ConfigError",
    "CorruptObjectError",
    "CycleError",
    "LockedError",
    "MissingOutputError",
    "NotAProjectError",
    "ObjectNotFoundError",
    "PathError",
    "PipeError",
    "PipeInterrupted",
    "Project",
    "ProjectExistsError",
    "RemoteError",
    "RemoteNotConfiguredError",
    "ScmError",
    "SpecError",
    "StageFailedError",
    "StageNotFoundError",
    "UnsafePathError",
    "__version__",
]
