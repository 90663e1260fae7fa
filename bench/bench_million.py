"""Issue 13's table: one pass of every data command at 100,000 or 1,000,000 files, time and peak RSS.

Run:  python bench/bench_million.py --files 1000000 --tools dvc [--source DIR] [--base DIR]
                                    [--timeout 1800] [--json out.json] [--refs find,cp,tar] [--keep]
      python bench/bench_million.py --merge pipe.json dvc.json     (print one table from saved runs)

The tree is generated once under --base (bench/datasets.py: 1-4 KiB files, 1,000 per directory),
or taken from --source (a directory holding the files); each tool's project gets it with `cp -al`
(hard links: a 1M tree costs no data copy). The commands never write into a workspace file in
place (the changed file is unlinked and written anew), so the source tree's contents are never
changed through the links; a tool may still chmod them (they share the inode). The source must not
be linked or unlinked by anyone else during the run: a new or removed link changes every shared
inode's ctime, and pipe's add then (rightly) refuses a file "changed while it was being cached".

For each tool, in a fresh git repository with `init` done, one run each, in this order:
  add data; status (first); status (no-op); status after one file was changed;
  push to an empty local remote; no-op push; git clone + pull (fetch + checkout);
  checkout after the workspace copy was moved out of the project (a rename: no mass deletion
  in the middle of a run); gc -w (nothing to collect but the walk of the cache).
Every command runs under `common.measure` (wall time, peak RSS from `os.wait4`'s ru_maxrss of the
process and the children it waited for), with --timeout per command (default 30 min): a timeout
is printed as "> 30 min" and is not an error; the commands that need its result are skipped.
References measured in the same run, before the tools: `find data -type f | wc -l`, `cp -r`
and `cp -al` of the tree, `tar cf` of it to a file (a no-op status should be within 5x of the
find; add and checkout are compared with cp -r; push with tar cf). The load average is printed
beside every row. Issue 13's targets: peak RSS under 1 GiB for every command; no-op status,
beyond start-up (`--version`), within 5x `find | wc -l`.

Disk: at 1,000,000 files every copy of the tree is ~4 GB (cache, remote, clone, the moved-away
workspace, references); everything lives under --base and is left there with --keep (delete it
with `ionice -c3 rm -rf` when nobody is measuring: a mass deletion slows file creation on this
machine for minutes). Without --keep, --base is deleted at the end. A tool's pass at 1M needs
~4M free inodes (cache, clone cache and workspace, checkout) and ~18-25 GB: check `df -i` too. Not for CI.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import Sample, dvc_bin, measure, pipe_bin, run
from datasets import commit_all, make_files, new_repo

STEPS = ("add", "status-first", "status-noop", "status-changed", "push", "push-noop", "pull",
         "checkout", "gc")
NEEDS = {"status-first": "add", "status-noop": "add", "status-changed": "add", "push": "add",
         "push-noop": "push", "pull": "push", "checkout": "add", "gc": "add"}
Record = dict[str, Any]  # one JSON result: {"s", "mib", "timeout", "load"} or {"skipped"}
REFS = ("find", "cp -r", "cp -al", "tar cf")
# the reference each command is compared with (issue 13: find for status, cp -r for add/checkout)
REF_OF = {"add": "cp -r", "status-first": "find", "status-noop": "find", "status-changed": "find",
          "push": "tar cf", "pull": "cp -r", "checkout": "cp -r", "gc": "find"}


def load() -> str:
    """The 1-minute load average (the machine is shared: every figure is read beside it)."""
    return Path("/proc/loadavg").read_text().split()[0]


def now() -> str:
    return f"{datetime.datetime.now(datetime.timezone.utc):%H:%M:%S}"


def result(sample: Sample | None) -> Record:
    if sample is None:
        return {"skipped": True}
    return {"s": round(sample.seconds, 3), "mib": round(sample.rss_mib, 1), "timeout": sample.timed_out,
            "load": load()}


class Run:
    """One tool's pass over the steps, printing each as it finishes and keeping the results."""

    def __init__(self, tool: str, exe: str, base: Path, tree: Path, timeout: float,
                 save: Callable[[], None] = lambda: None) -> None:
        self.tool, self.exe, self.base, self.tree, self.timeout = tool, exe, base, tree, timeout
        self.results: dict[str, Record] = {}
        self.save = save  # called after every step: a run stopped half-way keeps what it measured

    def measure(self, step: str, args: list[str], cwd: Path) -> Sample | None:
        missing = NEEDS.get(step)
        if missing and not self.ok(missing):
            print(f"[{now()}] {self.tool} {step}: skipped ({missing} did not finish)", flush=True)
            self.results[step] = result(None)
            return None
        print(f"[{now()}] {self.tool} {step}: {shlex.join(args)} ...", flush=True)
        sample = measure(args, cwd, timeout=self.timeout)
        self.results[step] = result(sample)
        self.save()
        shown = f"> {self.timeout / 60:.0f} min" if sample.timed_out else f"{sample.seconds:.1f} s"
        print(f"[{now()}] {self.tool} {step}: {shown}, {sample.rss_mib:.0f} MiB, load {load()}", flush=True)
        return sample

    def ok(self, step: str) -> bool:
        got = self.results.get(step, {})
        return bool(got) and not got.get("skipped") and not got.get("timeout")

    def cmd(self, step: str, *args: str, cwd: Path) -> Sample | None:
        return self.measure(step, [self.exe, *args], cwd)

    def check(self, path: Path, body: bytes, step: str) -> None:
        """A finished pull or checkout must have written the tree: one file is read back."""
        if self.ok(step) and (not path.exists() or path.read_bytes() != body):
            print(f"[{now()}] {self.tool} {step}: {path} is missing or wrong after it", flush=True)
            self.results[step]["wrong"] = True

    def all(self) -> dict[str, Record]:
        home = self.base / self.tool
        home.mkdir()
        proj = new_repo(home, self.tool, self.exe)
        data = proj / "data"
        run(["cp", "-al", str(self.tree), str(data)], home)
        self.cmd("add", "add", "data", cwd=proj)
        self.cmd("status-first", "status", cwd=proj)
        self.cmd("status-noop", "status", cwd=proj)
        changed = next(p for p in sorted((data / sorted(os.listdir(data))[0]).iterdir()))
        body = changed.read_bytes()
        changed.unlink()  # a new inode: the source tree, linked by cp -al, keeps its bytes
        changed.write_bytes(b"changed\n" + body)
        self.cmd("status-changed", "status", cwd=proj)
        changed.unlink()
        changed.write_bytes(body)
        remote = home / "remote"
        remote.mkdir()
        run([self.exe, "remote", "add", "-d", "bench", str(remote)], proj)
        self.cmd("push", "push", cwd=proj)
        self.cmd("push-noop", "push", cwd=proj)
        if self.ok("push"):
            commit_all(proj)
            clone = home / "clone"
            run(["git", "clone", "-q", str(proj), str(clone)], home)
            if self.tool == "dvc":
                run([self.exe, "config", "core.autostage", "false"], clone)
            self.cmd("pull", "pull", cwd=clone)
            self.check(clone / changed.relative_to(proj), body, "pull")
        else:
            self.measure("pull", [], proj)  # records the skip
        os.rename(data, home / "moved-away")
        self.cmd("checkout", "checkout", cwd=proj)
        self.check(changed, body, "checkout")
        self.cmd("gc", "gc", "-w", "-f", cwd=proj)
        return self.results


def references(base: Path, tree: Path, wanted: set[str], timeout: float) -> dict[str, Record]:
    """The shell commands each tool is compared with, on the same tree, printed as they finish."""
    out: dict[str, Record] = {}
    refs = base / "refs"
    refs.mkdir()
    cmds = {
        "find": ["sh", "-c", f"find {shlex.quote(str(tree))} -type f | wc -l"],
        "cp -r": ["cp", "-r", str(tree), str(refs / "cp-r")],
        "cp -al": ["cp", "-al", str(tree), str(refs / "cp-al")],
        "tar cf": ["tar", "cf", str(refs / "data.tar"), "-C", str(tree.parent), tree.name],
    }
    for name in REFS:
        if name.split()[0] in wanted or name in wanted:
            print(f"[{now()}] reference {name} ...", flush=True)
            sample = measure(cmds[name], base, timeout=timeout)
            out[name] = result(sample)
            print(f"[{now()}] reference {name}: {sample.seconds:.1f} s, {sample.rss_mib:.0f} MiB, "
                  f"load {load()}", flush=True)
            if name == "tar cf":
                (refs / "data.tar").unlink()  # one big file: free to delete, and 3-4 GB at 1M
    return out


def cell(got: Record | None, width: int = 17) -> str:
    if not got:
        return f"{'-':>{width}}"
    if got.get("skipped"):
        return f"{'skipped':>{width}}"
    seconds = float(got["s"])
    shown = f"> {seconds / 60:.0f} min" if got.get("timeout") else f"{seconds:.1f} s"
    return f"{shown + ' ' + format(float(got['mib']), '.0f') + ' MiB':>{width}}"


def print_table(runs: list[Record]) -> None:
    """One table: per tool run, time + peak RSS of each step; the step's reference in each run; load.

    `runs` is what --json saved, possibly several files: a references record (tool None) followed
    by the tool runs that came after it; each tool run is compared with the references before it.
    """
    columns: list[tuple[str, Record, dict[str, Record]]] = []
    refs: dict[str, Record] = {}
    for r in runs:
        print(f"# {r.get('tool') or 'references'}: {r.get('files')} files, {r.get('version', '')}, "
              f"{r.get('started')} -> {r.get('finished')} UTC, load {r.get('load_start')} -> "
              f"{r.get('load_end')}" + (f", start-up {r['startup']} s" if r.get("tool") else ""))
        if r.get("tool"):
            columns.append((f"{r['tool']} {str(r['started'])[:5]}", r, refs))
        else:
            refs = r.get("refs", {})
            for name, got in refs.items():
                print(f"#   {name}: {cell(got).strip()}, load {got.get('load')}")
    print(f"{'command':<15}" + "".join(f"{name:>18}" for name, _, _ in columns) + "  reference (s, per run)"
          + "".join(f"{'load':>6}" for _ in columns))
    for step in STEPS:
        ref = REF_OF.get(step, "")
        sets = list({id(refs_of): refs_of for _, _, refs_of in columns}.values())  # one per run
        seen = [f"{float(refs_of[ref]['s']):.1f}" if ref in refs_of else "-" for refs_of in sets]
        refcell = f"{ref} {' / '.join(seen)}" if ref else "-"
        row = f"{step:<15}" + "".join(f" {cell(r['steps'].get(step))}" for _, r, _ in columns)
        row += f"  {refcell:<25}" + "".join(f"{str(r['steps'].get(step, {}).get('load', '-')):>6}"
                                            for _, r, _ in columns)
        print(row)
    for name, r, refs_of in columns:
        noop, find = r["steps"].get("status-noop", {}), refs_of.get("find")
        if noop and not noop.get("skipped") and not noop.get("timeout") and find:
            beyond = max(float(noop["s"]) - float(r.get("startup") or 0), 0.0)
            print(f"{name}: no-op status beyond start-up / find|wc -l = {beyond / float(find['s']):.1f}x "
                  "(target <= 5x)")
        over = [s for s, got in r["steps"].items() if float(got.get("mib", 0)) >= 1024]
        print(f"{name}: peak RSS >= 1 GiB in: {', '.join(over) or 'none'} (target: none)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000, help="files to generate (ignored with --source)")
    parser.add_argument("--tools", default="pipe,dvc", help="comma-separated subset of pipe,dvc")
    parser.add_argument("--source", type=Path, help="an existing tree to link in instead of generating one")
    parser.add_argument("--base", type=Path, help="directory for all data (default: a new temp dir)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per command (default 30 min)")
    parser.add_argument("--refs", default="find,cp,tar", help="references to measure: find, cp, tar ('' none)")
    parser.add_argument("--json", type=Path, help="also write the results here (for --merge)")
    parser.add_argument("--keep", action="store_true", help="keep --base at the end")
    parser.add_argument("--merge", nargs="+", type=Path, help="print one table from saved --json files")
    args = parser.parse_args(argv)
    if args.merge:
        print_table([r for path in args.merge for r in json.loads(path.read_text())])
        return
    base = args.base or Path(tempfile.mkdtemp(prefix="pipe-bench-million-"))
    base.mkdir(parents=True, exist_ok=True)
    if args.source:
        tree = args.source.resolve()
        files = None
    else:
        tree, files = base / "src" / "data", args.files
        if not tree.exists():
            print(f"[{now()}] generating {files} files in {tree} ...", flush=True)
            make_files(tree, files)
    exes: dict[str, Callable[[], str | None]] = {"pipe": pipe_bin, "dvc": dvc_bin}
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    wanted = {r.strip() for r in args.refs.split(",") if r.strip()}
    runs: list[Record] = []

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1))

    try:
        started, load_start = now(), load()
        refs = references(base, tree, wanted, args.timeout) if wanted else {}
        runs.append({"tool": None, "files": files or f"source {tree}", "refs": refs, "started": started, "finished": now(),
                     "load_start": load_start, "load_end": load()})
        save()
        for tool in tools:
            exe = exes[tool]()
            if exe is None:
                print(f"bench: {tool} not found; skipped", file=sys.stderr)
                continue
            version = run([exe, "--version"], base).stdout.strip()
            startup = sorted(measure([exe, "--version"], base).seconds for _ in range(3))[1]
            record: Record = {"tool": tool, "files": files or "source", "version": version,
                              "startup": round(startup, 3), "steps": {}, "started": now(), "load_start": load()}
            runs.append(record)
            runner = Run(tool, exe, base, tree, args.timeout, save)
            record["steps"] = runner.results  # the same dict: saved as it fills
            runner.all()
            record.update(finished=now(), load_end=load())
            save()
        print()
        print_table(runs)
    finally:
        if not args.keep:
            print(f"deleting {base} (the disk may be slow for a few minutes after this)")
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
