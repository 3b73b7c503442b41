"""Child processes that die with their parent (issue 18).

A worker started by `roi bench` must not outlive it: Ctrl-C, SIGTERM or SIGKILL to the main
process takes the worker with it. Two halves:

- the parent names itself in the child's environment (`child_env`) and kills the child when
  it is interrupted (`kill_on_interrupt`);
- the child, first thing, asks the kernel for SIGKILL when its parent goes (Linux
  PR_SET_DEATHSIG through ctypes; `die_with_parent`), then checks that the parent it was
  started by is still its parent, since the parent may have died before the request.

No preexec_fn: it is unsafe while other threads run (the progress bar's), and the check above
closes the window it would close.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import Iterator

PARENT_ENV = "ROI_PARENT_PID"  # the PID of the process whose death the child follows
PR_SET_DEATHSIG = 1  # <sys/prctl.h>


def child_env(env: dict | None = None) -> dict:
    """`env` (default: this process's) plus this process's PID for `die_with_parent`."""
    return {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}


def die_with_parent() -> bool:
    """In a child: SIGKILL when the parent named in PARENT_ENV exits; exit at once if it has
    exited already. True when the kernel took the request (Linux); a no-op elsewhere."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(PR_SET_DEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        ok = False
    if str(os.getppid()) != parent:  # the parent died before the request: follow it now
        os._exit(1)
    return ok


@contextlib.contextmanager
def kill_on_interrupt(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Kill and reap `proc` if the block is left by an exception (Ctrl-C included)."""
    try:
        yield proc
    except BaseException:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(timeout=10)
        raise
