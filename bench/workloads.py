"""The data workloads of issue 13, measured in interleaved rounds against their physical limit.

A round is: probe the disk (limits.Disk), time the limit command, then time each tool, all on the
same tree. `repeat` rounds give medians. Nothing is deleted while measuring (deletions make this
machine's disk slow for minutes): every add gets a new repository, checkout moves the data away
(a rename), every push gets a new remote, every pull a new clone. The caller deletes `base` at the end.

Per tool, the workloads run in this order on one repository (the last `add` round's):
add -> status -> status after one change -> checkout -> gc -> push -> no-op push -> pull (clones)
-> checkout with cache.type hardlink (last: it links the workspace to the cache).
A tool that passes `timeout` is dropped from every later workload (its repository is incomplete).
With `tidy`, each workload's leftovers (references, moved trees, clones, probes) are deleted after
its rows: needed at 1,000,000 files, where keeping them would fill the disk; the next round's
probe then waits for the disk to recover.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from common import Row, Sample, measure, run, startup, summarize
from datasets import commit_all, first_file, make_big, make_files, new_repo
from limits import Disk, cat_file, copy_tree, count_files, tar_tree, untar
from remotes import RemoteTarget

__all__ = ["Bench"]

Action = Callable[[int], Sample]
CACHE = {"pipe": ".pipe/cache", "dvc": ".dvc/cache"}


class Bench:
    """One benchmark run over a tree of `files` small files; `rows` collects the results."""

    def __init__(self, base: Path, tools: Mapping[str, str], files: int, *, repeat: int = 3,
                 timeout: float | None = None, disk: Disk | None = None, tidy: bool = False) -> None:
        self.base, self.tools, self.files, self.repeat, self.timeout = base, dict(tools), files, repeat, timeout
        self.disk = disk or Disk(base)
        self.template = base / "template" / "data"
        make_files(self.template, files)
        self.startup = {tool: startup(exe) for tool, exe in self.tools.items()}
        print("start-up (--version, median s): " + ", ".join(f"{t} {s:.3f}" for t, s in self.startup.items()))
        self.repos: dict[str, Path] = {}
        self.remote_urls: dict[tuple[str, str], str] = {}
        self.dropped: set[str] = set()
        self.rows: list[Row] = []
        self._n = itertools.count()
        self.tidy = tidy
        self.scratch: list[Path] = []

    def _new(self, prefix: str) -> Path:
        """A path under `base` that does not exist yet, deleted after the workload when tidying."""
        path = self.base / f"{prefix}-{next(self._n)}"
        self.scratch.append(path)
        return path

    def _tidy(self) -> None:
        if not self.tidy:
            return
        gone = [*self.scratch, *self.disk.scratch]
        self.scratch.clear()
        self.disk.scratch.clear()
        for path in gone:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        print(f"tidy: deleted {len(gone)} leftover trees and files", flush=True)

    def _run(self, tool: str, args: list[str], cwd: Path) -> Sample:
        # The preparation's writes (a fresh copy of the tree, the previous tool's) are flushed first,
        # untimed: a tool that makes its own writes durable (pipe's cache: one syncfs per batch)
        # would otherwise also pay for flushing the data the benchmark just wrote for it.
        os.sync()
        return measure([self.tools[tool], *args], cwd, timeout=self.timeout)

    def rounds(self, workload: str, actions: Mapping[str, Action], limit_name: str = "",
               limit: Action | None = None) -> Row:
        """`repeat` rounds of (disk probe, limit, each tool); the summary row, also kept in `rows`.

        With a limit, each round also times every tool's `--version`: the start-up subtracted
        before dividing by the limit is the median under the same load as the row's samples.
        """
        samples: dict[str, list[Sample]] = {tool: [] for tool in actions if tool not in self.dropped}
        limits: list[float] = []
        starts: dict[str, list[float]] = {tool: [] for tool in samples}
        trusted = True
        for k in range(self.repeat):
            trusted = self.disk.check() and trusted
            if limit is not None:
                os.sync()  # as before each tool's command (see `_run`)
                reference = limit(k)
                limits.append(reference.seconds)
                if limit_name == "cp -r":  # the reference is itself a health measurement
                    trusted = self.disk.is_healthy_copy(reference, self.files) and trusted
                for tool, got_start in starts.items():  # start-up under this round's load
                    got_start.append(measure([self.tools[tool], "--version"], self.base).seconds)
            for tool, got in samples.items():
                if tool in self.dropped:
                    continue
                sample = actions[tool](k)
                got.append(sample)
                if sample.timed_out:
                    print(f"{tool}: {workload} passed the {self.timeout:.0f} s timeout; dropped from later workloads")
                    self.dropped.add(tool)
        startup = {t: statistics.median(v) if v else self.startup[t] for t, v in starts.items()}
        row = Row(workload, {t: summarize(s) for t, s in samples.items() if s}, limit_name,
                  statistics.median(limits) if limits else None, trusted, startup)
        cells = ", ".join(f"{t} {s.seconds:.3f} s {s.rss_mib:.0f} MiB" + (f" {s.requests:.0f} req" if s.requests
                          is not None else "") for t, s in row.tools.items())
        if row.limit is not None:
            cells += f"; {limit_name} {row.limit:.3f} s; start-up " + ", ".join(
                f"{t} {v:.3f} s" for t, v in startup.items())
        print(f"{workload}: {cells}", flush=True)
        self.rows.append(row)
        self._tidy()
        return row

    def active(self) -> list[str]:
        """The tools still measured (none of their commands passed the timeout)."""
        return [t for t in self.tools if t not in self.dropped]

    # -- workloads on the small-files tree ------------------------------------------------------

    def add(self) -> Row:
        """`add data` of the whole tree into an empty cache (a new repository each round)."""
        def action(tool: str) -> Action:
            def act(k: int) -> Sample:
                root = new_repo(self.base, tool, self.tools[tool])
                copy_tree(self.template, root / "data")
                if tool in self.repos:  # only the last round's repository is used later
                    self.scratch.append(self.repos[tool])
                self.repos[tool] = root
                return self._run(tool, ["add", "data"], root)
            return act
        return self.rounds(f"add, {self.files} files", {t: action(t) for t in self.active()}, "cp -r",
                           lambda k: copy_tree(self.template, self._new("ref-cp")))

    def prepare(self) -> None:
        """Make the per-tool repositories with the tree added, untimed (when `add` was not measured)."""
        for tool in self.active():
            if tool not in self.repos:
                root = new_repo(self.base, tool, self.tools[tool])
                copy_tree(self.template, root / "data")
                run([self.tools[tool], "add", "data"], root)
                self.repos[tool] = root

    def _find(self, k: int) -> Sample:
        return count_files(self.repos[self.active()[0]] / "data")

    def status(self) -> Row:
        """`status` with nothing changed (after one untimed status that settles the memo)."""
        for tool in self.active():
            run([self.tools[tool], "status"], self.repos[tool])
        return self.rounds("status, nothing changed", {t: self._status(t) for t in self.active()},
                           "find|wc", self._find)

    def _status(self, tool: str, change: bool = False) -> Action:
        def act(k: int) -> Sample:
            if change:
                self._edit_one(tool, k)
            return self._run(tool, ["status"], self.repos[tool])
        return act

    def _edit_one(self, tool: str, k: int) -> None:
        """Replace file 0 of the tree with new content (a new file renamed over it, as editors do)."""
        victim = first_file(self.repos[tool] / "data", self.files)
        new = victim.with_name(f".edit-{k}")
        new.write_bytes(b"edited %d by the benchmark\n" % k * 100)
        os.replace(new, victim)

    def status_changed(self) -> Row:
        """`status` after one file was edited; then that change is added (untimed)."""
        row = self.rounds("status, one file changed", {t: self._status(t, change=True) for t in self.active()},
                          "find|wc", self._find)
        for tool in self.active():
            run([self.tools[tool], "add", "data"], self.repos[tool])
        return row

    def checkout(self, cache_type: str = "") -> Row:
        """`checkout` of the tree after it was moved out of the workspace; optionally set cache.type first."""
        if cache_type:
            for tool in self.active():
                run([self.tools[tool], "config", "cache.type", cache_type], self.repos[tool])

        def action(tool: str) -> Action:
            def act(k: int) -> Sample:
                os.rename(self.repos[tool] / "data", self._new(f"moved-{tool}"))
                return self._run(tool, ["checkout"], self.repos[tool])
            return act
        name = f"checkout, {self.files} files" + (f", {cache_type}" if cache_type else "")
        return self.rounds(name, {t: action(t) for t in self.active()}, "cp -r",
                           lambda k: copy_tree(self.template, self._new("ref-cp")))

    def gc(self) -> Row:
        """`gc -w -f` after one file was edited and added (one object and a manifest to collect)."""
        def action(tool: str) -> Action:
            def act(k: int) -> Sample:
                self._edit_one(tool, 100 + k)
                run([self.tools[tool], "add", "data"], self.repos[tool])
                return self._run(tool, ["gc", "-w", "-f"], self.repos[tool])
            return act
        first = self.active()[0]
        return self.rounds("gc -w, one object garbage", {t: action(t) for t in self.active()}, "find cache",
                           lambda k: count_files(self.repos[first] / CACHE[first]))

    # -- remote workloads ----------------------------------------------------------------------

    def push(self, target: RemoteTarget) -> list[Row]:
        """push to a new empty remote each round, then a no-op push."""
        for tool in self.active():
            commit_all(self.repos[tool])

        def action(tool: str) -> Action:
            def act(k: int) -> Sample:
                url = target.fresh_url()
                target.configure(tool, self.tools[tool], self.repos[tool], url)
                self.remote_urls[(tool, target.kind)] = url
                return target.measure(lambda: self._run(tool, ["push"], self.repos[tool]))
            return act

        def noop(tool: str) -> Action:
            return lambda k: target.measure(lambda: self._run(tool, ["push"], self.repos[tool]))

        limit = (lambda k: tar_tree(self.template, self._new("ref-tar"))) if target.kind == "local" else None
        where = target.label
        return [
            self.rounds(f"push, {where}", {t: action(t) for t in self.active()}, "tar cf" if limit else "", limit),
            self.rounds(f"no-op push, {where}", {t: noop(t) for t in self.active()}),
        ]

    def pull(self, target: RemoteTarget) -> Row:
        """pull into a new git clone (no cache, no data) from the remote the last push filled."""
        for tool in self.active():
            if (tool, target.kind) not in self.remote_urls:  # pull measured without push: fill a remote
                url = target.fresh_url()
                commit_all(self.repos[tool])
                target.configure(tool, self.tools[tool], self.repos[tool], url)
                run([self.tools[tool], "push"], self.repos[tool])
                self.remote_urls[(tool, target.kind)] = url
        archive = self._new("ref-pull.tar")
        if target.kind == "local":
            tar_tree(self.template, archive)

        def action(tool: str) -> Action:
            def act(k: int) -> Sample:
                clone = self._new(f"clone-{tool}")
                subprocess.run(["git", "clone", "-q", str(self.repos[tool]), str(clone)], check=True)
                target.configure(tool, self.tools[tool], clone, self.remote_urls[(tool, target.kind)])
                sample = target.measure(lambda: self._run(tool, ["pull"], clone))
                got = sum(len(files) for _, _, files in os.walk(clone / "data"))
                if not sample.timed_out and got != self.files:
                    raise SystemExit(f"bench: {tool} pull restored {got} of {self.files} files in {clone}")
                return sample
            return act
        limit = (lambda k: untar(archive, self._new("ref-untar"))) if target.kind == "local" else None
        return self.rounds(f"pull into a clone, {target.label}", {t: action(t) for t in self.active()},
                           "tar xf" if limit else "", limit)

    # -- one big file --------------------------------------------------------------------------

    def big(self, mib: int) -> Row:
        """`add` of one `mib` MiB file into an empty cache (new repository and file each round)."""
        def action(tool: str) -> Action:
            def act(k: int) -> Sample:
                root = new_repo(self.base, tool, self.tools[tool])
                self.scratch.append(root)
                make_big(root / "big.bin", mib)
                subprocess.run(["sync"], check=False)  # no dirty pages left to write back while timed
                return self._run(tool, ["add", "big.bin"], root)
            return act

        def limit(k: int) -> Sample:
            path = self._new("ref-big")
            make_big(path, mib)
            subprocess.run(["sync"], check=False)
            return cat_file(path)
        return self.rounds(f"add one {mib} MiB file", {t: action(t) for t in self.active()}, "cat", limit)
