"""`roi plan` as a user runs it (a subprocess of the installed entry point's module) on a real
bench results table: tests/fixtures/bench_results.csv, produced by `roi bench` on the built-in
teacher and students (see tests/fixtures/README.md)."""

import json
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "bench_results.csv"


def roi(*args):
    return subprocess.run([sys.executable, "-m", "app.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_roi_plan_end_to_end(tmp_path):
    out = tmp_path / "plan"
    proc = roi("plan", "--results", FIXTURE, "--scenario", "real-time-api", "--scenario",
               "embedded-iot", "--out", out)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "plan.json").read_text())
    assert doc["recommended"]["model"].startswith("builtin:student-")
    assert (out / "plan.yaml").is_file() and "decision:" in proc.stdout


def test_roi_plan_bad_input_is_one_line_exit_2(tmp_path):
    proc = roi("plan", "--results", FIXTURE, "--scenario", "nowhere", "--out", tmp_path / "o")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: unknown scenario 'nowhere'")
    assert not (tmp_path / "o").exists()
