"""pipe exp run / show / list / apply / branch / remove and the queue, in real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import Workspace

TRAIN = (
    "python -c \"import yaml, json; p = yaml.safe_load(open('params.yaml'));"
    " open(r'COUNTERS/train_count', 'a').write('x');"
    " json.dump({'acc': p['train']['lr'] * p['train']['epochs']}, open('metrics.json', 'w'))\""
)


def _project(ws: Workspace, *, fail_when_lr: float | None = None) -> None:
    """prep (shared, counts its runs in prep_count beside the repo) -> train (params train.lr, train.epochs) -> metrics.json."""
    ws.write({"params.yaml": "# tuned by hand\nprep:\n  n: 3\ntrain:\n  lr: 0.1  # learning rate\n  epochs: 2\n"})
    counters = str(ws.root.parent)  # absolute: experiments run in worktrees elsewhere
    train = TRAIN.replace("COUNTERS", counters) if fail_when_lr is None else TRAIN.replace(
        "p = yaml.safe_load(open('params.yaml'));",
        f"p = yaml.safe_load(open('params.yaml')); assert p['train']['lr'] != {fail_when_lr};").replace(
        "COUNTERS", counters)
    ws.write_pipeline({
        "prep": {"cmd": f"echo x >> '{counters}/prep_count' && python -c \"import yaml;"
                        " print('prepared', yaml.safe_load(open('params.yaml'))['prep']['n'])\" > prep.txt", "params": ["prep.n"],
                 "outs": ["prep.txt"]},
        "train": {"cmd": train, "deps": ["prep.txt"], "params": ["train.lr", "train.epochs"],
                  "metrics": [{"metrics.json": {"cache": False}}]},
    })
    ws.pipe("repro")
    ws.commit("baseline")


def _refs(ws: Workspace) -> dict[str, str]:
    out = ws.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps")
    return {line.split()[0].rsplit("/", 1)[1]: line.split()[1] for line in out.splitlines()}


def _at(ws: Workspace, sha: str, path: str) -> str:
    return ws.git("show", f"{sha}:{path}")


def _files(ws: Workspace) -> dict[str, bytes]:
    """The workspace's files outside the cache (which experiments share by design)."""
    return {k: v for k, v in ws.snapshot().items() if not k.startswith((".pipe/cache/objects/", ".pipe/cache/runs/"))}


def _count(ws: Workspace, name: str) -> int:
    path = ws.root.parent / name
    return path.read_text().count("x") if path.exists() else 0


def test_exp_run_records_each_combination_as_a_ref_under_the_baseline(workspace: Workspace) -> None:
    _project(workspace)
    baseline = workspace.git("rev-parse", "HEAD").strip()
    before = _files(workspace)
    workspace.pipe("exp", "run", "-S", "train.lr=0.2,0.3", "-S", "train.epochs=range(1, 3)")
    refs = _refs(workspace)
    assert len(refs) == 4
    seen = set()
    for name, sha in refs.items():
        ref = workspace.git("for-each-ref", "--format=%(refname)", f"refs/exps/*/*/{name}").strip()
        assert ref == f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"
        assert workspace.git("rev-parse", f"{sha}^").strip() == baseline
        params = yaml.safe_load(_at(workspace, sha, "params.yaml"))
        metrics = json.loads(_at(workspace, sha, "metrics.json"))
        assert metrics["acc"] == pytest.approx(params["train"]["lr"] * params["train"]["epochs"])
        lock = yaml.safe_load(_at(workspace, sha, "pipeline.lock"))
        assert lock["stages"]["train"]["params"]["params.yaml"]["train.lr"] == params["train"]["lr"]
        seen.add((params["train"]["lr"], params["train"]["epochs"]))
        assert "# learning rate" in _at(workspace, sha, "params.yaml")  # formatting kept
    assert seen == {(0.2, 1), (0.2, 2), (0.3, 1), (0.3, 2)}
    # the shared stage was restored, never rerun; the user's workspace, HEAD and index are untouched
    assert _count(workspace, "prep_count") == 1
    assert _files(workspace) == before
    assert workspace.git("rev-parse", "HEAD").strip() == baseline
    assert workspace.git("status", "--porcelain") == ""
    assert "exps" not in workspace.git("worktree", "list")


def test_exp_run_takes_uncommitted_changes_and_a_given_name(workspace: Workspace) -> None:
    _project(workspace)
    workspace.write({"params.yaml": workspace.read("params.yaml").replace("epochs: 2", "epochs: 5")})
    workspace.pipe("exp", "run", "-n", "five", "-S", "train.lr=0.5", "--temp")
    sha = _refs(workspace)["five"]
    assert json.loads(_at(workspace, sha, "metrics.json")) == {"acc": 2.5}
    assert "epochs: 5" in workspace.read("params.yaml") and "lr: 0.1" in workspace.read("params.yaml")
    taken = workspace.pipe("exp", "run", "-n", "five", "-S", "train.lr=0.6", exit_code=1)
    assert "experiment 'five' already exists" in taken.stderr
    workspace.pipe("exp", "run", "-n", "five", "-S", "train.lr=0.6", "-f")
    assert json.loads(_at(workspace, _refs(workspace)["five"], "metrics.json")) == {"acc": 3.0}


def test_exp_run_refuses_a_key_no_params_file_has(workspace: Workspace) -> None:
    _project(workspace)
    result = workspace.pipe("exp", "run", "-S", "train.momentum=0.9", exit_code=1)
    assert "param 'train.momentum' is not in 'params.yaml'" in result.stderr
    result = workspace.pipe("exp", "run", "-S", "other.yaml:a=1", exit_code=1)
    assert "params file 'other.yaml' does not exist" in result.stderr
    assert _refs(workspace) == {}


def test_queued_experiments_run_in_parallel_and_share_stages(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "--queue", "-S", "train.lr=choice(0.2, 0.3, 0.4, 0.5)")
    assert _refs(workspace) == {}
    status = workspace.pipe("queue", "status")
    assert status.stdout.count("queued") == 4
    workspace.pipe("exp", "run", "--run-all", "-j", "2")
    refs = _refs(workspace)
    lrs = sorted(yaml.safe_load(_at(workspace, sha, "params.yaml"))["train"]["lr"] for sha in refs.values())
    assert lrs == [0.2, 0.3, 0.4, 0.5]
    assert _count(workspace, "prep_count") == 1  # prep ran for the baseline only
    assert _count(workspace, "train_count") == 1 + 4
    assert "queued" not in workspace.pipe("queue", "status").stdout


def test_shared_changed_stage_runs_once_across_queued_experiments(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "--queue", "-S", "prep.n=4", "-S", "train.lr=0.2,0.3,0.4")
    workspace.pipe("exp", "run", "--run-all", "-j", "2")
    assert len(_refs(workspace)) == 3
    assert _count(workspace, "prep_count") == 1 + 1  # baseline, then once for prep.n=4


def test_a_failed_experiment_is_recorded_with_its_log_and_the_others_go_on(workspace: Workspace) -> None:
    _project(workspace, fail_when_lr=0.3)
    result = workspace.pipe("exp", "run", "-S", "train.lr=0.2,0.3,0.4", exit_code=1)
    assert "1 of 3 experiment(s) failed" in result.stderr
    assert len(_refs(workspace)) == 2
    shown = json.loads(workspace.pipe("exp", "show", "--json").stdout)
    failed = [r for r in shown if r["state"] == "failed"]
    assert len(failed) == 1 and failed[0]["params"]["train.lr"] == 0.3
    log = workspace.pipe("queue", "logs", failed[0]["name"]).stdout
    assert "AssertionError" in log or "failed" in log
    assert "exps" not in workspace.git("worktree", "list")


def test_exp_show_lists_params_and_metrics_of_baseline_and_experiments(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "-n", "a", "-S", "train.lr=0.3")
    workspace.pipe("exp", "run", "-n", "b", "-S", "train.lr=0.2")
    rows = json.loads(workspace.pipe("exp", "show", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["HEAD"]["metrics"]["acc"] == pytest.approx(0.2)
    assert by_name["a"]["metrics"]["acc"] == pytest.approx(0.6)
    assert by_name["b"]["params"]["train.lr"] == 0.2
    csv = workspace.pipe("exp", "show", "--csv", "--sort-by", "acc", "--sort-order", "desc",
                         "--only-changed").stdout.splitlines()
    assert csv[0] == "Experiment,rev,Created,State,acc,train.lr"
    assert [line.split(",")[0] for line in csv[1:]] == ["workspace", "HEAD", "a", "b"]
    md = workspace.pipe("exp", "show", "--md", "--drop", "train|prep").stdout
    assert "train.lr" not in md and "acc" in md
    listed = json.loads(workspace.pipe("exp", "list", "--json").stdout)
    assert sorted(next(iter(listed.values()))) == ["a", "b"]


def test_exp_apply_and_branch_restore_the_experiment_exactly(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "-n", "best", "-S", "train.lr=0.4", "-S", "prep.n=7")
    sha = _refs(workspace)["best"]
    counts = (_count(workspace, "prep_count"), _count(workspace, "train_count"))
    workspace.pipe("exp", "apply", "best")
    for path in ("params.yaml", "metrics.json", "pipeline.lock"):
        assert workspace.read(path) == _at(workspace, sha, path)
    assert workspace.read("prep.txt") == "prepared 7\n"
    assert (_count(workspace, "prep_count"), _count(workspace, "train_count")) == counts  # nothing reran
    assert "nothing to do" in workspace.pipe("repro").stderr
    workspace.pipe("exp", "branch", "best", "tuned")
    assert workspace.git("rev-parse", "tuned").strip() == sha
    assert workspace.git("rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_exp_remove_deletes_refs_and_queue_entries(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "-n", "one", "-S", "train.lr=0.3")
    workspace.pipe("exp", "run", "--queue", "-n", "later", "-S", "train.lr=0.5")
    workspace.pipe("exp", "remove", "one", "later")
    assert _refs(workspace) == {}
    assert "later" not in workspace.pipe("queue", "status").stdout
    assert workspace.pipe("exp", "remove", "nope", exit_code=1).stderr.count("not found") == 1
    assert not Path(workspace.root / ".pipe/tmp/exps/run").exists() or not any(
        (workspace.root / ".pipe/tmp/exps/run").iterdir())


def test_exp_diff_compares_experiments_and_revisions(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "-n", "a", "-S", "train.lr=0.3", "--temp")
    workspace.pipe("exp", "run", "-n", "b", "-S", "train.lr=0.2", "-S", "train.epochs=1", "--temp")
    result = json.loads(workspace.pipe("exp", "diff", "a", "b", "--json").stdout)
    assert result["metrics"]["metrics.json"]["acc"]["old"] == pytest.approx(0.6)
    assert result["metrics"]["metrics.json"]["acc"]["new"] == pytest.approx(0.2)
    assert result["params"]["params.yaml"]["train.lr"] == {"old": 0.3, "new": 0.2, "diff": pytest.approx(-0.1)}
    against_workspace = json.loads(workspace.pipe("exp", "diff", "a", "--json").stdout)
    assert against_workspace["params"]["params.yaml"]["train.lr"]["new"] == 0.1
    table = workspace.pipe("exp", "diff", "HEAD", "b").stdout
    assert "train.epochs" in table and "b" in table
    assert "not found" in workspace.pipe("exp", "diff", "nope", exit_code=1).stderr


def test_exp_save_records_the_workspace_without_running(workspace: Workspace) -> None:
    _project(workspace)
    workspace.write({"params.yaml": workspace.read("params.yaml").replace("lr: 0.1", "lr: 0.7")})
    workspace.pipe("repro")
    counts = _count(workspace, "train_count")
    workspace.pipe("exp", "save", "-n", "by-hand")
    sha = _refs(workspace)["by-hand"]
    assert json.loads(_at(workspace, sha, "metrics.json")) == {"acc": pytest.approx(1.4)}
    assert _count(workspace, "train_count") == counts
    assert workspace.git("status", "--porcelain").strip() != ""  # the user's changes stay uncommitted
    assert "already exists" in workspace.pipe("exp", "save", "-n", "by-hand", exit_code=1).stderr


def test_exp_push_and_pull_share_refs_and_objects_between_clones(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = tmp_path / "origin.git"
    workspace.git("init", "-q", "--bare", str(origin))
    workspace.git("remote", "add", "origin", str(origin))
    store = workspace.add_remote(tmp_path / "store")
    _project(workspace)
    workspace.git("push", "-q", "origin", "main")
    workspace.pipe("exp", "run", "-n", "nine", "-S", "prep.n=9")
    pushed = workspace.pipe("exp", "push", "origin")
    assert "pushed 1 experiment(s)" in pushed.stderr
    assert "refs/exps/" in workspace.git("ls-remote", str(origin))
    assert any(store.rglob("*"))

    dest = tmp_path / "other"
    workspace.git("clone", "-q", "-b", "main", str(origin), str(dest))
    other = Workspace(dest, monkeypatch)
    monkeypatch.chdir(dest)
    assert "nine" in other.pipe("exp", "pull", "origin").stderr
    assert json.loads(other.pipe("exp", "list", "--json").stdout) == {
        other.git("rev-parse", "HEAD").strip(): ["nine"]}
    other.pipe("exp", "apply", "nine")
    assert other.read("prep.txt") == "prepared 9\n"
    assert "experiment 'missing' is not on 'origin'" in other.pipe("exp", "pull", "origin", "missing", exit_code=1).stderr


def test_an_experiment_another_process_claimed_is_not_run_twice(workspace: Workspace) -> None:
    from pipeline_engine.ops.exp.records import ExpState, claim, entries, release

    _project(workspace)
    workspace.pipe("exp", "run", "--queue", "-n", "q", "-S", "train.lr=0.2,0.3")
    project = workspace.project()
    taken = next(e for e in entries(project) if e.name == "q-1")
    assert claim(project, taken)  # as a live `pipe queue start` worker would hold it
    workspace.pipe("exp", "run", "--run-all", "-j", "2")
    assert set(_refs(workspace)) == {"q-2"}
    assert [e.name for e in entries(project, states=(ExpState.QUEUED,))] == ["q-1"]
    release(project, taken)
    workspace.pipe("exp", "run", "--run-all")
    assert set(_refs(workspace)) == {"q-1", "q-2"}


def test_exp_clean_removes_what_a_killed_run_left(workspace: Workspace) -> None:
    _project(workspace)
    base = workspace.git("rev-parse", "HEAD").strip()
    leftover = workspace.root / ".pipe/tmp/exps/run/gone-abc123"
    leftover.parent.mkdir(parents=True)
    workspace.git("worktree", "add", "--detach", "-q", str(leftover), base)
    workspace.git("update-ref", "refs/pipe/queue/dead-entry", base)
    workspace.pipe("exp", "run", "--queue", "-n", "kept", "-S", "train.lr=0.3")
    assert "removed 2 leftover(s)" in workspace.pipe("exp", "clean").stderr
    assert not leftover.exists() and "gone" not in workspace.git("worktree", "list")
    assert workspace.git("for-each-ref", "--format=%(refname)", "refs/pipe/queue").split() == [
        f"refs/pipe/queue/{base[:12]}-kept"]


def test_exp_show_all_branches_lists_each_baseline_with_its_experiments(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "-n", "on-main", "-S", "train.lr=0.3")
    workspace.git("checkout", "-q", "-b", "other")
    workspace.write({"params.yaml": workspace.read("params.yaml").replace("epochs: 2", "epochs: 3")})
    workspace.pipe("repro")
    workspace.commit("other baseline")
    workspace.pipe("exp", "run", "-n", "on-other", "-S", "train.lr=0.4")
    names = [r["name"] for r in json.loads(workspace.pipe("exp", "show", "--json").stdout)]
    assert names == ["workspace", "HEAD", "on-other"]
    rows = json.loads(workspace.pipe("exp", "show", "-a", "--json").stdout)
    assert [r["name"] for r in rows if r["kind"] == "exp"] == ["on-other", "on-main"]
    main_sha = workspace.git("rev-parse", "main").strip()
    assert next(r for r in rows if r["name"] == "on-main")["baseline"] == main_sha
    kept = workspace.pipe("exp", "show", "--csv", "--drop", ".*", "--keep", "acc").stdout.splitlines()[0]
    assert kept == "Experiment,rev,Created,State,acc"
    refused = workspace.pipe("exp", "show", "--drop", "train.(lr", exit_code=1).stderr
    assert "--drop 'train.(lr' is not a regular expression" in refused


def test_exp_apply_saves_uncommitted_changes_it_replaces(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "-n", "best", "-S", "train.lr=0.4")
    edited = workspace.read("params.yaml") + "extra: 1  # hand edit, not committed\n"
    workspace.write({"params.yaml": edited})
    result = workspace.pipe("exp", "apply", "best")
    assert "extra" not in workspace.read("params.yaml")  # replaced, as DVC does...
    saved = workspace.git("rev-parse", "refs/exps/apply/stash").strip()
    assert saved[:7] in result.stderr  # ...but recorded, and the user is told where
    assert workspace.git("show", f"{saved}:params.yaml") == edited
    assert workspace.git("status", "--porcelain", "--", "params.yaml").startswith(" M")  # index untouched
    assert "apply" not in workspace.pipe("exp", "list").stdout  # the stash is not an experiment
    workspace.git("restore", f"--source={saved}", "--", "params.yaml")
    assert workspace.read("params.yaml") == edited


def test_exp_apply_over_a_clean_workspace_saves_nothing(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "-n", "best", "-S", "train.lr=0.4", "--temp")
    assert "saved" not in workspace.pipe("exp", "apply", "best").stderr
    assert workspace.git("for-each-ref", "refs/exps/apply").strip() == ""


def test_exp_pull_and_push_do_not_replace_a_diverged_experiment_without_force(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = tmp_path / "origin.git"
    workspace.git("init", "-q", "--bare", str(origin))
    workspace.git("remote", "add", "origin", str(origin))
    _project(workspace)
    workspace.git("push", "-q", "origin", "main")
    workspace.pipe("exp", "run", "-n", "nine", "-S", "prep.n=9")
    workspace.pipe("exp", "push", "--no-cache", "origin")
    theirs = _refs(workspace)["nine"]
    dest = tmp_path / "other"
    workspace.git("clone", "-q", "-b", "main", str(origin), str(dest))
    other = Workspace(dest, monkeypatch)
    monkeypatch.chdir(dest)
    other.pipe("exp", "save", "-n", "nine")  # another experiment under the same name, made here
    mine = _refs(other)["nine"]
    assert mine != theirs
    refused = other.pipe("exp", "pull", "--no-cache", "origin", "nine", exit_code=1).stderr
    assert "'nine'" in refused and "-f" in refused
    assert _refs(other)["nine"] == mine  # the local experiment is kept
    other.pipe("exp", "push", "--no-cache", "origin", "nine", exit_code=1)
    assert theirs in other.git("ls-remote", str(origin))  # and theirs is not replaced either
    other.pipe("exp", "pull", "--no-cache", "-f", "origin", "nine")
    assert _refs(other)["nine"] == theirs


def test_queue_remove_removes_queue_entries_only_never_a_recorded_experiment(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "-n", "kept", "-S", "train.lr=0.3")
    workspace.pipe("exp", "run", "--queue", "-n", "waiting", "-S", "train.lr=0.5")
    refused = workspace.pipe("queue", "remove", "kept", exit_code=1).stderr
    assert "'kept' is not in the queue" in refused and "pipe exp remove" in refused
    assert "kept" in _refs(workspace)
    assert "--all" in workspace.pipe("queue", "remove", exit_code=1).stderr
    workspace.pipe("queue", "remove", "waiting")
    assert "waiting" not in workspace.pipe("queue", "status").stdout
    assert "kept" in _refs(workspace)


def test_exp_push_without_a_pipe_remote_points_at_no_cache(workspace: Workspace, tmp_path: Path) -> None:
    _project(workspace)
    origin = tmp_path / "origin.git"
    workspace.git("init", "-q", "--bare", str(origin))
    workspace.pipe("exp", "run", "-n", "one", "-S", "train.lr=0.3")
    refused = workspace.pipe("exp", "push", str(origin), exit_code=None)
    assert refused.exit_code != 0 and "--no-cache" in refused.stderr
    assert "refs/exps/" not in workspace.git("ls-remote", str(origin))  # nothing half-shared
    workspace.pipe("exp", "push", "--no-cache", str(origin))
    assert "refs/exps/" in workspace.git("ls-remote", str(origin))


def test_experiment_commits_never_hold_the_local_config_even_when_its_gitignore_is_gone(workspace: Workspace) -> None:
    # credentials live in .pipe/config.local.yaml; `exp push` publishes experiment commits
    _project(workspace)
    (workspace.root / ".pipe" / ".gitignore").unlink()
    workspace.write({".pipe": {"config.local.yaml": "remotes:\n  store:\n    url: s3://bucket/x\n    secret_access_key: TOPSECRET\n"}})
    workspace.pipe("exp", "run", "-S", "train.lr=0.2")
    workspace.pipe("exp", "save", "-n", "saved")
    for name, sha in _refs(workspace).items():
        files = workspace.git("ls-tree", "-r", "--name-only", sha).split()
        assert not any(f.startswith(".pipe/") and not f.startswith(".pipe/config.yaml") for f in files), (name, files)


def test_a_single_experiment_is_applied_to_the_workspace_as_dvc_does(workspace: Workspace) -> None:
    """`dvc exp run` leaves the experiment's result in the workspace (DVC's test_new_simple): params,
    lock, metrics and outs, with the user's uncommitted changes it started from, and saves nothing
    aside for them (the experiment holds them); HEAD and the index stay."""
    _project(workspace)
    baseline = workspace.git("rev-parse", "HEAD").strip()
    workspace.write({"params.yaml": workspace.read("params.yaml").replace("epochs: 2", "epochs: 5")})
    result = workspace.pipe("exp", "run", "-n", "five", "-S", "train.lr=0.5")
    sha = _refs(workspace)["five"]
    params = workspace.read("params.yaml")
    assert "lr: 0.5  # learning rate" in params and "epochs: 5" in params
    assert json.loads(workspace.read("metrics.json")) == json.loads(_at(workspace, sha, "metrics.json")) == {"acc": 2.5}
    assert workspace.read("pipeline.lock") == _at(workspace, sha, "pipeline.lock")
    assert "saved" not in result.stderr and workspace.git("for-each-ref", "refs/exps/apply").strip() == ""
    assert workspace.git("rev-parse", "HEAD").strip() == baseline
    assert workspace.git("diff", "--cached", "--name-only").strip() == ""
    assert "up to date" in workspace.pipe("status").stderr + workspace.pipe("status").stdout


def test_a_workspace_edit_made_while_the_experiment_ran_is_saved_and_the_user_told(workspace: Workspace) -> None:
    """The applied result replaces params.yaml, edited after the experiment started from it: the edit
    goes to refs/exps/apply/stash, and `exp run` says so as `exp apply` does (it said nothing)."""
    _project(workspace)
    params = workspace.root / "params.yaml"
    edit = f"python -c \"open(r'{params}', 'a').write('edited: 1\\n')\""  # the user, while it runs
    workspace.write_pipeline({"edit": {"cmd": edit, "params": ["train.lr"]}})
    workspace.commit("a stage standing in for the user")

    result = workspace.pipe("exp", "run", "-S", "train.lr=0.3")

    saved = workspace.git("rev-parse", "refs/exps/apply/stash").strip()
    assert "edited: 1" in _at(workspace, saved, "params.yaml") and "edited" not in workspace.read("params.yaml")
    assert f"saved first ({saved[:7]}" in result.stderr


def test_an_experiment_that_fails_leaves_the_workspace_as_it_was(workspace: Workspace) -> None:
    _project(workspace, fail_when_lr=0.5)
    before = _files(workspace)
    workspace.pipe("exp", "run", "-S", "train.lr=0.5", exit_code=1)
    assert _files(workspace) == before


def test_an_out_the_user_changed_while_the_experiment_ran_is_kept_not_overwritten(workspace: Workspace) -> None:
    """The out is git-ignored, so no stash would hold the user's version: applying refuses it by name."""
    workspace.write({"params.yaml": "lr: 1\n"})
    own = workspace.root / "out.txt"
    # the stage writes the experiment's out in its worktree, and (standing in for the user) the
    # workspace's out while the experiment runs
    workspace.write_pipeline({"train": {
        "cmd": f"python -c \"import yaml; open('out.txt', 'w').write(str(yaml.safe_load(open('params.yaml'))['lr']))\""
               f" && if [ -e '{own}.armed' ]; then echo mine > '{own}'; fi",
        "params": ["lr"], "outs": ["out.txt"]}})
    workspace.pipe("repro")
    workspace.commit("baseline")
    (workspace.root / "out.txt.armed").write_text("")
    result = workspace.pipe("exp", "run", "-S", "lr=2", exit_code=1)
    assert "'out.txt' has changes that are not in the cache" in result.stderr
    assert "is recorded" in result.stderr and "pipe exp apply" in result.stderr
    assert workspace.read("out.txt") == "mine\n"
    assert len(_refs(workspace)) == 1  # the experiment itself is recorded
