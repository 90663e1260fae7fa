"""SIGKILL of a real `pipe` process at random moments of add, repro, push, pull, checkout and gc.

Each trial starts from the same state, kills the command after a seeded random delay, then checks:
no user file lost or truncated; the rerun (the next command) completes; afterwards no temporary
file is left anywhere in the project or cache, every cached object hashes to its name, and the
project, cache and remote equal those of an uninterrupted run. PIPE_TRIALS sets the trial count
(default 25 per command), PIPE_SEED the seed (printed in every failure message), PIPE_ADD_FILES
the size of the directory `pipe add` is killed on (default 1,000 files).
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline_engine.ops.verify import verify
from pipeline_engine.project import Project
from tests.procutil import pipe_process, start_pipe
from tests.reliability.projstate import PIPELINE, TEMP, digest_tree, set_remote, state, temp_files, write_data

pytestmark = pytest.mark.reliability

TRIALS = int(os.environ.get("PIPE_TRIALS", "25"))
SEED = int(os.environ.get("PIPE_SEED", str(random.randrange(1 << 30))))
ADD_FILES = int(os.environ.get("PIPE_ADD_FILES", "1000"))  # `pipe add` of a directory of many small files
DATA_FILES = 200  # the other commands: enough objects to be killed in the middle
def copy_trial(start: Path, dest: Path) -> Path:
    shutil.copytree(start, dest, symlinks=True)
    set_remote(dest / "ws", dest / "remote")
    return dest


@dataclass(frozen=True)
class Scenario:
    """One command under test: how to build its starting state, and which workspace paths are user data."""

    args: tuple[str, ...]
    prepare: Callable[[Path], None]
    # "kept": data/ must stay exactly as it was; "complete": every data/ file present is whole and right
    user_data: str


def prep_add(ws: Path) -> None:
    write_data(ws, ADD_FILES, seed=SEED)


def prep_repro(ws: Path) -> None:
    (ws / "pipeline.yaml").write_text(PIPELINE)


def prep_push(ws: Path) -> None:
    write_data(ws, DATA_FILES, seed=SEED)
    pipe_process("add", "data", cwd=ws, check=0)


def prep_pull(ws: Path) -> None:
    prep_push(ws)
    pipe_process("push", cwd=ws, check=0)
    shutil.rmtree(ws / "data")
    shutil.rmtree(ws / ".pipe" / "cache")


def prep_checkout(ws: Path) -> None:
    prep_push(ws)
    shutil.rmtree(ws / "data")


def prep_gc(ws: Path) -> None:
    prep_push(ws)
    write_data(ws, DATA_FILES // 2, seed=SEED, version=1)  # half the files change: their old objects are unused
    pipe_process("add", "data", cwd=ws, check=0)


SCENARIOS = {
    "add": Scenario(("add", "data"), prep_add, "kept"),
    "repro": Scenario(("repro",), prep_repro, "none"),
    "push": Scenario(("push",), prep_push, "kept"),
    "pull": Scenario(("pull",), prep_pull, "complete"),
    "checkout": Scenario(("checkout",), prep_checkout, "complete"),
    "gc": Scenario(("gc", "-w", "-f"), prep_gc, "kept"),
}


def check_user_data(kind: str, trial: Path, start: dict[str, str], reference: dict[str, str]) -> list[str]:
    """Problems with the user's data right after the kill."""
    now = {k: v for k, v in digest_tree(trial / "ws" / "data").items() if not TEMP.search(k.rsplit("/", 1)[-1])}
    if kind == "kept":
        lost = sorted(set(start) - set(now))
        changed = sorted(k for k in start.keys() & now.keys() if start[k] != now[k])
        return [f"user file {k} lost" for k in lost[:3]] + [f"user file {k} changed" for k in changed[:3]]
    if kind == "complete":
        wrong = sorted(k for k, v in now.items() if reference.get(f"data/{k}") != v)
        return [f"data/{k} is partial or wrong after the kill" for k in wrong[:3]]
    return []


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sigkill_at_random_moments_loses_nothing_and_the_rerun_equals_an_uninterrupted_run(
    name: str, tmp_path: Path, _workspace_template: Path
) -> None:
    scenario = SCENARIOS[name]
    rng = random.Random(f"{SEED}-{name}")
    start = tmp_path / "start"
    shutil.copytree(_workspace_template, start / "ws", symlinks=True)
    (start / "remote").mkdir()
    set_remote(start / "ws", start / "remote")
    scenario.prepare(start / "ws")
    start_data = digest_tree(start / "ws" / "data")

    ref = copy_trial(start, tmp_path / "reference")
    began = time.monotonic()
    pipe_process(*scenario.args, cwd=ref / "ws", check=0)
    duration = time.monotonic() - began
    reference = state(ref)

    problems: list[str] = []
    killed_mid_run = 0
    for trial_no in range(TRIALS):
        trial = copy_trial(start, tmp_path / f"trial-{trial_no}")
        delay = rng.uniform(0.05, duration * 1.1)
        where = f"[seed {SEED}, {name} trial {trial_no}, kill after {delay:.3f} s of ~{duration:.2f} s]"
        proc = start_pipe(*scenario.args, cwd=trial / "ws")
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=60)
        killed_mid_run += proc.returncode == -9
        found = check_user_data(scenario.user_data, trial, start_data, reference)
        rerun = pipe_process(*scenario.args, cwd=trial / "ws")
        if rerun.returncode != 0:
            found.append(f"the rerun failed ({rerun.returncode}): {rerun.stderr.strip()[-500:]}")
        found += [f"temp file left after the next command: {t}" for t in temp_files(trial)[:5]]
        result = verify(Project(trial / "ws"))
        found += [f"corrupt object {oid} in the cache" for oid, _ in result.corrupt]
        now = state(trial)
        diff = sorted(k for k in reference.keys() | now.keys() if reference.get(k) != now.get(k))
        found += [f"differs from an uninterrupted run: {k}" for k in diff[:5]]
        problems += [f"{where} {p}" for p in found]
        if not found:
            shutil.rmtree(trial)
    summary = f"{name}: {TRIALS} trials ({killed_mid_run} killed mid-run), {len(problems)} problems, seed {SEED}"
    print(summary)
    assert not problems, summary + "\n" + "\n".join(problems[:20])
