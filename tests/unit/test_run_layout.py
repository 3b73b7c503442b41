"""The run directory named once (contracts.run_layout): the pipeline's steps own its files and
the report reads them at the same places."""

import json

from app.run import STEPS
from contracts.plan import parse_plan
from contracts.run_layout import RunLayout
from reports.report import read_run_dir
from roi.planner import write_plan

from .plan_helpers import old_plan_bytes


def test_every_step_output_is_a_file_of_the_layout_in_the_step_own_directory():
    named = {*RunLayout.RESULTS, RunLayout.PILOT_CURVES, *RunLayout.PLAN, RunLayout.METRICS,
             *RunLayout.STUDENT_RESULTS, RunLayout.REPLAN, f"{RunLayout.REPORT_DIR}/report.html"}
    for step in STEPS:
        assert all(o in named and o.startswith(f"{step.owns}/") for o in step.outputs), step.name


def test_the_report_reads_the_files_where_the_layout_puts_them(tmp_path):
    layout = RunLayout(tmp_path)
    plan = json.loads(old_plan_bytes("v1-measured"))
    write_plan(parse_plan(plan), layout.plan_json.parent)
    layout.metrics.parent.mkdir()
    layout.metrics.write_text(json.dumps({"retention_accuracy": 0.97}))
    inp = read_run_dir(tmp_path)
    assert inp.origin["plan"] == str(layout.plan_json)
    assert inp.origin["distillation metrics"] == str(layout.metrics)
    assert inp.metrics == {"retention_accuracy": 0.97} and inp.replan is None
    assert inp.origin["results"] == "absent"


def test_roi_run_plan_step_writes_a_plan_the_contract_accepts(tmp_path):
    """step_plan is the one place a plan is changed after planning (its trainer note): what it
    writes at the layout's place reads back typed, the note kept."""
    import shutil

    from app.run import open_run, step_plan
    from app.runconfig import RunConfig
    from roi.planner import read_plan

    from .plan_helpers import FIXTURE

    run = open_run(RunConfig(), tmp_path / "run", "quick")
    run.layout.path(RunLayout.RESULTS[0]).parent.mkdir(parents=True)
    shutil.copy(FIXTURE, run.layout.path(RunLayout.RESULTS[0]))
    step_plan(run)
    plan = read_plan(run.layout.plan_json)
    assert "roi run distills with a smaller budget" in plan.trainer_note
    assert (run.layout.plan_json.parent / "plan.schema.json").is_file()
    assert read_plan(run.layout.plan_yaml).document() == plan.document()
