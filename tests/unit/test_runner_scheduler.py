"""The scheduler runs real commands in dependency order, in parallel up to -j, and stops cleanly."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from pipeline_engine.errors import StageFailedError
from pipeline_engine.runner.process import CommandResult, run_command, running_count, terminate_all
from pipeline_engine.runner.scheduler import OnError, ScheduleResult, schedule, topological_order
from tests.procutil import wait_for_file, wait_gone


def shell_work(root: Path, scripts: Mapping[str, str]) -> Callable[[str], CommandResult]:
    """Work that runs each node's script in `root`, failing the node on a non-zero exit."""

    def work(name: str) -> CommandResult:
        result = run_command(scripts[name], cwd=root, env={**os.environ, "NODE": name})
        if result.returncode != 0:
            raise StageFailedError(f"stage '{name}' failed", returncode=result.returncode)
        return result

    return work


def appending(names: str) -> dict[str, str]:
    """Scripts that append the node name to order.txt and mark `<name>.ran`."""
    return {name: 'echo "$NODE" >> order.txt\ntouch "$NODE.ran"' for name in names}


def ran(root: Path) -> set[str]:
    return {p.stem for p in root.glob("*.ran")}


def test_independent_commands_really_overlap(tmp_path: Path) -> None:
    # Each command records its start, waits (bounded) until all three started, then records its end.
    script = (
        'date +%s.%N > "$NODE.start"\n'
        "for i in $(seq 500); do [ $(ls *.start | wc -l) -ge 3 ] && break; sleep 0.01; done\n"
        'date +%s.%N > "$NODE.end"\n'
    )
    result = schedule({"a": (), "b": (), "c": ()}, shell_work(tmp_path, dict.fromkeys("abc", script)), jobs=3)

    assert sorted(result.done) == ["a", "b", "c"]
    starts = [float((tmp_path / f"{n}.start").read_text()) for n in "abc"]
    ends = [float((tmp_path / f"{n}.end").read_text()) for n in "abc"]
    assert max(starts) < min(ends), "the three intervals do not overlap"


def test_never_more_than_jobs_at_once(tmp_path: Path) -> None:
    lock = threading.Lock()
    active: list[int] = [0]
    peak: list[int] = [0]
    pair = threading.Barrier(2, timeout=10)

    def work(name: str) -> str:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        pair.wait()  # two nodes must be running together for this to return
        run_command("true", cwd=tmp_path, env=os.environ)
        with lock:
            active[0] -= 1
        return name

    result = schedule({n: () for n in "abcd"}, work, jobs=2)
    assert result.done == {n: n for n in "abcd"}
    assert peak[0] == 2


def test_jobs_1_runs_in_topological_order_with_ties_by_name(tmp_path: Path) -> None:
    upstream = {"z": {"a"}, "d": {"b", "c"}, "c": {"a"}, "b": {"a"}, "e": set(), "a": set()}
    result = schedule(upstream, shell_work(tmp_path, appending("abcdez")), jobs=1)

    assert (tmp_path / "order.txt").read_text().split() == ["a", "b", "c", "d", "e", "z"]
    assert list(result.done) == ["a", "b", "c", "d", "e", "z"]
    assert result.failed == {} and result.skipped == ()


def test_a_node_starts_only_after_all_its_upstream_nodes(tmp_path: Path) -> None:
    upstream = {"train": {"featurize", "prepare"}, "featurize": {"prepare"}, "prepare": set(), "other": set()}
    scripts = appending(["train", "featurize", "prepare", "other"])
    schedule(upstream, shell_work(tmp_path, scripts), jobs=4)

    order = (tmp_path / "order.txt").read_text().split()
    assert order.index("prepare") < order.index("featurize") < order.index("train")


def test_failure_skips_dependents_and_stops_new_starts(tmp_path: Path) -> None:
    scripts = {**appending("bcd"), "a": "touch a.ran\nexit 4\ntouch never.ran"}
    upstream = {"a": set(), "b": {"a"}, "c": set(), "d": {"b"}}
    result = schedule(upstream, shell_work(tmp_path, scripts), jobs=1, on_error=OnError.FAIL)

    assert list(result.failed) == ["a"]
    assert isinstance(result.failed["a"], StageFailedError) and result.failed["a"].returncode == 4
    assert result.done == {}
    assert result.skipped == ("b", "c", "d")
    assert ran(tmp_path) == {"a"}


def test_fail_lets_running_nodes_finish(tmp_path: Path) -> None:
    scripts = {
        "a": "for i in $(seq 500); do [ -e b.started ] && break; sleep 0.01; done\nexit 1",
        "b": "touch b.started\nfor i in $(seq 500); do [ -e a.failed ] && break; sleep 0.01; done\ntouch b.ran",
        "c": "touch c.ran",
    }

    def work(name: str) -> CommandResult:
        try:
            return shell_work(tmp_path, scripts)(name)
        except StageFailedError:
            (tmp_path / "a.failed").touch()
            raise

    result = schedule({"a": (), "b": (), "c": ()}, work, jobs=2)

    assert list(result.failed) == ["a"]
    assert list(result.done) == ["b"]
    assert result.skipped == ("c",)
    assert ran(tmp_path) == {"b"}


def test_keep_going_runs_independent_nodes_and_skips_only_dependents(tmp_path: Path) -> None:
    scripts = {**appending("bcde"), "a": "exit 1"}
    upstream = {"a": set(), "b": {"a"}, "c": set(), "d": {"b"}, "e": {"c"}}
    result = schedule(upstream, shell_work(tmp_path, scripts), jobs=2, on_error=OnError.KEEP_GOING)

    assert list(result.failed) == ["a"]
    assert sorted(result.done) == ["c", "e"]
    assert result.skipped == ("b", "d")
    assert ran(tmp_path) == {"c", "e"}


def test_empty_graph_does_nothing() -> None:
    assert schedule({}, lambda name: name, jobs=4) == ScheduleResult(done={}, failed={}, skipped=())


def test_unknown_upstream_node_is_a_caller_bug() -> None:
    calls: list[str] = []
    with pytest.raises(ValueError, match="'b' waits for 'x'"):
        schedule({"a": (), "b": ("x",)}, calls.append, jobs=1)
    assert calls == []


def test_cycle_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="cycle"):
        topological_order({"a": ("b",), "b": ("a",), "c": ()})


def test_ctrl_c_stops_running_commands_and_reraises(tmp_path: Path) -> None:
    script = 'sleep 30 &\necho $! > "$NODE.grandchild"\necho $$ > "$NODE.child"\nwait\ntouch "$NODE.ran"'
    scripts = {"a": script, "b": script, "c": "touch c.ran"}

    def press_ctrl_c() -> None:
        for name in "ab":
            wait_for_file(tmp_path / f"{name}.grandchild")
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    with pytest.raises(KeyboardInterrupt):
        schedule({"a": (), "b": (), "c": {"a"}}, shell_work(tmp_path, scripts), jobs=2, on_stop=terminate_all)
    presser.join(timeout=10)

    pids = [int(wait_for_file(tmp_path / f"{n}.{kind}")) for n in "ab" for kind in ("child", "grandchild")]
    assert all(wait_gone(pid) for pid in pids)
    assert ran(tmp_path) == set()
    assert running_count() == 0


def test_a_stop_signal_calls_on_stop_until_the_running_work_returns() -> None:
    # The scheduler knows no processes: the work below returns only once on_stop was called.
    stop = threading.Event()
    started = threading.Barrier(3, timeout=10)
    calls: list[int] = []

    def work(name: str) -> str:
        started.wait()
        assert stop.wait(timeout=10), "on_stop was never called"
        return name

    def on_stop() -> None:
        calls.append(1)
        stop.set()

    def press_ctrl_c() -> None:
        started.wait()
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    with pytest.raises(KeyboardInterrupt):
        schedule({"a": (), "b": (), "c": {"a"}}, work, jobs=2, on_stop=on_stop)
    presser.join(timeout=10)
    assert calls, "on_stop was not called"
    assert stop.is_set()
