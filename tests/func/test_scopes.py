"""Revision scopes (-a/-T/-A/--rev -n) for gc, push, fetch and pull: every object the selected revisions need.

The history every test starts from (`history` fixture):

    init -- c1 (tag v1) -- c2 -- c3 (main, HEAD)       workspace: f re-added as "f4" (not committed)
                             \\-- s (branch side)        an orphan object "draft" no revision names

f is a tracked file, d a tracked directory (changed in c3), old.txt is tracked in c1 only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline_engine.cache.tree import Tree
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.remote.open import open_remote
from tests.conftest import Cli, Workspace


@dataclass
class History:
    """The repository of the module docstring and the objects each revision uses."""

    workspace: Workspace
    remote: Path
    used: dict[str, set[str]]  # revision label -> oids it needs (files, manifests, files of manifests)

    def objects(self, root: Path | None = None) -> set[str]:
        return set(Workspace(root or self.workspace.root).project().store.iter_oids())

    def remote_objects(self) -> set[str]:
        """Every object on the remote, loose or packed."""
        return set(open_remote("check", str(self.remote), {}, base_dir=self.remote).iter_oids())

    @property
    def everything(self) -> set[str]:
        return set().union(*self.used.values())


def _used_at(workspace: Workspace, rev: str | None) -> set[str]:
    """The oids the pointers at `rev` (None: the workspace) name, manifests expanded from the cache."""
    store = workspace.project().store
    names = workspace.git("ls-tree", "-r", "--name-only", rev or "HEAD").split()
    pointers = [n for n in names if n.endswith(".pipe")] if rev else [p.name for p in workspace.root.glob("?*.pipe")]
    oids: set[str] = set()
    for name in pointers:
        text = workspace.git("show", f"{rev}:{name}") if rev else workspace.read(name)
        oid = yaml.safe_load(text)["outs"][0]["oid"]
        oids.add(oid)
        if oid.endswith(".dir"):
            oids |= {e.oid for e in Tree.from_bytes(store.path_of(oid).read_bytes()).entries}
    return oids


@pytest.fixture
def history(workspace: Workspace, local_remote: Path) -> Iterator[History]:
    ws = workspace
    ws.commit("remote")
    ws.track({"f": "f1", "d": {"a": "a1", "b": "b1"}, "old.txt": "old"})
    ws.commit("c1")
    ws.git("tag", "v1")
    ws.track({"f": "f2"})
    ws.commit("c2")
    ws.git("checkout", "-q", "-b", "side")
    ws.track({"f": "side"})
    ws.commit("s")
    ws.git("checkout", "-q", "main")
    ws.pipe("checkout", "--force")
    ws.pipe("remove", "--outs", "old.txt.pipe")
    ws.track({"f": "f3", "d": {"a": "a3", "b": "b1"}})
    ws.commit("c3")
    ws.track({"f": "draft"})
    ws.track({"f": "f4"})
    used = {rev: _used_at(ws, rev) for rev in ("v1", "HEAD~1", "side", "HEAD")}
    used["workspace"] = _used_at(ws, None)
    yield History(ws, local_remote, used)


def test_the_history_is_what_the_docstring_says(history: History) -> None:
    used = history.used
    assert hash_bytes(b"f1") in used["v1"] and hash_bytes(b"old") in used["v1"]
    assert hash_bytes(b"old") not in used["HEAD"] | used["workspace"]
    assert hash_bytes(b"side") in used["side"] and hash_bytes(b"f4") in used["workspace"]
    assert history.objects() == history.everything | {hash_bytes(b"draft")}


@pytest.mark.parametrize(
    ("flags", "kept"),
    [
        (("-w",), ("workspace",)),
        (("-a",), ("workspace", "HEAD", "side")),
        (("-T",), ("workspace", "v1")),
        (("--rev", "HEAD~1"), ("workspace", "HEAD~1")),
        (("--rev", "HEAD~1", "-n", "2"), ("workspace", "HEAD~1", "v1")),
        (("--rev", "v1", "--rev", "side"), ("workspace", "v1", "side")),
        (("-A",), ("workspace", "HEAD", "HEAD~1", "v1", "side")),
        (("-w", "-T"), ("workspace", "v1")),
    ],
)
def test_gc_keeps_exactly_what_the_scope_uses(history: History, cli: Cli, flags: tuple[str, ...],
                                             kept: tuple[str, ...]) -> None:
    keep = set().union(*(history.used[k] for k in kept))
    before = history.objects()
    dry = cli.run("gc", *flags, "--dry", "-v")
    listed = {line.split()[0] for line in dry.stdout.splitlines()}
    assert listed == before - keep
    cli.run("gc", *flags, "-f")
    assert history.objects() == keep


def test_gc_with_an_unknown_rev_names_it_and_deletes_nothing(history: History, cli: Cli) -> None:
    before = history.objects()
    result = cli.run("gc", "--rev", "no-such-rev", "-f", exit_code=1)
    assert "'no-such-rev'" in result.stderr and "Traceback" not in result.output
    assert history.objects() == before


def test_num_needs_rev(history: History, cli: Cli) -> None:
    for command in (("gc", "-w"), ("push",), ("fetch",), ("pull",)):
        result = cli.run(*command, "-n", "2", exit_code=None)
        assert result.exit_code in (1, 2) and "--rev" in result.stderr, command


def test_push_all_commits_sends_every_revisions_objects(history: History, cli: Cli) -> None:
    result = cli.run("push", "-A")
    assert history.remote_objects() == history.everything
    assert f"{len(history.everything)} transferred" in result.stderr


def test_push_of_a_tag_sends_its_objects_and_the_workspaces(history: History, cli: Cli) -> None:
    cli.run("push", "-T")
    assert history.remote_objects() == history.used["v1"] | history.used["workspace"]


def test_push_with_an_unknown_rev_sends_nothing(history: History, cli: Cli) -> None:
    result = cli.run("push", "--rev", "nope", exit_code=1)
    assert "'nope'" in result.stderr
    assert not history.remote.exists() or not history.remote_objects()


def test_push_of_a_revision_whose_objects_left_the_cache_reports_them(history: History, cli: Cli) -> None:
    cli.run("gc", "-w", "-f")
    result = cli.run("push", "-T", exit_code=1)
    assert "not in the cache" in result.stderr and "old.txt" in result.stderr
    assert history.used["workspace"] <= history.remote_objects()


def test_fetch_rev_brings_exactly_that_revisions_objects_into_a_clone(history: History, cli: Cli) -> None:
    cli.run("push", "-A")
    history.workspace.commit("workspace")  # the clone's HEAD is the workspace above
    clone = history.workspace.clone()
    assert not history.objects(clone.root)
    cli.run("fetch", "--rev", "v1")
    assert history.objects(clone.root) == history.used["v1"] | history.used["workspace"]
    assert any(o.endswith(".dir") for o in history.used["v1"] - history.used["workspace"])  # an old manifest too
    assert not (clone.root / "old.txt").exists(), "fetch does not touch the workspace"


def test_fetch_rev_of_a_target_that_only_an_old_revision_tracks(history: History, cli: Cli) -> None:
    cli.run("push", "-A")
    clone = history.workspace.clone()
    cli.run("fetch", "--rev", "v1", "old.txt")
    assert history.objects(clone.root) == {hash_bytes(b"old")}
    result = cli.run("fetch", "-A", "never-tracked.txt", exit_code=1)
    assert "'never-tracked.txt'" in result.stderr


def test_fetch_rev_of_a_granular_target_at_an_old_revision(history: History, cli: Cli) -> None:
    cli.run("push", "-A")
    clone = history.workspace.clone()
    cli.run("fetch", "--rev", "v1", "d/a")
    assert hash_bytes(b"a1") in history.objects(clone.root)
    assert hash_bytes(b"b1") not in history.objects(clone.root)


def test_pull_all_branches_fetches_them_and_checks_out_the_workspace_only(history: History, cli: Cli) -> None:
    cli.run("push", "-A")
    clone = history.workspace.clone()
    clone.git("branch", "side", "origin/side")  # -a covers local branches, as in DVC
    cli.run("pull", "-a")
    assert clone.read("f") == "f3" and clone.read("d/a") == "a3"
    assert hash_bytes(b"side") in history.objects(clone.root)
    assert hash_bytes(b"f1") not in history.objects(clone.root)  # v1 is neither a branch tip nor the workspace


def test_pull_rev_of_a_target_at_an_old_revision_only_fetches_it(history: History, cli: Cli) -> None:
    cli.run("push", "-A")
    clone = history.workspace.clone()
    cli.run("pull", "--rev", "v1", "old.txt")
    assert hash_bytes(b"old") in history.objects(clone.root)
    assert not (clone.root / "old.txt").exists()


def test_a_corrupt_pointer_at_a_revision_is_named_with_the_revision(history: History, cli: Cli) -> None:
    ws = history.workspace
    ws.commit("workspace")
    ws.git("checkout", "-q", "side")
    ws.write({"f.pipe": "outs: [not a mapping\n"})
    ws.commit("broken pointer")
    ws.git("checkout", "-q", "main")
    for command in (("push", "--rev", "side"), ("fetch", "-a")):
        result = cli.run(*command, exit_code=1)
        assert "f.pipe at 'side'" in result.stderr, command
        assert "Traceback" not in result.output
    assert not history.remote.exists() or not history.remote_objects()
    before = history.objects()
    result = cli.run("gc", "-a", "-f", exit_code=1)
    assert "(side): f.pipe:" in result.stderr and "gc stopped before deleting anything" in result.stderr
    assert history.objects() == before


def test_fetch_rev_brings_an_old_cached_metrics_file(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    workspace.write_pipeline({"train": {"cmd": "python -c \"open('m.json','w').write('{\\\"acc\\\": 1}')\"",
                                        "metrics": ["m.json"]}})
    cli.run("repro")
    workspace.commit("acc 1")
    old = yaml.safe_load(workspace.read("pipeline.lock"))["stages"]["train"]["outs"][0]["oid"]
    workspace.write_pipeline({"train": {"cmd": "python -c \"open('m.json','w').write('{\\\"acc\\\": 2}')\"",
                                        "metrics": ["m.json"]}})
    cli.run("repro")
    workspace.commit("acc 2")
    cli.run("push", "-A")
    clone = workspace.clone()
    cli.run("fetch", "--rev", "HEAD~1")
    assert clone.project().store.exists(old)


def test_history_reads_each_revision_as_project_index_at_does(history: History) -> None:
    from pipeline_engine.index.history import History as Indexes
    from pipeline_engine.index.project_index import ProjectIndex
    from pipeline_engine.index.revisions import Scope, select_revisions

    project = history.workspace.project()
    revisions = select_revisions(project, Scope(all_commits=True, all_tags=True, all_branches=True))
    indexes = Indexes(project)
    indexes.read_trees(revisions)
    for revision in revisions:
        mine = indexes.index(revision)
        theirs = ProjectIndex(project) if revision.sha is None else ProjectIndex.at(project, revision.sha)
        assert mine.pointers == theirs.pointers and mine.lock == theirs.lock, revision
        assert mine.used_outs() == theirs.used_outs(), revision


def test_a_pointer_file_shared_by_many_commits_is_parsed_once(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline_engine.index.history as module

    workspace.track({"kept": "same in every commit"})
    workspace.history([{"n.txt": str(i)} for i in range(30)])  # 30 commits, one pointer blob
    parsed: list[str] = []
    real = module.parse_pointer

    def counting(text: str | bytes, relpath: str, **kwargs: object) -> object:
        parsed.append(relpath)
        return real(text, relpath, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "parse_pointer", counting)
    from pipeline_engine.index.revisions import Scope, select_revisions
    from pipeline_engine.index.used import used_outs_in

    project = workspace.project()
    revisions = select_revisions(project, Scope(workspace=False, all_commits=True))
    assert len(revisions) >= 30
    outs = used_outs_in(project, revisions)
    assert [o.record.oid for o in outs] == [hash_bytes(b"same in every commit")]
    assert parsed == ["kept.pipe"]


def test_stage_targets_select_at_each_revision(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo one > one.txt", "outs": ["one.txt"]}})
    cli.run("repro")
    workspace.commit("train")
    workspace.write_pipeline({"train2": {"cmd": "echo two > two.txt", "outs": ["two.txt"]}})
    cli.run("repro")
    workspace.commit("train2 replaces train")
    cli.run("push", "-A", "train2")  # close to 'train' at the first commit: a stage here, so no error
    remote = {p.parent.name + p.name for p in local_remote.rglob("*") if p.is_file()}
    assert remote == {hash_bytes(b"two\n")}
    cli.run("push", "--rev", "HEAD~1", "train")  # a stage of the old revision only
    remote = {p.parent.name + p.name for p in local_remote.rglob("*") if p.is_file()}
    assert remote == {hash_bytes(b"two\n"), hash_bytes(b"one\n")}
    result = cli.run("push", "-A", "trian", exit_code=1)
    assert "'trian'" in result.stderr and "train" in result.stderr


def test_pull_rev_of_a_stage_the_workspace_no_longer_has(workspace: Workspace, cli: Cli, local_remote: Path) -> None:
    workspace.write_pipeline({"train": {"cmd": "echo one > one.txt", "outs": ["one.txt"]}})
    cli.run("repro")
    workspace.commit("train")
    workspace.write_pipeline({"train2": {"cmd": "echo two > two.txt", "outs": ["two.txt"]}})
    cli.run("repro")
    workspace.commit("train2 replaces train")
    cli.run("push", "-A")
    clone = workspace.clone()
    cli.run("pull", "--rev", "HEAD~1", "train")
    assert clone.project().store.exists(hash_bytes(b"one\n"))
    assert not (clone.root / "one.txt").exists() and not (clone.root / "two.txt").exists()


def test_status_cloud_with_tags_reports_each_version_of_a_path(history: History, cli: Cli) -> None:
    import json

    cli.run("push")
    result = json.loads(cli.run("status", "--cloud", "-T", "--json").stdout)
    rows = {(r["path"], r.get("revision", "")): r for r in result["cloud"]}
    assert rows[("f", "workspace")]["not_pushed"] == 0
    assert rows[("f", "v1")]["not_pushed"] == 1 and rows[("old.txt", "v1")]["not_pushed"] == 1
    assert rows[("d", "v1")]["not_pushed"] == 2  # the old manifest and a1 (b1 is still in the workspace's d)
    text = cli.run("status", "--cloud", "-T").stdout
    assert "f at 'v1'" in text and "old.txt at 'v1'" in text
    cli.run("push", "-T")
    assert "in sync" in cli.run("status", "--cloud", "-T").stderr
    assert "--cloud" in cli.run("status", "-T", exit_code=2).stderr


def test_the_fetch_rev_that_pipe_diff_names_makes_the_diff_work(history: History, cli: Cli) -> None:
    cli.run("push", "-A")
    history.workspace.commit("workspace")
    history.workspace.clone()
    result = cli.run("diff", "v1", "HEAD", exit_code=1)
    assert "pipe fetch --rev v1 d" in result.stderr
    cli.run("fetch", "--rev", "v1", "d")
    assert "d/a" in cli.run("diff", "v1", "HEAD").stdout


def test_hostile_pointers_in_history_are_refused_or_skipped_never_followed(
    workspace: Workspace, cli: Cli, local_remote: Path
) -> None:
    import os

    workspace.track({"f": "kept"})
    pointer = workspace.read("f.pipe")
    workspace.write({"evil.pipe": pointer.replace("path: f", "path: ../../outside")})
    os.symlink("/etc/passwd", workspace.root / "link.pipe")
    workspace.commit("a pointer leaving the project, a link named like a pointer")
    workspace.git("rm", "-q", "evil.pipe", "link.pipe")
    workspace.commit("only history has them now")
    for command in (("push", "-A"), ("fetch", "-A")):
        result = cli.run(*command, exit_code=1)
        assert "evil.pipe at '" in result.stderr and "Traceback" not in result.output, command
    result = cli.run("gc", "-A", "-f", exit_code=1)
    assert "evil.pipe" in result.stderr and "gc stopped before deleting anything" in result.stderr
    assert "link.pipe" not in result.stderr  # a link from git is never read
    assert hash_bytes(b"kept") in set(workspace.project().store.iter_oids())
