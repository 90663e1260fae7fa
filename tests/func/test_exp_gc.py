"""gc and experiments: --all-experiments keeps what experiment commits use; gc never runs beside a running one."""

from __future__ import annotations

import time

import yaml

from pipeline_engine.ops.exp.records import ExpEntry, ExpState, save_entry
from tests.conftest import Workspace


def _project(ws: Workspace) -> None:
    ws.write({"params.yaml": "n: 1\n"})
    ws.write_pipeline({"make": {"cmd": "python -c \"import yaml; print(yaml.safe_load(open('params.yaml'))['n'] * 7)\" > out.txt",
                                "params": ["n"], "outs": ["out.txt"]}})
    ws.pipe("repro")
    ws.commit("baseline")


def test_gc_all_experiments_keeps_an_experiments_outputs_and_workspace_alone_does_not(workspace: Workspace) -> None:
    _project(workspace)
    workspace.pipe("exp", "run", "-S", "n=5", "--temp")
    lock = yaml.safe_load(workspace.git("show", workspace.git("for-each-ref", "--format=%(objectname)",
                                                              "refs/exps").split()[0] + ":pipeline.lock"))
    oid = lock["stages"]["make"]["outs"][0]["oid"]

    def cached() -> bool:
        return (workspace.root / ".pipe/cache/objects" / oid[:2] / oid[2:]).exists()

    assert cached()
    workspace.pipe("gc", "-w", "--all-experiments", "-f")
    assert cached(), "gc --all-experiments deleted an experiment's output"
    workspace.pipe("gc", "-w", "-f")
    assert not cached(), "gc -w keeps only the workspace (DVC's rule): the experiment's output goes"


def test_gc_refuses_while_an_experiment_runs_and_deletes_nothing(workspace: Workspace) -> None:
    _project(workspace)
    workspace.write({"stray.txt": "not used by anything\n"})
    workspace.pipe("add", "stray.txt")
    (workspace.root / "stray.txt.pipe").unlink()  # its object is now unused
    before = sorted(p.name for p in (workspace.root / ".pipe/cache/objects").rglob("*") if p.is_file())
    baseline = workspace.git("rev-parse", "HEAD").strip()
    save_entry(workspace.project(), ExpEntry("busy-bee", baseline, baseline, (), (), ExpState.RUNNING, time.time()))
    result = workspace.pipe("gc", "-w", "-f", exit_code=1)
    assert "busy-bee" in result.output and "pipe queue kill" in result.output
    after = sorted(p.name for p in (workspace.root / ".pipe/cache/objects").rglob("*") if p.is_file())
    assert after == before
    workspace.pipe("gc", "-w", "--dry")  # a dry run only reports: allowed


def test_an_experiment_does_not_start_while_gc_decides_what_is_unused(workspace: Workspace) -> None:
    """gc checks that no experiment runs, then deletes: one starting in between would lose its outs."""
    from pipeline_engine.ops.exp.records import entries, start_guard
    from pipeline_engine.project import Project
    from tests.procutil import start_pipe

    _project(workspace)
    project = Project(workspace.root)
    with start_guard(project, "pipe gc"):  # what gc holds from its check to its last deletion
        proc = start_pipe("exp", "run", "-n", "later", "-S", "n=5", cwd=workspace.root)
        time.sleep(2)
        assert proc.poll() is None, proc.communicate()
        assert all(e.state is not ExpState.RUNNING for e in entries(project))
        assert workspace.git("for-each-ref", "refs/exps").strip() == ""
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "later" in workspace.git("for-each-ref", "refs/exps")


def test_gc_all_experiments_keeps_the_data_a_queued_experiment_will_run_on(workspace: Workspace) -> None:
    """Queued from a workspace whose data was then replaced: gc -A-experiments deleted it, the run failed."""
    workspace.write({"params.yaml": "n: 1\n"})
    workspace.track({"data.txt": "v1\n"})
    workspace.write_pipeline({"use": {"cmd": "cat data.txt > out.txt", "deps": ["data.txt"], "params": ["n"],
                                      "outs": ["out.txt"]}})
    workspace.pipe("repro")
    workspace.commit("baseline")
    workspace.track({"data.txt": "v2\n"})
    workspace.pipe("exp", "run", "--queue", "-n", "later", "-S", "n=2")
    workspace.track({"data.txt": "v3\n"})
    workspace.pipe("gc", "-w", "--all-experiments", "-f")
    workspace.pipe("exp", "run", "--run-all")
    ref = workspace.git("for-each-ref", "--format=%(objectname)", "refs/exps").strip()
    assert workspace.git("show", f"{ref}:pipeline.lock")  # recorded, so it ran
    assert "later" not in workspace.pipe("queue", "status").stdout
