"""`pipe status` after a change compares only the directories whose files' stat data moved.

The hash memo remembers, for the manifest a tracked directory was compared with, its segments
(the files directly inside each of its directories) and the stat fingerprint each had when it
matched; a status after one edit reads that one directory's rows of the manifest and of the memo.
Every change must still be seen, and nothing read from the manifest escapes the path gate.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_engine.cache import tree as tree_module
from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.tree import Tree, TreeEntry
from pipeline_engine.core.hashing import hash_bytes
from tests.conftest import Cli, Workspace

# 2,000 files: 19 directories of 100, and 90 + 10 in d07 and its sub-directory.
FILES = {f"d{d:02}": {f"f{i:03}.txt": f"{d} {i}\n" for i in range(100)} for d in range(20)}
FILES["d07"] = {**{f"f{i:03}.txt": f"7 {i}\n" for i in range(90)},
                "inner": {f"g{i}.txt": f"inner {i}\n" for i in range(10)}}


def _settle(root: Path) -> None:
    """Move every mtime a minute back, as for files not touched just now (the memo distrusts those)."""
    for base in (root / "data", root / ".pipe/cache/objects"):
        for path in base.rglob("*"):
            then = os.stat(path).st_mtime_ns - 60 * 10**9
            os.utime(path, ns=(then, then), follow_symlinks=False)


def _tracked(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"data": FILES})
    cli.run("add", "data")
    _settle(workspace.root)
    assert "up to date" in cli.run("status").stderr  # records each segment's fingerprint
    assert "up to date" in cli.run("status").stderr


def _change(root: Path, change: str) -> list[str]:
    inner = root / "data/d07/inner"
    if change == "edited":
        (inner / "g3.txt").write_text("edited\n")
        return ["modified: data/d07/inner/g3.txt"]
    if change == "added":
        (inner / "new.txt").write_text("new\n")
        return ["added: data/d07/inner/new.txt"]
    if change == "removed":
        (inner / "g3.txt").unlink()
        return ["deleted: data/d07/inner/g3.txt"]
    if change == "renamed":
        (inner / "g3.txt").rename(inner / "h3.txt")
        return ["deleted: data/d07/inner/g3.txt", "added: data/d07/inner/h3.txt"]
    (root / "data/d07/inner/g3.txt").rename(root / "data/d12/g3.txt")  # moved to another directory
    return ["deleted: data/d07/inner/g3.txt", "added: data/d12/g3.txt"]


@pytest.mark.parametrize("change", ["edited", "added", "removed", "renamed", "moved"])
def test_a_change_in_a_nested_directory_of_a_large_out_is_reported_every_time(
    workspace: Workspace, cli: Cli, change: str
) -> None:
    _tracked(workspace, cli)
    expected = _change(workspace.root, change)
    for _ in range(2):  # the second status compares the same segment again: same answer
        out = cli.run("status", "-v").stdout
        assert "data  modified" in out and "not in cache" not in out
        listed = [line.strip() for line in out.splitlines() if line.startswith("    ")]
        assert sorted(listed) == sorted(expected)


def test_a_file_rewritten_with_the_same_bytes_is_up_to_date_and_remembered(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tracked(workspace, cli)
    target = workspace.root / "data/d03/f050.txt"
    target.write_text(target.read_text())  # new mtime, same content
    _settle(workspace.root)
    assert "up to date" in cli.run("status").stderr
    reads = _Reads(monkeypatch)
    assert "up to date" in cli.run("status").stderr
    assert (reads.memo_rows, reads.gated) == (0, 0)  # the segment's new fingerprint was remembered


def test_a_whole_directory_removed_or_added_is_reported(workspace: Workspace, cli: Cli) -> None:
    _tracked(workspace, cli)
    root = workspace.root / "data"
    (root / "d09").rename(root / "zz")  # d09's 100 files deleted, zz's added
    out = cli.run("status").stdout
    assert "100 added" in out and "100 deleted" in out and "0 modified" in out


class _Reads:
    """Counts memo rows read back for files, and manifest paths put through the path gate."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.memo_rows = 0
        self.gated = 0
        self.parsed = 0
        iter_under, gate = HashMemo.iter_under, tree_module.check_relpath
        parse = Tree.from_bytes.__func__  # type: ignore[attr-defined]

        def counted_iter(memo: HashMemo, prefix: str, **kwargs: int) -> object:
            for row in iter_under(memo, prefix, **kwargs):
                self.memo_rows += 1
                yield row

        def counted_gate(path: object, **kwargs: object) -> object:
            self.gated += 1
            return gate(path, **kwargs)  # type: ignore[arg-type]

        def counted_parse(cls: type[Tree], data: bytes, *, oid: str = "") -> Tree:
            self.parsed += 1
            return parse(cls, data, oid=oid)  # type: ignore[no-any-return]

        monkeypatch.setattr(HashMemo, "iter_under", counted_iter)
        monkeypatch.setattr(tree_module, "check_relpath", counted_gate)
        monkeypatch.setattr(Tree, "from_bytes", classmethod(counted_parse))


def test_status_after_one_edit_reads_only_that_directory(
    workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tracked(workspace, cli)
    (workspace.root / "data/d04/f010.txt").write_text("edited\n")
    reads = _Reads(monkeypatch)
    assert "1 modified" in cli.run("status").stdout
    # d04's 100 files, not the out's 2,000: memo rows merged, manifest rows gated; no whole parse.
    assert reads.memo_rows <= 100 and reads.gated <= 100 and reads.parsed == 0


def test_a_hostile_manifest_is_refused_whatever_the_memo_says(workspace: Workspace, cli: Cli) -> None:
    """The memo's segment rows are forged to vouch for a manifest naming `../` paths (a manifest
    fetched from a remote is in the cache under its true oid): status still refuses to read it."""
    _tracked(workspace, cli)
    project = workspace.project()
    real = project.memo.get_segments("data")
    good = Tree.from_bytes(project.store.read_bytes(next(iter(real.values())).oid))
    evil = [TreeEntry(f"d07/../../../escape{i}", hash_bytes(b"x"), 1) for i in range(3)]
    hostile = Tree.from_entries([*good.entries, *evil])
    oid = project.store.put_bytes(hostile.to_bytes(), suffix=".dir")
    pointer = workspace.root / "data.pipe"
    pointer.write_text(pointer.read_text().replace(good.oid[:-4], oid[:-4]))
    forged = [(p, s.fingerprint, s.nfiles + (3 if p == "d07/" else 0), 0) for p, s in real.items()]
    project.memo.put_segments("data", oid, forged, whole=True)
    project.memo.close()
    (workspace.root / "data/d07/f001.txt").write_text("edited\n")  # d07's rows are read from the manifest
    out = cli.run("status", "-v").stdout
    assert "data  modified, corrupt in cache" in out
    assert "escape" not in out
