"""Concurrent `pipe remote` edits: every edit survives (the config lock serialises read-modify-write)."""

from __future__ import annotations

import os
import random

import pytest
import yaml

from tests.conftest import Workspace
from tests.procutil import pipe_process, start_pipe

pytestmark = pytest.mark.reliability

TRIALS = int(os.environ.get("PIPE_TRIALS", "3"))
WRITERS = 6


@pytest.mark.parametrize("trial", range(TRIALS))
def test_remote_adds_started_together_all_survive(workspace: Workspace, trial: int) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    names = [f"r{trial}-{i}" for i in range(WRITERS)]
    # Some writers go to the local file, one also sets the default: both files see racing edits.
    local = {n for n in names if rng.random() < 0.3}
    default = rng.choice(names)
    commands = [
        ["remote", "add", *(["--local"] if n in local else []), *(["-d"] if n == default else []), n, f"/tmp/{n}"]
        for n in names
    ]
    rng.shuffle(commands)
    procs = [start_pipe(*c, cwd=workspace.root) for c in commands]
    results = [(c, p.communicate(timeout=120)) for c, p in zip(commands, procs, strict=True)]
    failed = [(c, err) for (c, (_, err)), p in zip(results, procs, strict=True) if p.returncode != 0]
    assert not failed, f"seed {seed}: {failed}"

    committed = yaml.safe_load((workspace.root / ".pipe" / "config.yaml").read_text())
    local_path = workspace.root / ".pipe" / "config.local.yaml"
    in_local = yaml.safe_load(local_path.read_text()) if local_path.exists() else {}
    found = {**(committed.get("remotes") or {}), **((in_local or {}).get("remotes") or {})}
    assert sorted(found) == sorted(names), f"seed {seed}: lost remotes, have {sorted(found)}"
    assert all(found[n] == {"url": f"/tmp/{n}"} for n in names), f"seed {seed}: {found}"
    where = in_local if default in local else committed
    assert where["core"]["remote"] == default, f"seed {seed}: default lost"
    listed = pipe_process("remote", "list", cwd=workspace.root, check=0).stdout
    assert all(n in listed for n in names), f"seed {seed}: {listed}"
