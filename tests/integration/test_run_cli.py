"""`roi run --quick` end to end on the built-in default (the whole pipeline, ≤ 3 minutes on 2
cores; the session's one run, `quick_run` in tests/integration/conftest.py), then `roi report
DIR` on the finished run and a resume that redoes only what is missing."""

import json
import re
import subprocess
import sys

import pytest

from app.cli import main

pytestmark = pytest.mark.slow  # end to end: benches, distills, benches again; still run in CI

STEPS = ["bench", "pilot", "plan", "report", "distill", "bench-student", "replan",
         "final-report"]


def roi(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_quick_run_answers_the_question(quick_run):
    out, _, proc = quick_run
    line = proc.stdout.strip().splitlines()[-1]
    assert re.match(r"^(GO|NO-GO \(distilled anyway: force\)); ", line), line
    assert "payback" in line and "achieved retention" in line
    assert f"report: {out / 'report' / 'report.html'}" in line
    for f in ("run.yaml", "state.json", "summary.json", "bench/results.csv",
              "pilot/pilot.csv", "plan/plan.yaml", "plan/plan.json", "distill/metrics.json",
              "replan/plan.json", "report/figures/learning_curves.png",
              "distill/student.int8.onnx", "bench-student/results.csv", "report/report.md",
              "report/decision/report.html", "report/sizing/report.html"):
        assert (out / f).is_file(), f
    state = json.loads((out / "state.json").read_text())
    assert list(state["steps"]) == STEPS
    for step in STEPS:  # a line and a progress report per step
        assert f"] {step}: done in" in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trainer_steps"] == 16 and 0 < summary["achieved_retention"] <= 1.05
    lo, mid, hi = summary["forecast_at_run_steps"]  # the pilots forecast the run's own budget
    assert 0 < lo <= mid <= hi and summary["achieved_inside_forecast"] in (True, False)
    assert "(forecast " in line and "for 16 steps: " in line


def test_report_shows_predicted_beside_achieved(quick_run):
    out, _, _ = quick_run
    md = (out / "report" / "report.md").read_text()
    assert "Pending: no distillation has run yet" not in md
    assert "roi run distills with a smaller budget (steps 16" in md  # the budget used
    assert "| ort/int8 b1 |" in md  # latency: the architecture before vs the distilled student
    assert (out / "report" / "figures" / "predicted_vs_achieved.png").stat().st_size > 1000
    html = (out / "report" / "report.html").read_text()
    assert 'id="achieved"' in html and "<script" not in html


def test_roi_report_renders_a_run_directory_again(quick_run, tmp_path, capsys):
    out, _, _ = quick_run
    code = main(["report", str(out), "--out", str(tmp_path / "again")])  # in-process
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr[-2000:]
    assert (tmp_path / "again" / "report.html").is_file()
    assert (tmp_path / "again" / "distill-plan" / "report.md").is_file()
    assert str(tmp_path / "again" / "report.html") in stdout
    bad = roi("report", str(tmp_path / "missing"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_rerun_resumes_only_what_is_missing(quick_run):
    out, config, _ = quick_run
    kept = {f: (out / f).stat().st_mtime_ns for f in ("bench/results.csv", "plan/plan.json",
                                                      "distill/metrics.json")}
    import shutil

    shutil.rmtree(out / "bench-student")
    proc = roi("run", "--quick", "--config", str(config), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for step in ("bench", "plan", "report", "distill"):
        assert f"] {step}: finished earlier, skipped" in proc.stderr
    assert "] bench-student: done in" in proc.stderr and "] final-report: done in" in proc.stderr
    assert {f: (out / f).stat().st_mtime_ns for f in kept} == kept
    assert (out / "bench-student" / "results.csv").is_file()
    other = roi("run", "--out", str(out))  # not --quick, no config: other settings
    assert other.returncode == 2 and "other settings" in other.stderr
