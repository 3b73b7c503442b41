"""roi run's orchestration with fake steps (no torch): resume after a failure, redo what a redone
step feeds, redo a step whose outputs went missing, the no-go gate, settings kept per run
directory; and the config refusing bad input in one line, before anything is written."""

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import yaml

from contracts.errors import InputError
from app.run import STEPS, Run, Step, execute, open_run, read_state, summary_line
from app.runconfig import RunConfig, load_run_config, resolved

from .plan_helpers import old_plan_bytes


def plan_doc(go: bool) -> dict:
    """A plan the contract accepts (a real one's sections), with the figures these tests read."""
    real = json.loads(old_plan_bytes("v1-measured"))
    return {**real, "decision": {"go": go, "reasons": ["no measured benefit: the teacher "
                                                       "already meets every scenario"]
                                 if not go else ["recommended student: s"], "criteria": []},
            "recommended": {"model": "builtin:student-10x", "params": 1_430_000,
                            "compression_ratio": 10.0, "retention_band": [0.9, 0.97]},
            "roi": {"monthly_savings_usd": 2554.0, "payback_months": 3.1, "scope": "scenario",
                    "scenario": "real-time-api", "inputs": {}, "one_time": {},
                    "teacher_bill": {}},
            "trainer": {"steps": 1500}}


class Fake:
    """Stand-ins for the real steps: each records its call and writes its outputs."""

    def __init__(self, go: bool = True, fail: str | None = None):
        self.go, self.fail, self.calls = go, fail, []

    def steps(self) -> tuple[Step, ...]:
        return tuple(replace(s, action=self.action(s)) for s in STEPS)

    def action(self, step: Step):
        def act(run: Run) -> None:
            self.calls.append(step.name)
            if step.owns:
                (run.path(step.owns) / "partial").parent.mkdir(parents=True, exist_ok=True)
                (run.path(step.owns) / "partial").write_text("x")
            if step.name == self.fail:
                self.fail = None
                raise RuntimeError(f"injected fault in {step.name}")
            for out in step.outputs:
                path = run.path(out)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(plan_doc(self.go)) if out.endswith("plan.json")
                                else "done")
            if step.name == "distill":
                run.path("distill", "metrics.json").write_text(json.dumps(
                    {"retention_accuracy": 0.93, "settings": {"steps": 16,
                                                              "student": "builtin:student-10x"}}))
        return act


def start(tmp_path, config: RunConfig | None = None) -> Run:
    return open_run(config or RunConfig(), tmp_path / "run", "quick")


def test_a_failed_step_resumes_without_redoing_finished_ones(tmp_path):
    fake = Fake(fail="bench-student")
    with pytest.raises(RuntimeError, match="injected"):
        execute(start(tmp_path), fake.steps())
    assert fake.calls == ["bench", "pilot", "plan", "report", "distill", "bench-student"]
    state = read_state(tmp_path / "run")
    assert list(state["steps"]) == ["bench", "pilot", "plan", "report", "distill"]
    fake.calls.clear()
    result = execute(start(tmp_path), fake.steps())
    assert fake.calls == ["bench-student", "replan", "final-report"]
    # the interrupted step resumed from what it had left (not cleared: its inputs are the same)
    assert (tmp_path / "run" / "bench-student" / "partial").is_file()
    assert result.go and result.summary["achieved_retention"] == 0.93
    fake.calls.clear()
    execute(start(tmp_path), fake.steps())
    assert fake.calls == []  # everything finished: nothing to do


def test_missing_outputs_are_redone_and_so_is_what_they_feed(tmp_path):
    fake = Fake()
    execute(start(tmp_path), fake.steps())
    (tmp_path / "run" / "plan" / "plan.json").unlink()
    (tmp_path / "run" / "bench" / "marker").write_text("kept")
    fake.calls.clear()
    execute(start(tmp_path), fake.steps())
    # the plan is redone, so everything reading it is redone from scratch; bench is kept
    assert fake.calls == ["plan", "report", "distill", "bench-student", "replan",
                          "final-report"]
    assert (tmp_path / "run" / "bench" / "marker").is_file()


def test_deleting_the_report_redoes_only_the_report(tmp_path):
    fake = Fake()
    execute(start(tmp_path), fake.steps())
    (tmp_path / "run" / "report" / "report.html").unlink()
    fake.calls.clear()
    execute(start(tmp_path), fake.steps())
    assert fake.calls == ["report"]  # final-report's output is back; its inputs did not change


def test_no_go_stops_after_the_report_and_says_so(tmp_path):
    fake = Fake(go=False)
    result = execute(start(tmp_path), fake.steps())
    assert fake.calls == ["bench", "pilot", "plan", "report"]
    assert result.summary["stopped"] == "no-go" and not result.go
    line = summary_line(result.summary)
    assert line.startswith("NO-GO: no measured benefit") and "report.html" in line
    assert "\n" not in line
    fake.calls.clear()
    execute(start(tmp_path), fake.steps())
    assert fake.calls == []  # the answer stands; nothing reruns


def test_force_distills_a_no_go_plan(tmp_path):
    fake = Fake(go=False)
    result = execute(start(tmp_path, RunConfig(force=True)), fake.steps())
    assert fake.calls[-1] == "final-report"
    assert summary_line(result.summary).startswith("NO-GO (distilled anyway")


def test_summary_line_of_a_go_run(tmp_path):
    result = execute(start(tmp_path), Fake().steps())
    line = summary_line(result.summary)
    assert line.startswith("GO; distill builtin:student-10x (1.43 M params, 10.0x smaller)")
    assert result.summary["scenario"] == "real-time-api"
    for text in ("real-time-api saves $2,554/month; payback 3.1 months", "achieved retention 93.0% "
                 "(prior 90%-97% for 1500 steps) after 16 steps", "re-planned with "
                 "this run: GO, full budget: builtin:student-10x for 1,500 steps is forecast "
                 "to keep 90.0%-97.0%",
                 "report: "):
        assert text in line
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["recommended"] == "builtin:student-10x"


def test_a_run_directory_keeps_its_settings(tmp_path):
    execute(start(tmp_path), Fake().steps())
    with pytest.raises(InputError, match="other settings .*profile"):
        open_run(RunConfig(), tmp_path / "run", "default")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    with pytest.raises(InputError, match="not a run directory"):
        open_run(RunConfig(), tmp_path / "other", "quick")


def test_profiles_and_config_merge(tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    (tmp_path / "sc.yaml").write_text("x")
    cfg_file.write_text(yaml.safe_dump({"students": ["hf:models/s"], "scenarios": [
        "real-time-api", "sc.yaml"], "bench": {"batch_sizes": [4]}, "trainer": {"steps": 7}}))
    cfg = load_run_config(cfg_file)
    assert cfg.students == [f"hf:{tmp_path / 'models/s'}"]
    assert cfg.scenarios == ["real-time-api", str(tmp_path / "sc.yaml")]
    doc = resolved(cfg, "quick")
    assert doc["bench"]["batch_sizes"] == [4] and doc["bench"]["quick"] is True
    assert doc["trainer"]["steps"] == 7 and doc["trainer"]["eval_windows"] == 8
    assert resolved(RunConfig(), "default")["trainer"]["steps"] > doc["trainer"]["steps"]
    assert doc["portfolio"] is False
    assert resolved(RunConfig(portfolio=True), "quick")["portfolio"] is True


@pytest.mark.parametrize("text, message", [
    ("teacher: builtin:teacher\nstudentz: auto\n", "studentz: unknown field; allowed fields: "),
    ("bench: {batch_sizes: [0]}\n", "bench.batch_sizes.0: must be greater than 0; got 0"),
    ("retention_threshold: 1.5\n", "retention_threshold: must be less than or equal to 1"),
    ("trainer: {stepz: 3}\n", "trainer: stepz: unknown field"),
    ("trainer: {steps: -3}\n", "trainer: steps: must be greater than 0; got -3"),
    ("bench: {backends: [ort-fp16]}\n", "bench.backends: must be among torch-eager"),
    ("scenarios: [no-such-preset]\n", "unknown scenario 'no-such-preset'"),
    ("teacher: !!python/object/apply:os.system [echo pwned]\n", "not valid YAML"),
    ("teacher: hf:/nonexistent\n", "hf:/nonexistent"),
    ("task: tokens\n", "task: "),
    ("task: embedding\nstudents: [builtin:student-5x]\n", "students: task embedding takes auto"),
    ("task: embedding\ntrainer: {kd_loss: forward_kl}\n", "trainer: kd_loss"),
    ("task: embedding\ndata: no-such.jsonl\n", "no-such.jsonl: no such file"),
    ("task: embedding\n", "teacher builtin:teacher: task embedding needs an hf: sentence"),
])
def test_bad_config_is_one_line_exit_2_and_nothing_written(tmp_path, text, message):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "app.cli", "run", "--config", str(cfg),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert str(cfg) in lines[0]  # which file the bad setting is in
    assert not out.exists() and "pwned" not in proc.stdout


def test_run_modules_import_without_torch():
    code = ("import sys, app.run, app.runconfig; app.runconfig.resolved(app.runconfig."
            "RunConfig(trainer={'steps': 5}), 'default'); "
            "sys.exit(1 if {'torch', 'onnxruntime'} & set(sys.modules) else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_summary_line_holds_the_run_against_the_forecast_for_its_own_budget(tmp_path):
    from app.summary import summarize

    plan = plan_doc(True)
    plan["forecast"] = {"curves": [{"model": "builtin:student-10x", "mode": "kd",
                                    "at_steps": {"16": [0.40, 0.45, 0.50]}}]}
    metrics = {"retention_accuracy": 0.47, "settings": {"steps": 16,
                                                        "student": "builtin:student-10x"}}
    replan = {**plan_doc(True), "trainer": {"steps": 3200},
              "recommended": {"model": "builtin:student-10x", "retention_band": [0.951, 0.97],
                              "retention_p50": 0.96}, "roi": {"one_time": {"total_usd": 8123.0}}}
    s = summarize(plan, metrics, {"steps": {}}, tmp_path, replan)
    assert s["forecast_at_run_steps"] == [0.40, 0.45, 0.50] and s["achieved_inside_forecast"]
    line = summary_line(s)
    assert "achieved retention 47.0% after 16 steps (forecast 40.0%-50.0% for 16 steps: " \
           "inside)" in line
    assert "re-planned with this run: GO, full budget: builtin:student-10x for 3,200 steps " \
           "is forecast to keep 95.1%-97.0% (P10-P90) at a one-time $8,123" in line
    metrics["retention_accuracy"] = 0.55
    assert "outside" in summary_line(summarize(plan, metrics, {"steps": {}}, tmp_path, replan))
    assert "undertrained" not in line
    metrics["retention_accuracy"] = 1.42  # an untrained teacher: the student "beats" it
    assert "above 100%: the student beats its teacher" in summary_line(
        summarize(plan, metrics, {"steps": {}}, tmp_path, replan))


def test_the_summary_names_the_scenario_or_the_portfolio_it_answers_for():
    from app.summary import answered_for

    assert answered_for({"monthly_savings_usd": 1.0, "scope": "scenario",
                         "scenario": "cloud-batch"}) == "cloud-batch"
    portfolio = {"monthly_savings_usd": 9.0, "scope": "portfolio",
                 "portfolio": ["cloud-batch", "real-time-api"]}
    assert answered_for(portfolio) == "portfolio (cloud-batch, real-time-api)"
    assert answered_for({"note": "no savings figure"}) is None
    line = summary_line({"go": True, "reasons": [], "report": "r.html", "recommended": None,
                         "scenario": answered_for(portfolio), "monthly_savings_usd": 9.0,
                         "payback_months": 2.0})
    assert "portfolio (cloud-batch, real-time-api) saves $9/month; payback 2.0 months" in line


def test_no_pilot_turns_the_pilots_off_over_the_config(tmp_path):
    from app.cli_plan import run_config
    from app.run import pilot_skip_reason

    cfg = tmp_path / "run.yaml"
    cfg.write_text("pilot: {steps: 32}\n")
    assert run_config(str(cfg)).pilot.enabled
    off = run_config(str(cfg), no_pilot=True)
    assert not off.pilot.enabled and off.pilot.steps == 32
    assert "enabled: false" in pilot_skip_reason(resolved(off, "quick"))
