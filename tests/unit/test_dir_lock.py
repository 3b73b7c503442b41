"""Output directories are locked while written: a second writer is refused in one line naming
the holder's PID, and the lock dies with its holder (nothing to clean up after a kill)."""

import json
import subprocess
import sys

import pytest

from contracts.errors import InputError
from contracts.io import LOCK_FILE, check_unlocked, dir_lock, has_content

HOLD = ("import sys, time; from contracts.io import dir_lock\n"
        "with dir_lock(sys.argv[1]):\n"
        "    print('locked', flush=True); time.sleep(60)\n")


def _holder(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_the_lock_dies_with_it(tmp_path):
    out = tmp_path / "out"
    proc = _holder(out)
    try:
        with pytest.raises(InputError, match=rf"in use by another process \(PID {proc.pid}\)"):
            with dir_lock(out):
                pass
    finally:
        proc.kill()
        proc.wait()
    with dir_lock(out):  # the killed holder left its file, not its lock
        assert (out / LOCK_FILE).read_text() != str(proc.pid)
    assert not has_content(out)  # the lock file alone is not content


def test_a_held_directory_is_named_by_its_holder_before_its_content(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    check_unlocked(out)  # no lock file: nobody holds it, and none is made
    assert not (out / LOCK_FILE).exists()
    proc = _holder(out)
    try:
        with pytest.raises(InputError, match=rf"in use by another process \(PID {proc.pid}\)"):
            check_unlocked(out)
    finally:
        proc.kill()
        proc.wait()
    check_unlocked(out)  # the holder is gone: its file is left, its lock is not


def test_two_benches_on_one_out_the_second_is_refused_in_one_line(tmp_path):
    out = tmp_path / "bench"
    proc = _holder(out)
    try:
        run = subprocess.run([sys.executable, "-m", "app.cli", "bench", "--students",
                              "builtin:student-50x", "--backends", "ort-fp32", "--batch-sizes",
                              "1", "--quick", "--out", str(out)], capture_output=True, text=True,
                             timeout=300)
    finally:
        proc.kill()
        proc.wait()
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and f"PID {proc.pid}" in lines[0], lines
    assert not (out / "results.csv").exists()


def test_a_damaged_run_state_is_named_not_silently_redone(tmp_path):
    from app.run import STATE_FILE, read_state

    (tmp_path / STATE_FILE).write_text('{"steps": {"bench": {"finished"')
    with pytest.raises(InputError, match="is damaged"):
        read_state(tmp_path)
    (tmp_path / STATE_FILE).write_text(json.dumps({"steps": ["bench"]}))
    with pytest.raises(InputError, match="no steps mapping"):
        read_state(tmp_path)
    (tmp_path / STATE_FILE).write_text(json.dumps({"steps": {"bench": {"wall_s": 1}}}))
    assert read_state(tmp_path)["steps"] == {"bench": {"wall_s": 1}}
