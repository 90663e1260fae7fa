"""Run shares of per-file work in forked processes, one per core, when threads cannot help.

Copying, linking or packing thousands of small files from Python is bound by the interpreter:
each file costs a few syscalls of ~10-30 us and as much Python around them. Threads cannot run
that Python on two cores at once, and on a fast disk they make it slower (each syscall hands the
GIL back and forth: a 10,000-file `pipe add` in 8 threads made 450,000 futex calls). A forked
process has its own interpreter and starts in a few milliseconds with the parent's memory, so
closures and open objects need no pickling; only results travel back, pickled through a pipe.

Forking is only safe from a process with no other threads: a child inherits their locks in
whatever state they are, and could hang on one. `map_forked` runs everything in the caller when
other threads exist, when there is one core, or when the platform cannot fork. A child that
fails in any way (an exception, a signal, a result it could not send) has its share done again
in the caller, so its errors are raised here with their own types and messages, and a child
never prints a traceback. Work handed to it must therefore be safe to do twice.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["fork_jobs", "free_cores", "map_forked"]

R = TypeVar("R")

#: At most this many processes (the parent included): beyond it the disk, not Python, bounds the work.
MAX_FORKS = 4
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def fork_jobs(items: int, *, min_per_process: int) -> int:
    """How many processes to share `items` between: one per usable CPU (at most `MAX_FORKS`), none
    extra for fewer than `min_per_process` items each (a fork costs a few milliseconds), and 1
    whenever forking is unsafe or impossible here (other threads running, no `fork`)."""
    if not hasattr(os, "fork") or sys.platform == "darwin" or threading.active_count() > 1:
        return 1
    return max(1, min(MAX_FORKS, _cpus(), items // max(1, min_per_process)))


def free_cores() -> int:
    """Cores no other process is running on right now, this one's included (at least 1).

    A forked share pays only on a core of its own. Measured on 2 cores, a 10k push: 0.34 s in
    one process, 0.30 s in two while the other core is idle; beside a running test suite the
    forked push lost ~30 ms instead. Linux says how many tasks are runnable at this instant
    (`/proc/loadavg`, 4th field, this one included); elsewhere the last minute's load average
    stands in.
    """
    try:
        with open("/proc/loadavg", "rb") as f:
            others = float(f.read().split()[3].split(b"/")[0]) - 1
    except (OSError, IndexError, ValueError):
        try:
            others = os.getloadavg()[0] - 1
        except OSError:  # no load figure at all: as many as there are
            return MAX_FORKS
    return max(1, round(_cpus() - max(0.0, others)))


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_forked(fn: Callable[[int], R], n: int, *, sweep: Callable[[int], object] | None = None) -> list[R]:
    """`[fn(k) for k in range(n)]`, with `fn(1)`..`fn(n-1)` run in forked children while the caller
    runs `fn(0)`. Results come back pickled, so they must pickle. A child that fails or dies has
    its share run again here (so `fn(k)` must be safe to repeat, and its exceptions reach the
    caller as raised here). `sweep(pid)` removes what a child that gave no result may have left
    (its temporary files, named by its pid: a SIGKILLed child cleans nothing up); it runs once that
    child is reaped, before its share is redone, and on the way out of a failure.

    When the caller's own share fails, the children are waited for (a child whose share failed
    too is cleaning up: it is not cut short); on an interrupt they are stopped (SIGTERM, which a
    child handles like Ctrl-C) and reaped before it propagates.
    """
    if n < 2 or threading.active_count() > 1:
        return [fn(k) for k in range(n)]
    import multiprocessing

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        return [fn(k) for k in range(n)]
    pipes: list[Any] = []  # the receiving end from each child, None where none was started
    children: list[Any] = []
    settled: set[int] = set()  # the pids of the children that sent their result or were swept
    collecting = gc.isenabled()
    # No garbage collection while shares run and their results come back: a collection writes
    # to every object's header, and after a fork each page written is a page copied (measured by
    # the push: 4,500 more page faults and ~35 ms in each process of a 10k push; one collection
    # while the parent unpickled 5,000 rows took ~15 ms). Per-file work makes no cycles.
    gc.disable()
    try:
        for k in range(1, n):
            pipes.append(None)
            children.append(None)
            # Each pipe is made just before its child, so no child holds another's sending end
            # (the parent would then wait for that child too before it saw a death as end of file).
            try:
                receive, send = context.Pipe(duplex=False)
            except OSError:  # out of file descriptors: the share is done here
                continue
            pipes[-1] = receive
            # A stop signal landing in Python's fork hooks would be printed and lost ("Exception
            # ignored"): held back while forking, it is raised here right after.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                child = context.Process(target=_child, args=(fn, k, send, receive, os.getpid()), daemon=True)
                child.start()
                children[-1] = child
            except OSError:  # no more processes (ulimit): the share is done here
                pass
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                send.close()
        results: list[Any] = [fn(0)]
        for receive, child in zip(pipes, children, strict=True):
            result = _result(receive, child) if child is not None else _Redo
            if result is _Redo:
                _swept(child, sweep)  # before the share is redone: its temporary files are gone
            if child is not None:
                settled.add(child.pid)
            results.append(result)
        return [fn(k) if r is _Redo else r for k, r in enumerate(results)]
    except KeyboardInterrupt:
        for child in children:
            if child is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)
        raise
    finally:
        # Closed first: a child still sending a result no one will read (the caller failed) then
        # fails to send it and exits, instead of waiting on a full pipe for a join that waits on it.
        for receive in pipes:
            if receive is not None:
                receive.close()
        for child in children:
            if child is not None:
                child.join()
                if child.pid not in settled:
                    _swept(child, sweep)
        if collecting:
            gc.enable()


def _swept(child: Any, sweep: Callable[[int], object] | None) -> None:
    """Once `child` (a Process, or None when none started) has exited, remove what it left."""
    if child is None or sweep is None:
        return
    child.join()
    with contextlib.suppress(OSError):  # best effort: the next sweep of the project finds the rest
        sweep(child.pid)


class _Redo:
    """Marks a share whose child gave no result."""


def _result(receive: Any, child: Any) -> Any:
    try:
        return receive.recv()
    except Exception:  # noqa: BLE001 - the child failed or died before sending all of it
        child.join()
        return _Redo


def _child(fn: Callable[[int], Any], k: int, send: Any, receive: Any, parent: int) -> None:
    """A child's whole life: its share, the result sent, its threads ended, and `os._exit` (no
    parent's `finally` blocks, no traceback printed: a failed share is done again by the parent)."""
    code = 1
    try:
        # Its copy of the reading end closed: once the parent closes its own, a send fails at once.
        receive.close()
        _die_with(parent)
        send.send(fn(k))
        code = 0
    except BaseException:  # noqa: BLE001, S110 - the parent redoes the share and reports what fails
        pass
    finally:
        # As the interpreter would at exit, let non-daemon threads end: an interrupt landing in a
        # pool's `Thread.start` leaves a worker its pool does not know of, still copying a file.
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
        os._exit(code)


def _die_with(parent: int) -> None:
    """Silence this child's stderr; have a stop signal (SIGINT, SIGTERM, SIGHUP) interrupt it like
    Ctrl-C (its share's clean-up runs: no temporary file is left), and have the kernel send SIGTERM
    when the parent dies, so a `kill -9` of pipe leaves no child writing on (Linux; elsewhere an
    orphan finishes its share)."""
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _interrupt)
    # Nothing a child could print is the user's business: the parent reports what failed. (Python
    # prints an interrupt that lands in a finaliser as "Exception ignored in ...".)
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the child's whole (short) life
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        raise SystemExit(1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by the parent while it forked


def _interrupt(signum: int, frame: object) -> None:
    """The first stop signal interrupts the child; later ones (Ctrl-C reaches it, then the
    parent's SIGTERM) are ignored, so they cannot cut its clean-up short."""
    for other in _STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)
