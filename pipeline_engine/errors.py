"""Every failure a user may see, as one tree of exceptions with exit codes.

```
PipeError                     base; str(exc) is the user message; .hint; exit_code = 1
├── NotAProjectError          no .pipe/ found upward from cwd
├── ProjectExistsError        `pipe init` where .pipe/ already exists
├── PathError                 a path outside the project, inside .pipe/, overlapping, git-tracked
│   └── UnsafePathError       (also a SpecError) a file names a path the path gate refuses
├── SpecError                 pipeline.yaml / params / pointer file invalid (file, stage, key)
│   └── CycleError            lists the stages on the cycle
├── ConfigError               .pipe/config*.yaml invalid, unknown remote option
├── StageNotFoundError
├── StageFailedError          a stage command exited non-zero; exit_code = 3
├── MissingOutputError        a stage finished but did not produce a declared out
├── LockedError               another pipe process holds the project lock
├── CheckoutError             checkout would overwrite or lose user changes
├── CacheError
│   ├── ObjectNotFoundError
│   └── CorruptObjectError    content does not match its oid
├── RemoteError               wraps fsspec/OS errors with the remote name and URL
│   └── RemoteNotConfiguredError
├── ScmError                  wraps gitpython errors
└── PipeInterrupted           Ctrl-C during a run; exit_code = 130
```

This module imports nothing from the package, so every layer may raise these.
"""

from __future__ import annotations

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
    "ProjectExistsError",
    "RemoteError",
    "RemoteNotConfiguredError",
    "ScmError",
    "SpecError",
    "StageFailedError",
    "StageNotFoundError",
    "UnsafePathError",
]


class PipeError(Exception):
    """Base of every error the user should see; the message is shown as is."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class NotAProjectError(PipeError):
    """Raised when no `.pipe/` directory is found from the cwd upwards."""


class ProjectExistsError(PipeError):
    """Raised by `pipe init` when the project is already initialised (without -f)."""


class PathError(PipeError):
    """Raised for a path the command must refuse: outside the project, in `.pipe/`, overlapping."""


class SpecError(PipeError):
    """Raised when pipeline.yaml, a params file or a pointer file is invalid."""


class UnsafePathError(PathError, SpecError):
    """Raised by the path gate (core.pathgate) for a path read from a file that could reach outside
    the data it tracks: both a refused path and an invalid file."""


class CycleError(SpecError):
    """Raised when the stages' deps and outs form a cycle; the message lists it."""


class ConfigError(PipeError):
    """Raised for an invalid config file or an unknown config key."""


class StageNotFoundError(PipeError):
    """Raised when a target names no stage and no tracked path."""


class StageFailedError(PipeError):
    """Raised when a stage's command exits non-zero."""

    exit_code = 3

    def __init__(self, message: str, *, returncode: int = 1, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.returncode = returncode


class MissingOutputError(PipeError):
    """Raised when a stage finished but one of its declared outs does not exist."""


class LockedError(PipeError):
    """Raised when another pipe process holds the project lock."""


class CheckoutError(PipeError):
    """Raised when checkout would overwrite files the user changed; nothing was lost."""


class CacheError(PipeError):
    """Raised for problems with the local object store."""


class ObjectNotFoundError(CacheError):
    """Raised when an object is in neither the cache nor the remote asked."""


class CorruptObjectError(CacheError):
    """Raised when an object's content does not hash to its oid."""


class RemoteError(PipeError):
    """Raised when a remote operation fails; names the remote and its URL."""


class RemoteNotConfiguredError(RemoteError):
    """Raised when no remote is given and no default remote is set."""


class ScmError(PipeError):
    """Raised when a git operation fails or git is required but absent."""


class PipeInterrupted(PipeError):
    """Raised when the user pressed Ctrl-C; finished work is kept."""

    exit_code = 130
