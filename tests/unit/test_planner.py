import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

import roi
from contracts.errors import InputError
from distill.config import TrainConfig
from roi.planner import PLAN_KEYS, Plan, plan, read_plan, write_plan
from roi.scenarios import Scenario, presets

from .plan_helpers import FIXTURE, synthetic_results

SLOW_CPU = dict(gflop_s=0.5, overhead_ms=1.0)  # teacher ~1.6 s a request, s10 ~0.26 s


def _scenario(hardware=("c7i.xlarge",), latency_ms=500.0, qps=5.0) -> Scenario:
    return Scenario.model_validate({
        "name": "own", "deployment": "cloud", "workload": {"qps": qps, "tokens_in_per_request": 128,
                                    "tokens_out_per_request": 0, "arrival": "poisson"},
        "sla": {"percentile": 99, "latency_ms": latency_ms},
        "candidate_hardware": list(hardware)})


@pytest.fixture(scope="module")
def fixture_plan() -> Plan:
    return plan(pd.read_csv(FIXTURE), "real-time-api")


def test_contract_keys_and_trainer_section(fixture_plan):
    doc = fixture_plan.to_dict()
    assert all(k in doc for k in PLAN_KEYS) and doc["version"] == 1
    assert doc["scenarios"] == ["real-time-api"]
    assert isinstance(doc["decision"]["go"], bool) and doc["decision"]["reasons"]
    for c in doc["decision"]["criteria"]:
        assert {"name", "value", "threshold", "verdict"} <= set(c)
    rec = doc["recommended"]
    assert {"model", "params", "compression_ratio", "retention_band", "deploy_backend",
            "deploy_dtype"} <= set(rec)
    assert rec["model"].startswith("builtin:student-") and rec["retention_band"][0] >= 0.95
    assert doc["teacher"] == {"model": "builtin:teacher", "params": 14393088}
    trainer = doc["trainer"]
    assert trainer == {"teacher": "builtin:teacher", "student": rec["model"], "mode": "kd",
                       "init": "teacher-pruned", "temperature": 1.0, "alpha": 0.9, "lr": 3e-3,
                       "min_lr": 3e-4, "warmup_steps": 20, "schedule": "wsd",
                       "decay_fraction": 0.2, "steps": 1500}
    assert set(trainer) <= set(TrainConfig.model_fields)
    TrainConfig(**trainer)  # every key a valid trainer setting
    assert {a["model"] for a in doc["alternatives"]} | {rec["model"]} == {
        f"builtin:student-{k}x" for k in (5, 10, 20, 50)}


def test_the_real_table_projection_and_sources(fixture_plan):
    doc = fixture_plan.to_dict()
    loo = {r["backend"]: r for r in doc["projection"]["leave_one_out"]}
    assert set(loo) == {"ort", "torch-eager"} and loo["ort"]["n_predictions"] == 20
    assert {r["source"] for r in doc["sources"]["hardware"]} == {"projected"}
    assert {r["source"] for r in doc["cost"]} == {"projected"}
    assert len(doc["cost"]) == len(doc["sizing"]) == 10 * 5  # hardware x models
    assert doc["sources"]["machines"][0]["hardware"] is None  # the bench CPU is no catalog row


def test_each_hardware_is_costed_for_a_runtime_it_runs(fixture_plan):
    # the bench table measured torch-eager fp32, ort fp32 and ort int8 (dynamic) on a CPU
    doc = fixture_plan.to_dict()
    accelerators = {"h100", "h200", "a100-40gb", "a100-80gb", "a10g", "l4", "l40s", "inf2"}
    for row in doc["sizing"]:
        if row["hardware"] in accelerators:
            assert (row["backend"], row["dtype"]) != ("ort", "int8"), row
    inf2 = [r for r in doc["sizing"] if r["hardware"] == "inf2"]
    assert inf2 and all(r["backend"] == "torch-eager" and r["dtype"] == "fp32" for r in inf2)
    assert all(" as a proxy for AWS Neuron (fp32 model, --auto-cast=matmult" in r["note"]
               for r in inf2)
    int8 = fixture_plan.grid[fixture_plan.grid["hardware"].isin(accelerators)
                             & (fixture_plan.grid["dtype"] == "int8")]
    assert len(int8) and (int8["source"] == "not applicable").all()
    assert not int8["feasible"].any() and int8["service_ms_p50"].isna().all()


def test_yaml_and_json_round_trip(fixture_plan, tmp_path):
    y, j = write_plan(fixture_plan, tmp_path / "out")
    from_yaml = yaml.safe_load(y.read_text())
    assert from_yaml == json.loads(j.read_text()) == read_plan(y).document()
    assert list(from_yaml)[:len(PLAN_KEYS)] == list(PLAN_KEYS)
    assert (tmp_path / "out" / "sizing.csv").is_file()
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_python_api_is_roi_plan_without_torch():
    code = ("import sys, pandas as pd, roi; "
            f"p = roi.plan(pd.read_csv({str(FIXTURE)!r}), 'embedded-iot'); "
            "import roi.planner; assert roi.plan is roi.planner.plan; "
            "print(type(p).__name__, [m for m in ('torch', 'onnxruntime') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Plan []"
    assert roi.Plan is Plan


def test_a_student_that_rescues_the_sla_is_go():
    p = plan(synthetic_results(**SLOW_CPU), _scenario(latency_ms=450)).to_dict()
    bill = p["roi"]["teacher_bill"]["own"]
    assert "meets the SLA on no candidate hardware" in bill["basis"]
    assert p["decision"]["go"] is True
    assert any("the teacher cannot meet own" in r for r in p["decision"]["reasons"])
    assert p["recommended"]["model"] in {"m:s5", "m:s10", "m:s20"}  # s50's band is under 95%


def test_savings_and_payback_when_the_student_needs_fewer_replicas():
    slower = dict(SLOW_CPU, gflop_s=0.2)
    p = plan(synthetic_results(**slower), _scenario(latency_ms=20_000, qps=20)).to_dict()
    roi_ = p["roi"]
    assert roi_["teacher_usd_per_month"] > roi_["student_usd_per_month"] > 0
    assert roi_["payback_months"] == pytest.approx(
        roi_["one_time"]["total_usd"] / roi_["monthly_savings_usd"])
    assert roi_["tornado"] and roi_["monte_carlo"]["payback_months"]["p50"] is not None
    assert p["decision"]["go"] is True  # the teacher's bill is over $10K a month
    assert any(r.startswith("ROI: saves $") for r in p["decision"]["reasons"])


def test_no_student_meets_these_constraints(fixture_plan):
    p = plan(pd.read_csv(FIXTURE), "real-time-api", retention_threshold=0.999).to_dict()
    assert p["recommended"] is None and p["decision"]["go"] is False
    assert p["no_recommendation_reason"].startswith("no student meets these constraints")
    assert "under the 99.9% threshold" in p["no_recommendation_reason"]
    assert isinstance(p["trainer"], dict) and p["trainer"]["student"].startswith("builtin:")


def test_seed_only_decision_when_benefit_is_not_required():
    # Without layer counts (a hand-written table) the tiny models are all overhead-bound on a
    # GPU: every one costs the same, so distilling buys nothing measurable.
    flat = pd.read_csv(FIXTURE).drop(columns="n_layers")
    no_benefit = plan(flat, "real-time-api")
    assert no_benefit.go is False
    assert any("no measured benefit" in r for r in no_benefit.to_dict()["decision"]["reasons"])
    assert plan(flat, "real-time-api", require_benefit=False).go is True


def test_layer_counts_make_shallower_students_cheaper_on_a_gpu(fixture_plan):
    # With them, each decode step pays the launch floor per layer: the 3-layer student's
    # requests are shorter than the 8-layer teacher's, which the plan turns into a saving.
    doc = fixture_plan.to_dict()
    assert fixture_plan.go is True and doc["roi"]["monthly_savings_usd"] > 0
    assert doc["recommended"]["usd_per_month"] < doc["roi"]["teacher_usd_per_month"]


def test_tables_from_two_machines_merge_and_each_hardware_says_its_source():
    cpu = synthetic_results()
    gpu = synthetic_results(device="cuda", env_gpu="NVIDIA L4", overhead_ms=0.05,
                            gflop_s=3000.0)
    p = plan([cpu, gpu], _scenario(hardware=("l4", "a10g", "c7i.xlarge"))).to_dict()
    src = {r["hardware"]: r for r in p["sources"]["hardware"]}
    assert src["l4"]["source"] == "measured" and src["l4"]["measured_on"] == ["NVIDIA L4"]
    assert src["a10g"]["source"] == "projected"
    assert src["a10g"]["projected_from"] == ["projected from NVIDIA L4 ort/fp32"]
    assert src["c7i.xlarge"]["projected_from"] == ["projected from Test CPU (2 logical CPUs) "
                                                   "ort/fp32"]
    assert len(p["sources"]["machines"]) == 2


def test_several_scenarios_in_one_plan():
    p = plan(pd.read_csv(FIXTURE), ["real-time-api", "embedded-iot"]).to_dict()
    assert p["scenarios"] == ["real-time-api", "embedded-iot"]
    assert {c["scenario"] for c in p["decision"]["criteria"]} == set(p["scenarios"])
    assert {s["scenario"] for s in p["recommended"]["per_scenario"]} == set(p["scenarios"])


@pytest.mark.parametrize("results,scenario,kw,needle", [
    (lambda: synthetic_results(), "no-such-preset", {}, "unknown scenario 'no-such-preset'"),
    (lambda: synthetic_results().assign(role="student"), "real-time-api", {},
     "no ok row has role teacher"),
    (lambda: pd.concat([synthetic_results(), synthetic_results(
        models={"m:teacher2": 10_000_000})]), "real-time-api", {}, "2 teacher models"),
    (lambda: synthetic_results(), "real-time-api", {"retention_threshold": 95},
     "retention threshold must be in (0, 1]"),
    (lambda: synthetic_results(), "real-time-api", {"local_peak_gflops": -1},
     "local peak must be > 0"),
    (lambda: synthetic_results(), ["real-time-api", "real-time-api"], {},
     "real-time-api given more than once"),
])
def test_bad_input_through_the_api(results, scenario, kw, needle):
    with pytest.raises(InputError) as e:
        plan(results(), scenario, **kw)
    assert needle in str(e.value)


def test_every_preset_plans():
    for name in presets():
        doc = plan(synthetic_results(), name).to_dict()
        assert doc["scenarios"] == [name] and doc["trainer"]["mode"] == "kd"


TWO = ["real-time-api", "cloud-batch"]


@pytest.fixture(scope="module")
def two_plans() -> dict[bool, dict]:
    return {pf: plan(pd.read_csv(FIXTURE), TWO, portfolio=pf).to_dict() for pf in (False, True)}


def _cheapest(doc: dict, scenario: str, model: str) -> float:
    """The model's cheapest feasible monthly cost in the scenario, read off the cost table."""
    return min(r["usd_per_month"] for r in doc["cost"]
               if r["scenario"] == scenario and r["model"] == model and r["feasible"])


def test_each_scenario_has_its_own_roi_and_the_headline_names_one(two_plans):
    doc = two_plans[False]
    roi_, student = doc["roi"], doc["recommended"]["model"]
    per = roi_["per_scenario"]
    assert list(per) == TWO and roi_["scope"] == "scenario"
    one_time = roi_["one_time"]["total_usd"]
    for name in TWO:  # each from that scenario's own costs, by hand
        teacher, cost = _cheapest(doc, name, "builtin:teacher"), _cheapest(doc, name, student)
        r = per[name]
        assert (r["teacher_usd_per_month"], r["student_usd_per_month"]) == (teacher, cost)
        assert r["monthly_savings_usd"] == pytest.approx(teacher - cost)
        assert r["payback_months"] == pytest.approx(one_time / (teacher - cost))
        assert r["net_12_months_usd"] == pytest.approx(12 * (teacher - cost) - one_time)
        assert r["one_time_usd"] == one_time and r["decision"] in ("go", "no-go")
    # real-time-api: teacher $2,213.94 on 4 inf2, the student $1,106.97 on 2: saves $1,106.97
    assert per["real-time-api"]["monthly_savings_usd"] == pytest.approx(1106.972)
    best = max(TWO, key=lambda n: per[n]["monthly_savings_usd"])
    assert roi_["scenario"] == best == "real-time-api"
    for key in ("teacher_usd_per_month", "student_usd_per_month", "monthly_savings_usd",
                "payback_months", "net_12_months_usd", "requests_per_month"):
        assert roi_[key] == per[best][key], key
    assert "portfolio" not in roi_


def test_a_portfolio_total_is_the_sum_of_its_scenarios(two_plans):
    alone, together = two_plans[False]["roi"], two_plans[True]["roi"]
    assert together["scope"] == "portfolio" and together["portfolio"] == TWO
    assert together["per_scenario"] == alone["per_scenario"]
    for key in ("teacher_usd_per_month", "student_usd_per_month", "monthly_savings_usd",
                "requests_per_month"):
        assert together[key] == pytest.approx(sum(r[key] for r in alone["per_scenario"].values()))
    assert together["payback_months"] == pytest.approx(
        together["one_time"]["total_usd"] / together["monthly_savings_usd"])
    assert together["monthly_savings_usd"] > alone["monthly_savings_usd"]


def test_a_criterion_where_the_student_changes_nothing_is_listed_not_counted():
    # On the phone the teacher already meets the SLA and both cost $0: the edge and latency
    # criteria hold but are no reason to go; real-time-api's latency criterion is one.
    doc = plan(pd.read_csv(FIXTURE), ["real-time-api", "mobile-on-device"]).to_dict()
    crit = {(c["scenario"], c["name"]): c for c in doc["decision"]["criteria"]}
    edge = crit[("mobile-on-device", "on-device / edge inference needed")]
    assert (edge["value"], edge["verdict"], edge["counted"]) == (True, "met", False)
    assert "not counted: the teacher already meets this scenario" in edge["reason"]
    assert crit[("real-time-api", "latency SLA under 500 ms")]["counted"] is True
    assert doc["decision"]["go"] is True
    assert not any(r.startswith("mobile-on-device") for r in doc["decision"]["reasons"])
    mobile = doc["roi"]["per_scenario"]["mobile-on-device"]
    assert (mobile["changes_outcome"], mobile["decision"]) == (False, "no-go")
    assert doc["roi"]["per_scenario"]["real-time-api"]["decision"] == "go"
    alone = plan(pd.read_csv(FIXTURE), "mobile-on-device").to_dict()["decision"]
    assert alone["go"] is False
    assert alone["reasons"][0].startswith("the seed's criteria hold only where the student "
                                          "changes nothing (mobile-on-device)")


def test_each_scenario_names_the_student_it_would_pick_alone(two_plans):
    """best_fit: among the students that qualify on retention, the one meeting this scenario
    at the lowest cost over the horizon (monthly cost here x 12 + its own one-time cost)."""
    doc = two_plans[False]
    qualified = [c for c in doc["alternatives"] + [doc["recommended"]]
                 if not any(r.startswith("retention") or r.startswith("not smaller")
                            for r in c.get("reasons") or [])]
    assert qualified
    for name in TWO:
        fit = doc["roi"]["per_scenario"][name]["best_fit"]
        costs = {c["model"]: _cheapest(doc, name, c["model"]) * 12
                 + ((c.get("budget") or {}).get("one_time_usd") or 0.0) for c in qualified}
        assert fit["model"] == min(costs, key=costs.get), (name, costs)
        assert fit["horizon_usd"] == pytest.approx(costs[fit["model"]])
        assert fit["usd_per_month"] == _cheapest(doc, name, fit["model"])
        assert fit["retention_qualifies"] is True


def test_a_savings_band_widened_by_a_fleet_at_the_sla_edge_names_its_driver(two_plans):
    """On the fixture the teacher's cheapest real-time-api fleet (inf2, batch 8) needs far more
    replicas at the slow end of its projected band than at P50: the plan says so, with the
    input that drives it, where the headline's savings band is shown."""
    doc = two_plans[False]
    per = doc["roi"]["per_scenario"]["real-time-api"]
    teacher = per["teacher_config"]
    row = next(c for c in doc["cost"] if c["scenario"] == "real-time-api"
               and c["model"] == "builtin:teacher" and c["hardware"] == teacher["hardware"]
               and c["batch_size"] == teacher["batch_size"] and c["backend"] == teacher["backend"])
    assert row["fleet_spread"] > 5
    assert row["usd_per_month_p90"] / row["usd_per_month"] == pytest.approx(
        row["fleet_spread"], rel=1e-9)
    assert per["band_drivers"] == [f"teacher on {teacher['hardware']}: {row['spread_note']}"]
    assert "service-time band" in row["spread_note"]
    calm = [c for c in doc["cost"] if c["feasible"] and c["fleet_spread"] <= 5]
    assert calm and all(c["spread_note"] == "" for c in calm)


def test_a_scenario_no_student_can_meet_does_not_block_the_others():
    """One answer per deployment: real-time-api has its student; a second scenario that no
    model can meet (p99 within 0.01 ms) is answered "the student meets this scenario nowhere"
    on its own row, and does not take the recommendation away. Declared as one portfolio, the
    scenarios must all be met by one student, so there is none."""
    impossible = _scenario(latency_ms=0.01).model_copy(update={"name": "impossible"})
    presets_ = presets()
    df = pd.read_csv(FIXTURE)
    alone = plan(df, [presets_["real-time-api"], impossible]).to_dict()
    assert alone["recommended"]["model"] == plan(df, "real-time-api").to_dict()[
        "recommended"]["model"]
    assert alone["decision"]["go"] is True
    per = alone["roi"]["per_scenario"]
    assert alone["roi"]["scenario"] == "real-time-api"
    assert per["real-time-api"]["student"] == alone["recommended"]["model"]
    assert per["impossible"]["best_fit"] is None
    assert per["impossible"]["note"].endswith("the student meets this scenario nowhere")
    together = plan(df, [presets_["real-time-api"], impossible], portfolio=True).to_dict()
    assert together["recommended"] is None
    assert "impossible: no candidate hardware works" in together["no_recommendation_reason"]
