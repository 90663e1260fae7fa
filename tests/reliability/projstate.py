"""Project state for the kill and concurrency tests: seeded data, a small pipeline, digests, temp files."""

from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path

# Any temporary name pipe uses or used: `.pipetmp-<pid>-`, and the older `.tmp`/`.part`/`.pipe-link`/`.unprotect`.
TEMP = re.compile(r"^\.pipetmp-|\.tmp$|\.part$|\.pipe-link$|\.unprotect$")

PIPELINE = """\
stages:
  prep:
    cmd: mkdir -p prep && for i in $(seq 30); do echo "row $i" > prep/$i.txt; done && sleep 0.1
    outs: [prep]
  left:
    cmd: sleep 0.15 && cat prep/*.txt | sort > left.txt
    deps: [prep]
    outs: [left.txt]
  right:
    cmd: sleep 0.15 && ls prep | wc -l > right.txt
    deps: [prep]
    outs: [right.txt]
  final:
    cmd: cat left.txt right.txt > final.txt && sleep 0.1
    deps: [left.txt, right.txt]
    outs: [final.txt]
"""


def write_data(root: Path, count: int, *, seed: int, version: int = 0) -> None:
    """`count` small files of seeded random bytes under `root/data/dNN/`."""
    rng = random.Random(seed * 1000 + version)
    for i in range(count):
        path = root / "data" / f"d{i // 100:02}" / f"f{i:04}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(16, 400)))


def digest_tree(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """relpath -> sha256 of every file (a symlink: of its target's text) under `root`, not entering `skip`."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        dirnames[:] = [d for d in dirnames if f"{rel}/{d}".removeprefix("./") not in skip]
        for name in filenames:
            path = Path(dirpath) / name
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            if name == ".gitignore":  # stages running in parallel add their lines in either order
                data = b"".join(sorted(data.splitlines(keepends=True)))
            out[f"{rel}/{name}".removeprefix("./")] = hashlib.sha256(data).hexdigest()
    return out


def state(trial: Path) -> dict[str, str]:
    """What an uninterrupted run must equal: workspace, pointers, lock, cache objects and run cache, remote."""
    ws = digest_tree(trial / "ws", skip=(".git", ".pipe/tmp", ".pipe/cache/projects"))
    ws.pop(".pipe/config.yaml", None)  # names this trial's remote by its absolute path
    remote = {f"remote/{k}": v for k, v in digest_tree(trial / "remote").items()}
    return {**ws, **remote}


def temp_files(trial: Path) -> list[str]:
    """Temporary files anywhere in the project (not .git) and the cache."""
    found = []
    for dirpath, dirnames, filenames in os.walk(trial / "ws"):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        found += [os.path.join(dirpath, n) for n in filenames + dirnames if TEMP.search(n)]
    return sorted(os.path.relpath(p, trial) for p in found)


def set_remote(ws: Path, remote: Path) -> None:
    (ws / ".pipe" / "config.yaml").write_text(f"core:\n  remote: r\nremotes:\n  r:\n    url: {remote}\nschema: 1\n")
