"""GroupCommit: a slow commit takes everything handed over meanwhile in one call; a failure reaches
the producer and nothing handed over is lost track of (committed or dropped, never both)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from pipeline_engine.core.groupcommit import GroupCommit


class Log:
    def __init__(self, *, fail_at: int = -1, hold_first: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.dropped: list[int] = []
        self.fail_at = fail_at
        self.hold_first = hold_first
        self.started = threading.Event()  # the first commit has taken its items

    def commit(self, items: list[int]) -> None:
        self.started.set()
        if self.hold_first is not None and not self.batches:
            assert self.hold_first.wait(10)
        if len(self.batches) == self.fail_at:
            raise OSError("disk full")
        self.batches.append(items)

    def drop(self, items: Sequence[int]) -> None:
        self.dropped += items


def test_items_handed_over_while_a_commit_runs_share_the_next_commit() -> None:
    release = threading.Event()
    log = Log(hold_first=release)
    group = GroupCommit(log.commit, log.drop, limit=1000)
    for wave in range(10):
        group.put(list(range(wave * 5, wave * 5 + 5)))
        if wave == 0:
            assert log.started.wait(10)  # the first wave is being committed
    release.set()
    group.finish()
    assert sorted(i for b in log.batches for i in b) == list(range(50))
    assert len(log.batches) <= 3, "the nine waves handed over during the first commit go in one or two"
    assert log.dropped == []


def test_a_failed_commit_reaches_the_producer_and_drops_what_waits() -> None:
    log = Log(fail_at=0)
    group = GroupCommit(log.commit, log.drop, limit=1000)
    group.put([1, 2])
    with pytest.raises(OSError, match="disk full"):
        for i in range(3, 10_000):  # a put after the failure raises it and drops its own items
            group.put([i])
    group.finish(abort=True)
    committed = {i for b in log.batches for i in b}
    assert committed == set()
    assert 1 not in log.dropped and 2 not in log.dropped  # the failed batch is its commit's to clean up
    assert len(set(log.dropped)) == len(log.dropped)


def test_finish_raises_the_failure_and_abort_drops_what_waits() -> None:
    log = Log(fail_at=0)
    group = GroupCommit(log.commit, log.drop, limit=1000)
    group.put([1])
    with pytest.raises(OSError, match="disk full"):
        group.finish()

    release = threading.Event()
    log = Log(hold_first=release)
    group = GroupCommit(log.commit, log.drop, limit=1000)
    group.put([1])
    assert log.started.wait(10)  # taken by the held commit
    group.put([2, 3])
    finishing = threading.Thread(target=group.finish, kwargs={"abort": True})
    finishing.start()  # drops what waits at once, then waits for the held commit
    for _ in range(1000):
        if log.dropped:
            break
        finishing.join(0.01)
    release.set()
    finishing.join(10)
    assert log.batches == [[1]] and log.dropped == [2, 3]


def test_put_waits_while_the_limit_is_reached() -> None:
    release = threading.Event()
    log = Log(hold_first=release)
    group = GroupCommit(log.commit, log.drop, limit=2)
    group.put([1])
    assert log.started.wait(10)
    group.put([2, 3])  # two wait now: the next put blocks until the held commit ends
    blocked = threading.Thread(target=group.put, args=([4],))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()
    release.set()
    blocked.join(10)
    group.finish()
    assert sorted(i for b in log.batches for i in b) == [1, 2, 3, 4]
