"""Ctrl-C in the last moment of a command (issue 18, found by the random-point interrupt
harness, tests/integration/test_interrupt_resume.py): once the command's work is done and its
output written, a SIGINT that lands while the interpreter shuts down (torch's atexit hooks take
a while) must not kill the process by the signal with no line (exit -2) nor print a
traceback under exit 0."""

from __future__ import annotations

import signal
import subprocess
import sys

from roi.cli import main

LATE_CTRL_C = """
import atexit, os, signal, sys, time
from roi.cli import main

def ctrl_c_during_shutdown():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)  # the signal is delivered here, inside the atexit hook

atexit.register(ctrl_c_during_shutdown)
sys.argv = ["roi", "scenarios"]
sys.exit(main())
"""


def test_ctrl_c_during_interpreter_shutdown_is_no_traceback_and_no_signal_death():
    proc = subprocess.run([sys.executable, "-c", LATE_CTRL_C], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr, proc.stderr
    assert "real-time-api" in proc.stdout  # the command itself ran and printed


def test_in_process_calls_leave_the_callers_ctrl_c_alone(capsys):
    before = signal.getsignal(signal.SIGINT)
    assert main(["scenarios"]) == 0
    assert signal.getsignal(signal.SIGINT) is before
    assert "real-time-api" in capsys.readouterr().out
