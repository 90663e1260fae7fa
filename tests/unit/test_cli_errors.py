"""OSErrors reaching the CLI: one line naming the path and the cause, exit 1; anything else stays a bug."""

from __future__ import annotations

import errno

import pytest

from pipeline_engine.ops import add as add_module
from tests.conftest import Cli, Workspace


def _failing_add(exc: OSError, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(add_module, "add", fail)


@pytest.mark.parametrize(
    ("exc", "expected", "hint"),
    [
        (OSError(errno.ENOSPC, "No space left on device", ".pipe/cache/objects/ab/.pipetmp-12-0123abcd"),
         "error: '.pipe/cache/objects/ab': no space left on device", "'pipe gc' removes unused cache objects"),
        # a local remote elsewhere: gc of this project's cache would not free that device
        (OSError(errno.ENOSPC, "No space left on device", "/mnt/backup/remote/tmp/.pipetmp-12-0123abcd"),
         "error: '/mnt/backup/remote/tmp': no space left on device", "the device holding it"),
        (OSError(errno.EMFILE, "Too many open files"),
         "error: too many open files (the operating system did not say which file)", "ulimit -n"),
        (OSError(errno.ENAMETOOLONG, "File name too long", ".pipetmp-1-aa", None, "x" * 300 + ".pipe"),
         f"error: '{'x' * 300}.pipe': file name too long", "shorter name"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "gone.csv"),
         "error: 'gone.csv': no such file or directory", None),
    ],
)
def test_os_errors_are_one_line_user_errors(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch, exc: OSError, expected: str, hint: str | None
) -> None:
    _failing_add(exc, monkeypatch)
    result = cli.run("add", "anything", exit_code=1)
    lines = result.stderr.splitlines()
    assert lines[0] == expected, result.stderr
    assert len(lines) == (2 if hint else 1) and (hint is None or hint in lines[1]), result.stderr


def test_an_os_error_with_neither_path_nor_known_cause_is_still_a_bug(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_add(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), monkeypatch)
    with pytest.raises(ConnectionResetError):
        cli.run("add", "anything")


def test_an_interrupt_python_wrapped_while_building_a_class_is_an_interrupt_not_a_bug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C landing in a class body while a command's module is imported reaches pipe as a
    RuntimeError ("Error calling __set_name__ ..."), raised from the KeyboardInterrupt."""
    from pipeline_engine import cli as cli_module

    def wrapped(**_kwargs: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance 'x' in 'StageLock'") from exc

    from pipeline_engine.core import signals

    monkeypatch.setattr(signals, "install", lambda: None)  # not in the test runner's process
    monkeypatch.setattr(cli_module.cli, "main", wrapped)
    with pytest.raises(SystemExit) as ended:
        cli_module.main()
    assert ended.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err and "internal error" not in err
