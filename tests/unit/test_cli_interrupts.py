"""Ctrl-C at the moments the random-point interrupt harness found (issue 18,
tests/integration/test_interrupt_resume.py):

- in the last moment of a command: once its work is done and its output written, a SIGINT that
  lands while the interpreter shuts down (torch's atexit hooks take a while) must not kill the
  process by the signal with no line (exit -2) nor print a traceback under exit 0;
- while `roi run` starts (checking its config, opening its directory): the line names the
  command that resumes, not "rerun the command to start again".
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from app.cli import main

LATE_CTRL_C = """
import atexit, os, signal, sys, time
from app.cli import main

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


def _ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("target", ["app.run.check", "app.run.open_run"])
def test_ctrl_c_while_roi_run_starts_names_the_command_that_resumes(tmp_path, capsys,
                                                                     monkeypatch, target):
    monkeypatch.setattr(target, _ctrl_c)
    out = str(tmp_path / "run")
    assert main(["run", "--quick", "--out", out]) == 130
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == (f"interrupted: what was finished is kept; `roi run "
                                            f"--quick --out {out}` resumes where it stopped")


def test_ctrl_c_before_roi_run_chose_its_directory_says_to_rerun(capsys, monkeypatch):
    monkeypatch.setattr("app.run.check", _ctrl_c)
    assert main(["run", "--quick"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted: stopped before finishing; rerun the command to start again"
