"""`walk_runs`: the walk a run of files at a time, through directory descriptors; same files, order and rules as `walk_files`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_engine.core import fsutil
from pipeline_engine.core.fsutil import temp_name, walk_files, walk_runs
from pipeline_engine.errors import PathError


def _tree(root: Path) -> None:
    (root / "d" / "sub").mkdir(parents=True)
    for name in ("b", "a.txt", "a", "c", "d/x", "d/y", "d/z", "d/sub/deep", "d.txt", "e"):
        if not (root / name).is_dir():
            (root / name).write_text(name)
    (root / "d" / temp_name()).write_text("a pipe temporary file: never data")
    (root / "link").symlink_to("d/x")
    os.chmod(root / "c", 0o755)


def test_runs_hold_the_files_of_walk_files_in_path_order_with_their_stats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    monkeypatch.setattr(fsutil, "_RUN", 2)  # several runs per directory
    runs = list(walk_runs(tmp_path))
    assert all(0 < len(names) <= 2 and len(names) == len(stats) for _, names, stats in runs)
    walked = [prefix + name for prefix, names, _ in runs for name in names]
    assert walked == [rel for rel, _ in walk_files(tmp_path)] == sorted(walked)
    assert walked == ["a", "a.txt", "b", "c", "d.txt", "d/sub/deep", "d/x", "d/y", "d/z", "e", "link"]
    stats = {prefix + name: st for prefix, names, sts in runs for name, st in zip(names, sts, strict=True)}
    for rel in walked:
        expected = os.stat(tmp_path / rel)  # a symlink inside the root: its target's stat
        assert (stats[rel].st_ino, stats[rel].st_size, stats[rel].st_mtime_ns, stats[rel].st_mode) == (
            expected.st_ino, expected.st_size, expected.st_mtime_ns, expected.st_mode)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_walk_stopped_half_way_or_failing_leaves_no_directory_open(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = _open_fds()
    walk = walk_runs(tmp_path)
    next(walk)
    next(walk)  # inside 'd/' now: two directories open
    walk.close()
    assert _open_fds() == before
    (tmp_path / "d" / "sub" / "out").symlink_to("/etc/hostname")
    with pytest.raises(PathError, match="outside"):
        list(walk_runs(tmp_path))
    assert _open_fds() == before
