"""`pipe repro --executor dask`: stages as tasks on a real Dask scheduler with worker processes.

The fixture starts `dask scheduler` and two `dask worker` processes, each with its own
directory as cwd and local directory, outside the project: without a shared filesystem, the
only way a worker gets a dep is the project's remote (a local directory, or the moto S3 server).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.spec import load_spec
from tests.conftest import Workspace
from tests.s3server import DUMMY_ENV, S3Server, s3_bucket_fixture, s3_server_fixture  # noqa: F401 - fixtures

pytest.importorskip("distributed")
pytestmark = pytest.mark.dask


@dataclass
class Cluster:
    """A scheduler and its workers, each a process of its own; `workers` maps a name to its process."""

    address: str
    root: Path
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def kill(self, name: str) -> None:
        """SIGKILL worker `name` (no goodbye to the scheduler: a lost machine)."""
        proc = self.workers.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        """Kill every process of the cluster (nothing in it is worth a graceful shutdown)."""
        for proc in [*self.workers.values(), self.scheduler]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def start_cluster(root: Path, workers: Sequence[str], *, gpus: int = 0) -> Cluster:
    """`dask scheduler` plus one single-threaded `dask worker` per name, each in `root/<name>`.

    `gpus`: one more worker, 'gpu', with two threads and that many `GPU` resources (no GPU needed).
    """
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **DUMMY_ENV}
    env.pop("PIPE_WORKER_DIR", None)
    info = root / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(info)],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not info.exists() or not info.read_text().strip():
        assert time.monotonic() < deadline and scheduler.poll() is None, "the Dask scheduler did not start"
        time.sleep(0.1)
    cluster = Cluster(json.loads(info.read_text())["address"], root, scheduler)
    specs = [(name, "1", "CPU=1 MEMORY=2e9") for name in workers]
    if gpus:
        specs.append(("gpu", "2", f"CPU=2 MEMORY=2e9 GPU={gpus}"))
    for name, threads, resources in specs:
        home = root / name
        home.mkdir()
        cluster.workers[name] = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(info), "--name", name,
             "--nthreads", threads, "--no-nanny", "--no-dashboard", "--local-directory", str(home),
             "--resources", resources],
            cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
    _wait_for_workers(cluster.address, len(specs))
    return cluster


def _wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(count, timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scheduler and workers 'w1', 'w2' and 'gpu' (2 GPUs), shared by this module's tests that kill no worker."""
    running = start_cluster(tmp_path_factory.mktemp("dask"), ["w1", "w2"], gpus=2)
    yield running
    running.stop()


# A fan-out/fan-in pipeline: a script tracked by git (never cached) is a dep of the fan-out stages.
PIPELINE = {
    "prepare": {"cmd": "mkdir -p data && seq 1 30 > data/numbers.txt && echo \"on $DASK_WORKER_NAME\"",
                "deps": ["raw.txt"], "outs": ["data"]},
    "part": {
        "foreach": ["odd", "even"],
        "do": {"cmd": "sh scripts/pick.sh ${item} < data/numbers.txt > parts/${item}.txt && echo \"on $DASK_WORKER_NAME\"",
               "deps": ["scripts/pick.sh", "data"], "outs": ["parts/${item}.txt"]},
    },
    "report": {
        "wdir": "report",
        "cmd": ["cat ../parts/odd.txt ../parts/even.txt | wc -l > ../summary.txt",
                "echo '{\"rows\": 30}' > ../metrics.json", "echo \"on $DASK_WORKER_NAME\""],
        "deps": ["../parts/odd.txt", "../parts/even.txt"],
        "outs": ["../summary.txt"],
        "metrics": [{"../metrics.json": {"cache": False}}],
    },
}
FILES = {"raw.txt": "raw\n", "report": {"README": "the report stage runs here\n"},
         "scripts": {"pick.sh": "if [ \"$1\" = odd ]; then awk 'NR % 2 == 1'; else awk 'NR % 2 == 0'; fi\n"},
         "parts": {".keep": ""}}


def _project(workspace: Workspace, remote: Path | None, pipeline: dict[str, object] | None = None) -> None:
    workspace.write(FILES)
    workspace.write_pipeline(pipeline or PIPELINE)
    if remote is not None:
        workspace.add_remote(remote)
    workspace.commit("pipeline")


def test_a_fan_out_fan_in_pipeline_on_workers_matches_a_local_run(
    workspace: Workspace, cluster: Cluster, tmp_path: Path
) -> None:
    _project(workspace, tmp_path / "remote")
    local = workspace.clone("local")
    local.pipe("repro")
    workspace.monkeypatch.chdir(workspace.root)  # type: ignore[union-attr]

    ran = workspace.pipe("repro", "--executor", "dask", "--scheduler", cluster.address, "-j", "4")
    assert "4 ran" in ran.stderr
    assert workspace.lock() == local.lock()
    for path in ("data/numbers.txt", "parts/odd.txt", "parts/even.txt", "summary.txt", "metrics.json"):
        assert workspace.read(path) == local.read(path), path
    # Each stage ran on a worker; its log came back to the client, named after the stage.
    logs = workspace.root / ".pipe" / "tmp" / "logs"
    for stage in ("prepare", "part@odd", "part@even", "report"):
        assert (logs / f"{stage}.log").read_text().strip() in {"on w1", "on w2", "on gpu"}, stage
    assert not any(p.name == "numbers.txt" for p in cluster.root.rglob("*") if "scratch" in p.parts), \
        "a scratch directory outlived its attempt"

    assert "nothing to do" in workspace.pipe("repro").stderr  # the local executor agrees
    (workspace.root / "scripts" / "pick.sh").write_text(FILES["scripts"]["pick.sh"] + "# v2\n")  # type: ignore[index]
    again = workspace.pipe("repro", "--executor", "dask", "--scheduler", cluster.address)
    assert "2 ran" in again.stderr and "2 unchanged" in again.stderr  # report: same outs upstream, cut off


def test_without_a_scheduler_a_local_cluster_of_worker_processes_runs_the_stages(
    workspace: Workspace, tmp_path: Path
) -> None:
    _project(workspace, tmp_path / "remote", {
        "a": {"cmd": "echo \"$DASK_WORKER_NAME\" > a.txt", "outs": ["a.txt"], "resources": {"cpus": 1}},
        "b": {"cmd": "cat a.txt > b.txt", "deps": ["a.txt"], "outs": ["b.txt"]},
    })
    ran = subprocess.run([sys.executable, "-m", "pipeline_engine", "repro", "--executor", "dask", "-j", "2"],
                         check=False, cwd=workspace.root, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert workspace.read("a.txt").strip() in {"0", "1"}  # LocalCluster's worker names
    assert workspace.read("b.txt") == workspace.read("a.txt")
    assert set(workspace.lock()["stages"]) == {"a", "b"}


def test_a_stage_needing_resources_no_worker_has_is_refused_before_anything_runs(
    workspace: Workspace, cluster: Cluster, tmp_path: Path
) -> None:
    _project(workspace, tmp_path / "remote", {
        "first": {"cmd": "echo 1 > first.txt", "outs": ["first.txt"]},
        "train": {"cmd": "echo 2 > model.txt", "deps": ["first.txt"], "outs": ["model.txt"],
                  "resources": {"gpus": 4, "memory": "1GiB"}},
    })
    refused = workspace.pipe("repro", "--scheduler", cluster.address, exit_code=1)
    assert "stage 'train': 'resources' asks for GPU=4, MEMORY=1.07374e+09" in refused.stderr
    assert "'gpu': CPU=2, GPU=2, MEMORY=2e+09; 'w1': CPU=1, MEMORY=2e+09" in refused.stderr
    assert "dask worker --resources" in refused.stderr
    assert not (workspace.root / "first.txt").exists() and not (workspace.root / "pipeline.lock").exists()

    # Within what a worker has, the stage runs there.
    workspace.write_pipeline({"train": {"cmd": "echo 2 > model.txt", "outs": ["model.txt"],
                                        "resources": {"cpus": 1, "memory": "1.5 GB"}}})
    workspace.pipe("repro", "--scheduler", cluster.address)
    assert workspace.read("model.txt") == "2\n"


def test_gpu_stages_run_where_gpus_are_and_see_the_ones_they_hold(
    workspace: Workspace, cluster: Cluster, tmp_path: Path
) -> None:
    show = "echo \"$DASK_WORKER_NAME:$(printenv CUDA_VISIBLE_DEVICES || echo unset)\" >"
    _project(workspace, tmp_path / "remote", {
        "both": {"cmd": f"{show} both.txt", "outs": ["both.txt"], "resources": {"gpus": 2}},
        "one": {"cmd": f"{show} one.txt", "outs": ["one.txt"], "resources": {"gpus": 1}},
        "none": {"cmd": f"{show} none.txt", "outs": ["none.txt"], "resources": {"cpus": 1}},
    })
    workspace.pipe("repro", "--scheduler", cluster.address)
    assert workspace.read("both.txt") == "gpu:0,1\n"
    assert workspace.read("one.txt") in {"gpu:0\n", "gpu:1\n"}
    assert workspace.read("none.txt").endswith(":unset\n")


def test_a_failing_stage_fails_the_run_with_its_log_and_keep_going_runs_the_rest(
    workspace: Workspace, cluster: Cluster, tmp_path: Path
) -> None:
    _project(workspace, tmp_path / "remote", {
        "bad": {"cmd": "echo \"broken on $DASK_WORKER_NAME\" && exit 4", "outs": ["bad.txt"]},
        "after": {"cmd": "cp bad.txt after.txt", "deps": ["bad.txt"], "outs": ["after.txt"]},
        "good": {"cmd": "echo ok > good.txt", "outs": ["good.txt"]},
    })
    failed = workspace.pipe("repro", "--scheduler", cluster.address, "-k", exit_code=3)
    assert "stage 'bad' failed: its command exited with code 4" in failed.stderr
    # The shipped log, shown (prefixed with the stage name when others run) and written.
    assert re.search(r"broken on (w1|w2|gpu)\n", failed.stderr)
    assert re.fullmatch(r"broken on (w1|w2|gpu)\n", (workspace.root / ".pipe" / "tmp" / "logs" / "bad.log").read_text())
    assert set(workspace.lock()["stages"]) == {"good"}
    assert not (workspace.root / "after.txt").exists()


def test_no_checkout_leaves_the_last_outs_on_the_remote_for_a_later_pull(
    workspace: Workspace, cluster: Cluster, tmp_path: Path
) -> None:
    _project(workspace, tmp_path / "remote", {
        "features": {"cmd": "echo features > features.txt", "outs": ["features.txt"]},
        "model": {"cmd": "cat features.txt > model.txt && echo trained >> model.txt",
                  "deps": ["features.txt"], "outs": ["model.txt"]},
    })
    workspace.pipe("repro", "--scheduler", cluster.address, "--no-checkout")
    assert set(workspace.lock()["stages"]) == {"features", "model"}
    assert workspace.read("features.txt") == "features\n"  # read by a later stage: checked out
    assert not (workspace.root / "model.txt").exists()
    assert "model.txt" in workspace.read(".gitignore")

    workspace.pipe("pull")
    assert workspace.read("model.txt") == "features\ntrained\n"
    assert "nothing to do" in workspace.pipe("repro").stderr
    refused = workspace.pipe("repro", "--executor", "local", "--no-checkout", exit_code=1)
    assert "--no-checkout leaves outs on the remote" in refused.stderr


def test_shared_filesystem_mode_runs_in_the_project_and_needs_no_remote(
    workspace: Workspace, cluster: Cluster
) -> None:
    _project(workspace, None, {
        "where": {"cmd": "pwd > where.txt && echo \"$DASK_WORKER_NAME\" > who.txt", "outs": ["where.txt"],
                  "metrics": [{"who.txt": {"cache": False}}]},
    })
    workspace.pipe("config", "executor.shared_fs", "true")
    workspace.pipe("config", "executor.type", "dask")
    workspace.pipe("config", "executor.scheduler", cluster.address)
    workspace.pipe("repro")
    assert Path(workspace.read("where.txt").strip()).resolve() == workspace.root.resolve()
    assert workspace.read("who.txt").strip() in {"w1", "w2", "gpu"}
    assert "nothing to do" in workspace.pipe("repro", "--executor", "local").stderr


def test_killing_a_worker_mid_stage_still_completes_the_run(workspace: Workspace, tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "dask", ["k1", "k2"])
    try:
        started = tmp_path / "started"
        started.mkdir()
        _project(workspace, tmp_path / "remote", {
            "slow": {"cmd": f"echo $DASK_WORKER_NAME > {started}/$DASK_WORKER_NAME && sleep 4 && "
                            "echo $DASK_WORKER_NAME > slow.txt", "outs": ["slow.txt"]},
        })
        run = subprocess.Popen([sys.executable, "-m", "pipeline_engine", "repro", "--scheduler", cluster.address],
                               cwd=workspace.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not any(started.iterdir()):
            assert time.monotonic() < deadline and run.poll() is None, run.stderr.read() if run.stderr else ""
            time.sleep(0.05)
        first = next(started.iterdir()).name
        cluster.kill(first)
        _, err = run.communicate(timeout=90)
        assert run.returncode == 0, err
        other = ({"k1", "k2"} - {first}).pop()
        assert workspace.read("slow.txt").strip() == other
        assert set(workspace.lock()["stages"]) == {"slow"}
    finally:
        cluster.stop()


def test_ctrl_c_stops_the_commands_on_the_workers_and_keeps_finished_stages(
    workspace: Workspace, cluster: Cluster, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    _project(workspace, tmp_path / "remote", {
        "fast": {"cmd": "echo fast > fast.txt", "outs": ["fast.txt"]},
        "slow": {"cmd": f"touch {marks}/started && sleep 3 && touch {marks}/finished && touch slow.txt",
                 "deps": ["fast.txt"], "outs": ["slow.txt"]},
    })
    run = subprocess.Popen([sys.executable, "-m", "pipeline_engine", "repro", "--scheduler", cluster.address],
                           cwd=workspace.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (marks / "started").exists():
        assert time.monotonic() < deadline and run.poll() is None, "stage 'slow' never started"
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert "interrupted" in err
    assert set(workspace.lock()["stages"]) == {"fast"}
    time.sleep(4)
    assert not (marks / "finished").exists(), "the worker's command ran on after Ctrl-C"


@pytest.mark.s3
def test_an_s3_remote_carries_deps_and_outs_between_client_and_workers(
    workspace: Workspace, cluster: Cluster, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    _project(workspace, None)
    workspace.pipe("remote", "add", "-d", "shared", f"s3://{s3_bucket}/project")
    workspace.pipe("remote", "modify", "shared", "endpoint_url", s3_server.endpoint_url)
    workspace.commit("s3 remote")
    workspace.pipe("repro", "--scheduler", cluster.address)
    assert workspace.read("summary.txt").strip() == "30"
    workspace.commit("lock")
    # A clone pulls the outs the workers pushed: nothing to rerun.
    fresh = workspace.clone("fresh")
    fresh.pipe("pull")
    assert fresh.read("parts/odd.txt") == workspace.read("parts/odd.txt")
    assert "nothing to do" in fresh.pipe("repro").stderr


def test_stage_resources_parse_sizes_and_refuse_unknown_names(workspace: Workspace) -> None:
    workspace.write_pipeline({"a": {"cmd": "true", "resources": {"cpus": 2, "memory": "4GiB", "gpus": 1}}})
    stage = load_spec(workspace.root).stages["a"]
    assert dict(stage.resources) == {"cpus": 2.0, "gpus": 1.0, "memory": 4 * 2**30}
    workspace.write_pipeline({"a": {"cmd": "true", "resources": {"tpus": 1}}})
    with pytest.raises(SpecError, match=r"stage 'a': unknown key 'tpus' \(did you mean 'gpus'\?\)"):
        load_spec(workspace.root)
    workspace.write_pipeline({"a": {"cmd": "true", "resources": {"memory": "lots"}}})
    with pytest.raises(SpecError, match="stage 'a'"):
        load_spec(workspace.root)


def test_without_a_shared_filesystem_a_default_remote_is_needed_before_anything_starts(workspace: Workspace) -> None:
    workspace.write_pipeline({"a": {"cmd": "echo a > a.txt", "outs": ["a.txt"]}})
    refused = workspace.pipe("repro", "--executor", "dask", exit_code=1)
    assert "no remote given and no default remote set" in refused.stderr
    assert "Dask workers receive deps" in refused.stderr and "executor.shared_fs" in refused.stderr
    assert not (workspace.root / "a.txt").exists()


@pytest.mark.parametrize("address", ["bogus://head:8786", "tcp://"])
def test_a_scheduler_address_dask_cannot_parse_is_an_error_not_a_traceback(workspace: Workspace, address: str) -> None:
    workspace.write_pipeline({"a": {"cmd": "echo a > a.txt", "outs": ["a.txt"]}})
    workspace.add_remote(workspace.root.parent / "store")
    refused = workspace.pipe("repro", "--scheduler", address, exit_code=None)
    assert refused.exit_code == 1 and "cannot connect to the Dask scheduler" in refused.stderr
    assert not (workspace.root / "a.txt").exists()


def test_a_local_repro_never_imports_dask() -> None:
    code = ("import sys; import pipeline_engine.ops.repro, pipeline_engine.cli.repro; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_experiments_run_their_stages_on_the_cluster_and_are_recorded_as_local_ones_are(
    workspace: Workspace, cluster: Cluster, tmp_path: Path
) -> None:
    workspace.write({"params.yaml": "n: 3\n"})
    _project(workspace, tmp_path / "remote", {
        "count": {"cmd": "seq 1 ${n} > count.txt && echo \"$DASK_WORKER_NAME\" > where.txt",
                  "params": ["n"], "outs": ["count.txt"], "metrics": [{"where.txt": {"cache": False}}]},
    })
    workspace.pipe("exp", "run", "-S", "n=2,4", "--scheduler", cluster.address)
    refs = workspace.git("for-each-ref", "--format=%(objectname)", "refs/exps").split()
    assert len(refs) == 2
    for sha in refs:
        n = int(workspace.git("show", f"{sha}:params.yaml").split(":")[1])
        assert workspace.git("show", f"{sha}:where.txt").strip() in {"w1", "w2", "gpu"}, "ran on a worker"
        oid = yaml.safe_load(workspace.git("show", f"{sha}:pipeline.lock"))["stages"]["count"]["outs"][0]["oid"]
        obj = workspace.root / ".pipe" / "cache" / "objects" / oid[:2] / oid[2:]
        assert obj.read_text() == "".join(f"{i}\n" for i in range(1, n + 1)), "the out reached the shared cache"
    assert not (workspace.root / "count.txt").exists(), "the user's workspace is untouched"
