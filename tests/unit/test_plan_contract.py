"""The Plan contract (contracts/plan.py): plans of both kinds read back typed and written again
byte for byte, plans of the previous version stay readable, a wrong version or a damaged file is
one line naming the file and the field, and the shipped JSON Schema is the generated one."""

import gzip
import json
from pathlib import Path

import pytest

from app.cli import main
from contracts.errors import InputError
from contracts.plan import LLMPlan, MeasuredPlan, parse_plan, plan_schema
from roi.planner import plan, read_plan, write_plan

from .plan_helpers import FIXTURE, OLD_PLANS, old_plan_bytes

SCHEMA = Path(__file__).resolve().parents[2] / "contracts" / "data" / "plan.schema.json"


def _old(name: str, tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    path.write_bytes(old_plan_bytes(name))
    return path


@pytest.mark.parametrize("name, kind", [("v1-measured", MeasuredPlan),
                                        ("v1-llm-config", LLMPlan)])
def test_previous_version_reads_typed_and_writes_the_same_bytes(name, kind, tmp_path):
    old = _old(name, tmp_path)
    plan = read_plan(old)
    assert isinstance(plan, kind) and plan.version == 1
    assert isinstance(plan.decision.go, bool) and plan.decision.criteria[0].verdict
    write_plan(plan, tmp_path / "again")
    assert (tmp_path / "again" / "plan.json").read_bytes() == old.read_bytes()
    assert json.loads((tmp_path / "again" / "plan.schema.json").read_text()) == plan_schema()


def test_sections_are_typed(tmp_path):
    plan = read_plan(_old("v1-measured", tmp_path))
    assert plan.recommended.model == plan.trainer.student == "builtin:student-10x"
    assert plan.recommended.per_scenario[0].feasible is True
    assert plan.cost[0].usd_per_month > 0 and plan.sizing[0].hardware
    assert plan.roi.scope == "scenario" and plan.alternatives[0].qualifies is True
    criterion = plan.decision.criteria[2]  # a yes/no criterion keeps its bools
    assert criterion.value is False and criterion.threshold is True
    llm = read_plan(_old("v1-llm-config", tmp_path))
    assert llm.kind == "llm-config" and llm.scenarios[0].models[0].role == "teacher"


def test_wrong_version_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"version": 2, "decision": {}}))
    with pytest.raises(InputError, match=r"plan\.json: not a plan \(version 1 expected; "
                                         r"version: 2\)"):
        read_plan(path)


@pytest.mark.parametrize("damage, field", [
    (lambda d: d.pop("decision"), "decision: Field required"),
    (lambda d: d["recommended"].update(params="many"), "recommended.params"),
    (lambda d: d["cost"][3].pop("hardware"), "cost.3.hardware"),
    (lambda d: d.update(surprise=1), "surprise: Extra inputs are not permitted"),
])
def test_damaged_plan_names_the_field(damage, field, tmp_path):
    doc = json.loads(_old("v1-measured", tmp_path).read_text())
    damage(doc)
    with pytest.raises(InputError) as e:
        parse_plan(doc, "x/plan.json")
    assert str(e.value).startswith("x/plan.json: damaged plan: ") and field in str(e.value)
    assert "\n" not in str(e.value)


def test_report_of_a_damaged_plan_exits_2_in_one_line(tmp_path, capsys):
    doc = json.loads(_old("v1-measured", tmp_path).read_text())
    doc["decision"]["go"] = "perhaps"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    out = tmp_path / "report"
    assert main(["report", "--plan", str(tmp_path / "bad.json"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'bad.json'}: damaged plan: decision.go: Input should "
                   f"be a valid boolean, unable to interpret input"]
    assert not out.exists()


def test_report_of_an_llm_plan_is_refused_in_one_line(tmp_path, capsys):
    old = _old("v1-llm-config", tmp_path)
    assert main(["report", "--plan", str(old), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {old}: a plan of kind llm-config (a teacher known by its config): "
                   "roi plan writes its report beside it")


def test_shipped_schema_is_the_generated_one():
    assert json.loads(SCHEMA.read_text()) == plan_schema(), \
        "regenerate: python -m contracts.plan > contracts/data/plan.schema.json"
    schema = plan_schema()
    assert schema["oneOf"] == [{"$ref": "#/$defs/MeasuredPlan"}, {"$ref": "#/$defs/LLMPlan"}]
    assert "version" in schema["$defs"]["MeasuredPlan"]["required"]


def _pilot_plan():
    import roi.forecast
    from contracts.curves import to_frame

    from .test_budget import _rows

    floor, roi.forecast.ODDS_KAPPA_FLOOR = roi.forecast.ODDS_KAPPA_FLOOR, {}
    try:  # the pilots' own band, as test_budget's plan with pilots
        curves = to_frame(_rows("builtin:student-10x") + _rows("builtin:student-10x", "ce",
                                                               e=1.1))
        return plan(FIXTURE, "real-time-api", pilot=curves, max_steps=20_000,
                    retention_threshold=0.9)
    finally:
        roi.forecast.ODDS_KAPPA_FLOOR = floor


@pytest.mark.parametrize("make", [
    _pilot_plan,
    lambda: plan(FIXTURE, ["real-time-api", "cloud-batch"], portfolio=True),
    lambda: plan(FIXTURE, ["embedded-iot"], retention_threshold=0.999),  # no student: no-go
], ids=["pilots", "portfolio", "no-go"])
def test_plans_of_every_shape_read_back_as_written_and_render(make):
    import reports
    from reports.markdown import render

    p = make()
    typed = p.typed()
    assert json.dumps(typed.document()) == json.dumps(p.document)  # keys in the same order
    assert typed.go == p.go
    page = render(reports.build(None, typed))  # the report reads every section typed
    assert ("GO: distill" if p.go else "NO-GO") in page and "None" not in page


def test_keys_are_written_in_the_order_given():
    doc = json.loads(old_plan_bytes("v1-measured"))
    doc = {k: doc[k] for k in reversed(doc)}
    doc["decision"]["criteria"][0] = dict(reversed(doc["decision"]["criteria"][0].items()))
    assert json.dumps(parse_plan(doc).document()) == json.dumps(doc)


def test_the_edge_record_is_typed_and_reads_back_whole():
    doc = json.loads(gzip.decompress((OLD_PLANS / "expected.plan.json.gz").read_bytes()))
    plan = parse_plan(doc)
    edge = plan.edge.scenarios["mobile-on-device"]
    assert edge.answer.kind and edge.answer.text and edge.ownership
    row = edge.rows[0]
    assert row.device and isinstance(row.runs, bool) and row.service_ms_p50 > 0
    assert plan.document() == doc  # typed, nothing lost


def test_forecast_curves_are_typed():
    doc = json.loads(gzip.decompress((OLD_PLANS / "expected.plan.json.gz").read_bytes()))
    curve = parse_plan(doc).forecast.curve("builtin:student-10x")
    assert curve.steps_to_threshold_p10 >= curve.steps_to_threshold_p50 > 0
    assert all(len(band) == 3 for band in curve.at_steps.values())
    doc["forecast"]["curves"][0]["steps_to_threshold_p10"] = "soon"
    with pytest.raises(InputError, match=r"plan: damaged plan: forecast\.curves\.0\."
                                         r"steps_to_threshold_p10"):
        parse_plan(doc)


def test_the_records_reports_read_are_typed_and_read_back_whole():
    """Issue 17: the sections reports read (scenario details, trainer, the forecast's
    calibration and pilot compute, assumptions, the one-time cost's inputs, sources, budget
    grids) are models, not mappings; the scenario's parts are the planner's own classes."""
    from contracts.plan import CostInput, Workload
    from roi import scenarios

    doc = json.loads(gzip.decompress((OLD_PLANS / "expected.plan.json.gz").read_bytes()))
    plan = parse_plan(doc)
    detail = plan.scenario_details[0]
    assert scenarios.Workload is Workload and isinstance(detail.workload, Workload)
    assert detail.workload.tokens_in_per_request == doc["scenario_details"][0]["workload"][
        "tokens_in_per_request"] and detail.sla.percentile == 99 and not detail.constraints.offline
    assert plan.trainer.steps == doc["trainer"]["steps"] and plan.trainer.student
    assert plan.trainer.model_extra["kd_loss"] == doc["trainer"]["kd_loss"]  # kept as given
    cal = plan.forecast.calibration["kd"]
    assert 0 < cal.kappa < 1 and cal.units == doc["forecast"]["calibration"]["kd"]["units"]
    assert 0 < plan.forecast.pilot_compute.share < 1 and plan.forecast.pilot_compute.basis
    assert plan.assumptions.memory_efficiency == doc["assumptions"]["memory_efficiency"]
    inputs = plan.roi.one_time.inputs
    assert isinstance(inputs["training_hardware"], CostInput)
    assert inputs["training_hardware"].usd_per_hour > 0 and inputs["training_tokens"].source
    assert plan.sources.machines[0].rows > 0 and plan.projection.memory_efficiency.value
    grid = plan.recommended.budget.grid
    assert grid[0].steps < grid[-1].steps and grid[0].retention_p10 <= grid[0].retention_p90
    assert plan.document() == doc and json.dumps(plan.document()) == json.dumps(doc)


@pytest.mark.parametrize("section, path, value", [
    ("scenario_details", (0, "workload", "arrival"), "burst"),
    ("trainer", ("student",), 7),
    ("forecast", ("failed",), [{"model": "m"}]),
])
def test_a_wrong_record_names_its_field(section, path, value):
    doc = json.loads(gzip.decompress((OLD_PLANS / "expected.plan.json.gz").read_bytes()))
    target = doc[section]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InputError, match=rf"plan: damaged plan: {section}\.") as e:
        parse_plan(doc)
    assert "\n" not in str(e.value)
