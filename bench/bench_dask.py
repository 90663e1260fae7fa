"""Stages on a Dask cluster (issue 12): throughput of independent stages and per-task overhead.

Run:  python bench/bench_dask.py [--workers 4] [--repeat 3]
Starts `dask scheduler` and `--workers` single-threaded `dask worker` processes on this machine
(each in its own directory, outside the project), a project with a local-directory remote,
then times `pipe repro -f --scheduler ADDR` (the whole process: start-up, connecting, shipping
deps, running, fetching outs, writing the lock) for:
  - 16 independent stages of `sleep 1` (target: under 5 s on 4 workers);
  - one no-op stage (a task's round trip), beside the same stage with the local executor;
  - a 50-stage diamond: one source, 48 stages reading it, one stage reading all 48.
Needs `pip install 'pipeline-engine[dask]'`; there is no dvc equivalent to compare with.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import Timing, pipe_bin, print_table, run, time_runs

_GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]


def start_cluster(base: Path, workers: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A scheduler and `workers` single-threaded workers; returns its address and the processes."""
    info = base / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(info)],
        cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    while not info.exists() or not info.read_text().strip():
        time.sleep(0.1)
    address = json.loads(info.read_text())["address"]
    for i in range(workers):
        home = base / f"w{i}"
        home.mkdir()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(info), "--name", f"w{i}",
             "--nthreads", "1", "--no-nanny", "--no-dashboard", "--local-directory", str(home)],
            cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(workers, timeout=60)
    return address, procs


def project(base: Path, name: str, stages: dict[str, object]) -> Path:
    """A git repository with pipe initialised, a local remote and `stages` in pipeline.yaml."""
    root = base / name
    root.mkdir()
    run(["git", "init", "-q"], root)
    run([pipe_bin(), "init"], root)
    run([pipe_bin(), "remote", "add", "-d", "store", str(base / f"{name}-remote")], root)
    (root / "pipeline.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    run(["git", "add", "-A"], root)
    run([*_GIT, "commit", "-q", "-m", "pipeline"], root)
    return root


def diamond() -> dict[str, object]:
    middle = {f"m{i:02}": {"cmd": f"cat src.txt > m{i:02}.txt && echo {i} >> m{i:02}.txt",
                           "deps": ["src.txt"], "outs": [f"m{i:02}.txt"]} for i in range(48)}
    return {"source": {"cmd": "echo source > src.txt", "outs": ["src.txt"]}, **middle,
            "sink": {"cmd": "cat m*.txt > sink.txt", "deps": sorted(f"m{i:02}.txt" for i in range(48)),
                     "outs": ["sink.txt"]}}


def task_round_trip(address: str, base: Path, count: int = 20) -> float:
    """Mean seconds from submit to result of a no-op job on a connected executor (shared-fs mode: no transfers)."""
    from pipeline_engine.runner.dask_executor import DaskExecutor
    from pipeline_engine.runner.executor import StageJob

    with DaskExecutor(address, jobs=1) as executor:
        job = StageJob(name="noop", cmd="true", root=base)
        executor.submit(job).result()  # warm: the worker imports pipe's modules once
        start = time.perf_counter()
        for _ in range(count):
            executor.submit(job).result()
        return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        base = Path(tmp)
        (base / "cluster").mkdir()
        address, procs = start_cluster(base / "cluster", args.workers)
        try:
            sleepers = project(base, "sleepers", {f"s{i:02}": {"cmd": f"sleep 1 && echo {i} > s{i:02}.txt",
                                                               "outs": [f"s{i:02}.txt"]} for i in range(16)})
            noop = project(base, "noop", {"noop": {"cmd": "echo > noop.txt", "outs": ["noop.txt"]}})
            dag = project(base, "diamond", diamond())
            remote = [pipe_bin(), "repro", "-f", "--scheduler", address, "-j", "64"]
            local = [pipe_bin(), "repro", "-f"]
            workloads = [
                ("16 x sleep 1 on the cluster", remote, sleepers),
                ("no-op stage on the cluster", remote, noop),
                ("no-op stage, local executor", local, noop),
                ("50-stage diamond on the cluster", remote, dag),
                ("50-stage diamond, local executor", local, dag),
            ]
            rows = [Timing(name, time_runs(lambda a=argv, r=root: run(a, r), repeat=args.repeat), None)
                    for name, argv, root in workloads]
            rows.append(Timing("one no-op task's round trip (connected, in-process)",
                               task_round_trip(address, base), None))
            print_table(f"pipe repro -f on a Dask cluster of {args.workers} single-threaded workers "
                        f"({os.cpu_count()} CPUs)", rows)
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


if __name__ == "__main__":
    main()
