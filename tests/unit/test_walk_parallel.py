"""A walk shared between processes finds exactly what one process finds, and refuses the same paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_engine.cache import compare
from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.scan import Walk, walk
from pipeline_engine.core.fsutil import TEMP_PREFIX
from pipeline_engine.errors import PathError


def _tree(root: Path) -> Path:
    data = root / "data"
    for d in range(9):
        for i in range(5):
            (data / f"d{d}" / "deep").mkdir(parents=True, exist_ok=True)
            (data / f"d{d}" / f"f{i}.txt").write_text(f"{d}/{i}")
            (data / f"d{d}" / "deep" / f"g{i}.txt").write_text(f"{d}/deep/{i}")
    (data / "top.txt").write_text("top")
    (data / "zz.txt").write_text("zz")
    (data / "d3" / "link.txt").symlink_to("../d7/f1.txt")  # into another process's share: allowed
    (data / "d5" / f"{TEMP_PREFIX}123-abc").write_text("a killed checkout's temporary")
    (data / ".pipeignore").write_text("d6/\n*.log\n")
    (data / "d2" / "noise.log").write_text("ignored")
    return data


def _columns(w: Walk) -> tuple[object, ...]:
    files = w.files()
    return files.paths, bytes(files.ino), bytes(files.mtime), bytes(files.size), bytes(files.exe)


@pytest.mark.parametrize("jobs", [2, 3])
def test_a_walk_shared_between_processes_is_the_walk_of_one(tmp_path: Path, jobs: int) -> None:
    data = _tree(tmp_path)
    one, shared = walk(tmp_path, "data", data, None), walk(tmp_path, "data", data, None, jobs=jobs)
    assert _columns(shared) == _columns(one)
    assert shared.segments == one.segments and shared.fingerprint == one.fingerprint
    paths = one.files().paths
    assert "d3/link.txt" in paths and "d6/f1.txt" not in paths and "d2/noise.log" not in paths
    assert not any(p.startswith(f"d5/{TEMP_PREFIX}") for p in paths)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_symlink_out_of_the_tree_is_refused_by_whichever_process_meets_it(tmp_path: Path, jobs: int) -> None:
    data = _tree(tmp_path)
    (tmp_path / "outside.txt").write_text("secret")
    (data / "d4" / "deep" / "escape.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(PathError, match="'data/d4/deep/escape.txt' is a symlink pointing outside"):
        walk(tmp_path, "data", data, None, jobs=jobs)


def test_status_of_a_large_tree_walks_it_in_parallel_and_sees_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_engine.cache.store import ObjectStore
    from pipeline_engine.cache.workspace import save, scan

    data = _tree(tmp_path)
    os.unlink(data / "d3" / "link.txt")
    store, memo = ObjectStore(tmp_path / "cache"), HashMemo(tmp_path / "memo.sqlite")
    scanned = scan(tmp_path, "data", memo, store=store)
    record = save(store, tmp_path, scanned, link_types=())
    monkeypatch.setattr(compare, "PARALLEL_WALK", 10)
    monkeypatch.setattr(compare.threading, "active_count", lambda: 1)  # as in `pipe status`: no other threads
    used: list[int] = []
    real_walk = compare.walk

    def counted(*args: object, jobs: int = 1, **known: object) -> Walk:
        used.append(jobs)
        return real_walk(*args, jobs=jobs, **known)  # type: ignore[arg-type]

    monkeypatch.setattr(compare, "walk", counted)
    (data / "d8" / "deep" / "g2.txt").write_text("edited")
    for _ in range(2):  # the whole tree compared once (its segments recorded), then only d8/deep/
        result = compare.compare_dir(tmp_path, "data", memo, record.oid, store=store)
        assert not result.same and result.diff is not None and result.diff.modified == ("d8/deep/g2.txt",)
        assert used[-1] > 1 or len(os.sched_getaffinity(0)) == 1
    # Rows that disagree with the manifest: the other processes sent only d8/deep/'s runs, so the
    # whole tree is walked again to be compared whole.
    rows = memo.get_segments("data")
    memo.put_segments("data", record.oid, [(p, s.fingerprint, s.nfiles + 1, 0) for p, s in rows.items()], whole=True)
    result = compare.compare_dir(tmp_path, "data", memo, record.oid, store=store)
    assert result.diff is not None and result.diff.modified == ("d8/deep/g2.txt",) and not result.diff.added


def test_with_known_fingerprints_other_processes_send_only_the_segments_that_moved(tmp_path: Path) -> None:
    data = _tree(tmp_path)
    first = walk(tmp_path, "data", data, None)
    (data / "d4" / "f0.txt").write_text("moved")  # d4 is walked by the second of two processes
    known = {p: s.fingerprint for p, s in first.segments.items()}
    shared = walk(tmp_path, "data", data, None, jobs=2, known=known)
    assert not shared.complete and shared.fingerprint == walk(tmp_path, "data", data, None).fingerprint
    held = {r[0] for r in shared.runs}
    assert "d4/" in held and "d7/" not in held  # d7/: the second process's, unchanged
    assert shared.files({"d4/"}).paths == [f"d4/f{i}.txt" for i in range(5)]


def test_a_worker_that_dies_leaves_the_walk_to_the_process_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_engine.cache import scan

    data = _tree(tmp_path)
    expected = walk(tmp_path, "data", data, None)
    real = scan._walk_part

    def dying(*args: object) -> object:
        if args[-1] != (0, 2) and args[-1] != (0, 1):
            os._exit(1)  # as a worker killed by the OOM killer
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(scan, "_walk_part", dying)
    shared = walk(tmp_path, "data", data, None, jobs=2)
    assert shared.complete and _columns(shared) == _columns(expected) and shared.segments == expected.segments


def test_a_share_without_the_top_files_never_looks_at_them(tmp_path: Path) -> None:
    from pipeline_engine.core.fsutil import walk_runs

    data = _tree(tmp_path)
    (tmp_path / "outside.txt").write_text("secret")
    (data / "escape.txt").symlink_to(tmp_path / "outside.txt")  # refused when the top files are walked
    runs = list(walk_runs(data, top_files=False, enter=lambda sub: sub == "d1"))
    assert [(p, names) for p, names, _ in runs] == [("d1/deep/", [f"g{i}.txt" for i in range(5)]),
                                                   ("d1/", [f"f{i}.txt" for i in range(5)])]
    with pytest.raises(PathError):
        list(walk_runs(data, enter=lambda sub: False))


def test_a_caller_with_threads_of_its_own_walks_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forking copies other threads' locks mid-use: a parallel repro's status check must not fork."""
    import threading

    monkeypatch.setattr(compare, "PARALLEL_WALK", 10)
    if threading.active_count() == 1 and len(os.sched_getaffinity(0)) > 1:
        assert compare._jobs(1000) > 1
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert compare._jobs(1000) == 1
    finally:
        stop.set()
        other.join()
