"""Pairs of real `pipe` processes started together on one project: one waits (`--wait`) or fails at once
with the LockedError message naming the holder, and nothing is corrupted either way.

PIPE_TRIALS sets the trial count per pair (default 10), PIPE_SEED the seed (printed in failures).
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import pytest

from pipeline_engine.ops.verify import verify
from pipeline_engine.project import Project
from tests.procutil import pipe_process, start_pipe
from tests.reliability.projstate import PIPELINE, digest_tree, set_remote, state, temp_files, write_data

pytestmark = pytest.mark.reliability

TRIALS = int(os.environ.get("PIPE_TRIALS", "10"))
SEED = int(os.environ.get("PIPE_SEED", str(random.randrange(1 << 30))))
LOCKED = "another pipe process is working in this project (pid "


def race(ws: Path, first: tuple[str, ...], second: tuple[str, ...], delay: float) -> list[tuple[int, str]]:
    """Start both commands (the second after `delay` s); their (exit code, stderr)."""
    procs = [start_pipe(*first, cwd=ws)]
    time.sleep(delay)
    procs.append(start_pipe(*second, cwd=ws))
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        results.append((proc.returncode, err))
    return results


def outcome_problems(results: list[tuple[int, str]], commands: list[tuple[str, ...]]) -> list[str]:
    """Each command succeeded, or failed at once with the LockedError message; at least one succeeded."""
    problems = []
    for (code, err), args in zip(results, commands):
        if code != 0 and not (code == 1 and LOCKED in err and "Traceback" not in err):
            problems.append(f"pipe {' '.join(args)} exited {code}: {err.strip()[-400:]}")
    if all(code != 0 for code, _ in results):
        problems.append("both failed: one of them must get the lock")
    return problems


def setup(tmp_path: Path, template: Path, name: str) -> Path:
    trial = tmp_path / name
    shutil.copytree(template, trial / "ws", symlinks=True)
    (trial / "remote").mkdir()
    set_remote(trial / "ws", trial / "remote")
    return trial


def integrity_problems(trial: Path, *, status: bool) -> list[str]:
    found = [f"temp file left: {t}" for t in temp_files(trial)]
    found += [f"corrupt object {oid}" for oid, _ in verify(Project(trial / "ws")).corrupt]
    if status:  # (every trial's end state is also compared with the first's)
        proc = pipe_process("status", cwd=trial / "ws")
        if proc.returncode != 0 or "up to date" not in proc.stdout + proc.stderr:
            found.append(f"status after both: {proc.stdout} {proc.stderr}")
    return found


def run_pairs(
    tmp_path: Path, template: Path, label: str, prepare: Path | None,
    first: tuple[str, ...], second: tuple[str, ...], *, retry: bool = True,
) -> tuple[list[str], dict[str, int]]:
    """TRIALS races of `first` and `second`; failed ones are rerun; returns problems and outcome counts."""
    rng = random.Random(f"{SEED}-{label}")
    problems: list[str] = []
    counts = {"both ran": 0, "one locked out": 0}
    reference: dict[str, str] | None = None
    for n in range(TRIALS):
        trial = setup(tmp_path, prepare or template, f"{label}-{n}")
        delay = rng.uniform(0, 0.3)
        where = f"[seed {SEED}, {label} trial {n}, second started after {delay:.3f} s]"
        results = race(trial / "ws", first, second, delay)
        found = outcome_problems(results, [first, second])
        counts["both ran" if all(c == 0 for c, _ in results) else "one locked out"] += 1
        for (code, _), args in zip(results, [first, second]):
            if code != 0 and retry:
                again = pipe_process(*args, cwd=trial / "ws")
                if again.returncode != 0:
                    found.append(f"rerun of pipe {' '.join(args)} failed: {again.stderr.strip()[-400:]}")
        found += integrity_problems(trial, status=n in (0, TRIALS - 1))
        now = state(trial)
        if reference is None:
            reference = now
        diff = sorted(k for k in reference.keys() | now.keys() if reference.get(k) != now.get(k))
        found += [f"end state differs from trial 0: {k}" for k in diff[:5]]
        problems += [f"{where} {p}" for p in found]
        if not found and n:
            shutil.rmtree(trial)
    return problems, counts


def report(label: str, problems: list[str], counts: dict[str, int]) -> None:
    summary = f"{label}: {TRIALS} trials, {counts}, {len(problems)} problems, seed {SEED}"
    print(summary)
    assert not problems, summary + "\n" + "\n".join(problems[:20])


def test_two_adds_started_together(tmp_path: Path, _workspace_template: Path) -> None:
    start = setup(tmp_path, _workspace_template, "start")
    write_data(start / "ws", 150, seed=SEED)
    shutil.move(start / "ws" / "data", start / "ws" / "one")
    write_data(start / "ws", 150, seed=SEED, version=1)
    shutil.move(start / "ws" / "data", start / "ws" / "two")
    before = digest_tree(start / "ws", skip=(".git", ".pipe"))
    problems, counts = run_pairs(tmp_path, _workspace_template, "add+add", start / "ws", ("add", "one"), ("add", "two"))
    for trial in tmp_path.glob("add+add-*"):
        after = digest_tree(trial / "ws", skip=(".git", ".pipe"))
        problems += [f"{trial.name}: user file {k} changed" for k in before if after.get(k) != before[k]][:3]
    report("add + add", problems, counts)


def test_repro_and_gc_started_together(tmp_path: Path, _workspace_template: Path) -> None:
    start = setup(tmp_path, _workspace_template, "start")
    (start / "ws" / "pipeline.yaml").write_text(PIPELINE)
    write_data(start / "ws", 100, seed=SEED)
    pipe_process("add", "data", cwd=start / "ws", check=0)
    write_data(start / "ws", 50, seed=SEED, version=1)  # old objects for gc to remove
    pipe_process("add", "data", cwd=start / "ws", check=0)
    problems, counts = run_pairs(tmp_path, _workspace_template, "repro+gc", start / "ws", ("repro",), ("gc", "-w", "-f"))
    report("repro + gc", problems, counts)


def test_two_pushes_started_together(tmp_path: Path, _workspace_template: Path) -> None:
    start = setup(tmp_path, _workspace_template, "start")
    write_data(start / "ws", 150, seed=SEED)
    pipe_process("add", "data", cwd=start / "ws", check=0)
    problems, counts = run_pairs(tmp_path, _workspace_template, "push+push", start / "ws", ("push",), ("push",))
    report("push + push", problems, counts)


def test_two_repros_with_wait_both_complete(tmp_path: Path, _workspace_template: Path) -> None:
    start = setup(tmp_path, _workspace_template, "start")
    (start / "ws" / "pipeline.yaml").write_text(PIPELINE)
    wait = ("repro", "--wait")
    problems, counts = run_pairs(tmp_path, _workspace_template, "repro-wait x2", start / "ws", wait, wait, retry=False)
    if counts["one locked out"]:
        problems.append(f"'repro --wait' must wait, not fail: {counts}")
    report("repro --wait + repro --wait", problems, counts)


def test_parallel_stages_each_get_their_gitignore_line(tmp_path: Path, _workspace_template: Path) -> None:
    """Found by the kill tests: stages saving outs at once rewrote .gitignore over each other's lines."""
    rng = random.Random(f"{SEED}-gitignore")
    stages = "".join(f"  s{i}:\n    cmd: echo {i} > o{i}.txt\n    outs: [o{i}.txt]\n" for i in range(8))
    problems = []
    for n in range(max(1, TRIALS // 2)):
        trial = setup(tmp_path, _workspace_template, f"gitignore-{n}")
        (trial / "ws" / "pipeline.yaml").write_text("stages:\n" + stages)
        proc = pipe_process("repro", "-j", str(rng.choice([4, 8])), cwd=trial / "ws")
        assert proc.returncode == 0, proc.stderr
        lines = set((trial / "ws" / ".gitignore").read_text().splitlines())
        missing = sorted({f"/o{i}.txt" for i in range(8)} - lines)
        if missing:
            problems.append(f"[seed {SEED}, trial {n}] outs not git-ignored: {missing}")
    assert not problems, "\n".join(problems)
