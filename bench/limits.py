"""Physical limits and disk health: the shell commands a tool's time is compared with.

The issue names one limit per workload: `cp -r` of the tree (add, checkout), `tar cf` of it
(push to a local directory), `cat` of the file (adding one big file), `find DIR -type f | wc -l`
(a no-op status). Each is measured in the same rounds as the tools (bench/workloads.py).

Disk health: after a mass deletion this machine's disk creates files 5-30x slower for minutes,
which would make every ratio meaningless. `Disk.check` copies a small probe tree (`cp -r` into a
new directory, never deleting anything) and compares its rate with a healthy one; when it is slow
it waits and probes again, says so, and reports the round untrusted if the disk never recovers
(later rounds then probe without waiting until the disk is healthy again).
"""

from __future__ import annotations

import itertools
import shlex
import time
from pathlib import Path

from common import Sample, measure
from datasets import make_files

__all__ = ["Disk", "cat_file", "copy_tree", "count_files", "tar_tree", "untar"]

PROBE_FILES = 2_000


def copy_tree(src: Path, dst: Path) -> Sample:
    """`cp -r src dst` (dst must not exist)."""
    return measure(["cp", "-r", str(src), str(dst)], src.parent)


def tar_tree(src: Path, archive: Path) -> Sample:
    """`tar cf archive` of the directory `src`."""
    return measure(["tar", "cf", str(archive), "-C", str(src.parent), src.name], src.parent)


def untar(archive: Path, dst: Path) -> Sample:
    """`tar xf archive` into the new directory `dst`."""
    dst.mkdir(parents=True)
    return measure(["tar", "xf", str(archive), "-C", str(dst)], dst)


def count_files(root: Path) -> Sample:
    """`find root -type f | wc -l`: the walk every status must at least do."""
    return measure(["sh", "-c", f"find {shlex.quote(str(root))} -type f | wc -l"], root)


def cat_file(path: Path) -> Sample:
    """`cat path > /dev/null`: reading the file once."""
    return measure(["sh", "-c", f"cat {shlex.quote(str(path))} > /dev/null"], path.parent)


class Disk:
    """The health of the disk, probed with `cp -r` of a small tree before every round.

    `healthy_us` is the slowest copy rate (microseconds per file) still called healthy; this
    machine copies 10,000 files of 1-4 KiB in ~0.25 s (25 us/file) when healthy and 5-30x slower
    after a mass deletion. Probes go to new directories under `base` and are never deleted here.
    """

    def __init__(self, base: Path, *, healthy_us: float = 75.0, wait: float = 30.0, tries: int = 4) -> None:
        self.base, self.healthy_us, self.wait, self.tries = base, healthy_us, wait, tries
        self.probe = base / "probe-src"
        make_files(self.probe, PROBE_FILES, seed=11)
        self._n = itertools.count()
        self.unhealthy_rounds = 0
        self._gave_up = False
        self.scratch: list[Path] = []  # the probes' copies, for whoever deletes leftovers

    def rate_us(self) -> float:
        """One probe: microseconds per file of `cp -r` of the probe tree."""
        copy = self.base / f"probe-{next(self._n)}"
        self.scratch.append(copy)
        return copy_tree(self.probe, copy).seconds / PROBE_FILES * 1e6

    def is_healthy_copy(self, sample: Sample, files: int) -> bool:
        """Whether a measured `cp -r` of `files` files ran at a healthy rate (printed when not)."""
        rate = sample.seconds / max(files, 1) * 1e6
        if rate > self.healthy_us:
            print(f"disk: the reference cp -r ran at {rate:.0f} us/file (healthy <= {self.healthy_us:.0f}); "
                  "this round is not trusted")
            self.unhealthy_rounds += 1
            return False
        return True

    def check(self) -> bool:
        """Probe until healthy (waiting between tries); False if it never became healthy.

        After a check that never became healthy, the next ones probe once without waiting until a
        probe is healthy again: on a machine kept busy by others, waiting would only add hours.
        """
        tries = 1 if self._gave_up else self.tries
        for attempt in range(tries):
            rate = self.rate_us()
            if rate <= self.healthy_us:
                if attempt or self._gave_up:
                    print(f"disk: healthy again ({rate:.0f} us/file)")
                self._gave_up = False
                return True
            print(f"disk: cp -r at {rate:.0f} us/file (healthy <= {self.healthy_us:.0f})"
                  + (f"; waiting {self.wait:.0f} s before probing again" if attempt + 1 < tries else ""))
            if attempt + 1 < tries:
                time.sleep(self.wait)  # the slow-creation effect fades over minutes; nothing to poll
        self._gave_up = True
        self.unhealthy_rounds += 1
        print("disk: unhealthy; this round's ratios are marked '?' (not trusted)")
        return False
