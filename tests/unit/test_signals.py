"""Stop signals: SIGTERM/SIGHUP raise like Ctrl-C after install(); the scheduler holds them back while
its threads work, then stops every command and raises Interrupt with the signal's number."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_engine.core import signals
from pipeline_engine.runner.process import run_command, running_count, terminate_all
from pipeline_engine.runner.scheduler import schedule
from tests.procutil import wait_for_file, wait_gone


@pytest.fixture
def installed() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in signals.STOP_SIGNALS}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signals.install()
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_raise_like_ctrl_c(installed: None, sig: signal.Signals, code: int) -> None:
    with pytest.raises(KeyboardInterrupt) as info:
        os.kill(os.getpid(), sig)
        signal.sigtimedwait([], 0)  # give the handler a bytecode boundary to run at
    assert signals.exit_code(info.value) == code


def test_an_ignored_hangup_stays_ignored() -> None:
    saved = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        signals.install()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, saved)


def test_sigterm_during_schedule_stops_the_commands_and_raises_interrupt(installed: None, tmp_path: Path) -> None:
    script = 'sleep 30 &\necho $! > "$NODE.grandchild"\necho $$ > "$NODE.child"\nwait\ntouch "$NODE.ran"'

    def work(name: str) -> object:
        return run_command(script, cwd=tmp_path, env={**os.environ, "NODE": name})

    def send_sigterm() -> None:
        for name in "ab":
            wait_for_file(tmp_path / f"{name}.grandchild")
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send_sigterm)
    sender.start()
    with pytest.raises(signals.Interrupt) as info:
        schedule({"a": (), "b": ()}, work, jobs=2, on_stop=terminate_all)
    sender.join(timeout=10)

    assert info.value.signum == signal.SIGTERM
    pids = [int(wait_for_file(tmp_path / f"{n}.{kind}")) for n in "ab" for kind in ("child", "grandchild")]
    assert all(wait_gone(pid) for pid in pids)
    assert not list(tmp_path.glob("*.ran"))
    assert running_count() == 0
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "the handlers in force before come back"
