"""Run an external program as a child that does not outlive its parent's SIGTERM.

A step that runs a long external program (SAMSEG: tens of minutes) inside a worker process
would leave that program running, orphaned, when the run is stopped: the worker ends on
SIGTERM (:func:`tspo_bidsapp.cli.run` stops the workers) but its child does not. Here the
waiting process forwards SIGTERM to the child, waits for it (then kills it after a grace
period) and only then ends as the signal asks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

GRACE_S = 10.0  #: seconds a child may take to end after SIGTERM before it is killed


def _reaped(pid: int, block: bool = False) -> bool:
    """Reap ``pid`` at the OS level (no lock of :class:`subprocess.Popen`, safe in a handler)."""
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:  # already reaped
        return True
    return done == pid


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the child, wait up to ``GRACE_S``, then SIGKILL it and reap it."""
    if proc.returncode is not None or _reaped(proc.pid):
        return
    proc.terminate()
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        if _reaped(proc.pid):
            return
        time.sleep(0.05)
    proc.kill()
    _reaped(proc.pid, block=True)


def run_child(argv: list[str], **popen_kwargs) -> int:
    """Run ``argv`` to completion and return its exit code; SIGTERM stops the child first.

    ``popen_kwargs`` go to :class:`subprocess.Popen` (``stdout``, ``env``...). Outside the main
    thread (where Python cannot install signal handlers) the child is only stopped when the
    wait is interrupted by an exception.
    """
    proc = subprocess.Popen(argv, **popen_kwargs)

    def on_sigterm(signum, frame):
        _stop(proc)
        signal.signal(signum, previous if callable(previous) else signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        else:
            os.kill(os.getpid(), signum)

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread
        previous = None
    try:
        return proc.wait()
    except BaseException:
        _stop(proc)
        raise
    finally:
        if previous is not None and signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)
