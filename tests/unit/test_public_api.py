"""The public API is deliberate: changing it must change this test."""

from __future__ import annotations

import pipeline_engine


def test_public_api_is_frozen() -> None:
    assert sorted(pipeline_engine.__all__) == sorted([
        "CacheError", "CheckoutError", "ConfigError", "CorruptObjectError", "CycleError", "LockedError",
        "MissingOutputError", "NotAProjectError", "ObjectNotFoundError", "PathError", "PipeError",
        "PipeInterrupted", "Project", "ProjectExistsError", "RemoteError", "RemoteNotConfiguredError",
        "ScmError", "SpecError", "StageFailedError", "StageNotFoundError", "UnsafePathError", "__version__",
    ])


def test_every_error_is_a_pipe_error_with_an_exit_code() -> None:
    for name in pipeline_engine.__all__:
        obj = getattr(pipeline_engine, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, pipeline_engine.PipeError)
            assert obj.exit_code in (1, 3, 130)
