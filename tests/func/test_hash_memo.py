"""The hash memo saves work: an unchanged tracked file is never read again, a changed one exactly once.

Counted by wrapping the functions that read a file's bytes to hash them (`hash_file`, and
`copy_hashed`, which hashes while copying into the cache) wherever pipe's modules hold them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cacheutil import Hashed, counting_hashes
from tests.conftest import Cli, Workspace

FILES = {f"{i:02}.csv": f"row {i}\n" * (i + 1) for i in range(50)}


@pytest.fixture
def hashed(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hashed]:
    """Counts hashed workspace files, whichever pipe module calls the hashing functions."""
    with counting_hashes(workspace.root, monkeypatch) as counter:
        yield counter


def _tracked_and_settled(workspace: Workspace) -> None:
    """50 files tracked in `d`, with mtimes older than the memo's racy window (as any file a minute old)."""
    workspace.write({"d": FILES})
    for name in FILES:
        _settle(workspace.root / "d" / name)
    workspace.pipe("add", "d")


def _settle(path: Path, seconds_ago: int = 60) -> None:
    """Move a file's mtime out of the window where the memo does not trust it (written just now)."""
    then = os.stat(path).st_mtime_ns - seconds_ago * 10**9
    os.utime(path, ns=(then, then))


def test_status_and_add_of_an_unchanged_directory_hash_nothing(
    workspace: Workspace, cli: Cli, hashed: Hashed
) -> None:
    _tracked_and_settled(workspace)
    assert set(hashed.take()) == {f"d/{name}" for name in FILES}  # the counter sees the first add
    assert "up to date" in cli.run("status").stderr
    assert hashed.take() == []
    cli.run("add", "d")
    assert hashed.take() == []
    assert "up to date" in cli.run("status").stderr
    assert hashed.take() == []


def test_changing_one_files_content_hashes_exactly_that_file(
    workspace: Workspace, cli: Cli, hashed: Hashed
) -> None:
    _tracked_and_settled(workspace)
    hashed.take()
    (workspace.root / "d/07.csv").write_text("edited\n")
    _settle(workspace.root / "d/07.csv", seconds_ago=30)
    assert "d  modified: 1 modified" in cli.run("status").stdout
    assert hashed.take() == ["d/07.csv"]
    assert "up to date" not in cli.run("status").stderr
    assert hashed.take() == []  # remembered, still modified


def test_add_after_change_hashes_only_changed_files(workspace: Workspace, cli: Cli, hashed: Hashed) -> None:
    _tracked_and_settled(workspace)
    hashed.take()
    (workspace.root / "d/07.csv").write_text("edited\n")
    _settle(workspace.root / "d/07.csv", seconds_ago=30)
    cli.run("add", "d")
    assert set(hashed.take()) == {"d/07.csv"}  # hashed, and stored (hashed again as it is copied)
    assert "up to date" in cli.run("status").stderr
    assert hashed.take() == []


def test_a_new_mtime_alone_rehashes_that_file_and_reports_nothing_changed(
    workspace: Workspace, cli: Cli, hashed: Hashed
) -> None:
    _tracked_and_settled(workspace)
    hashed.take()
    os.utime(workspace.root / "d/07.csv", ns=(10**18, 10**18))  # same bytes, another timestamp
    assert "up to date" in cli.run("status").stderr
    assert hashed.take() == ["d/07.csv"]
    assert "up to date" in cli.run("status").stderr
    assert hashed.take() == []  # and remembered
