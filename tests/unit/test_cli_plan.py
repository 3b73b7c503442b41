"""`roi plan` through the command-line entry point (app.cli.main, what the `roi` script runs):
a good run writes plan.yaml and plan.json and prints a summary; every bad input is one line on
stderr, exit 2, and nothing written."""

import json

import pytest
import yaml

from app.cli import main

from .plan_helpers import FIXTURE, synthetic_results

GOOD_SCENARIO = """
name: mine
deployment: cloud
workload: {qps: 50, tokens_in_per_request: 128, tokens_out_per_request: 0, arrival: poisson}
sla: {percentile: 99, latency_ms: 200}
candidate_hardware: [l4]
"""


def _run(capsys, *args):
    code = main(["plan", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_plan_is_checked_against_the_contract_once(tmp_path, capsys, monkeypatch):
    import contracts.plan as contract

    checks = []

    class Counted(contract._Holder):  # what parse_plan validates a document with
        def __init__(self, **data):
            checks.append(data["plan"]["version"])
            super().__init__(**data)

    monkeypatch.setattr(contract, "_Holder", Counted)
    out = tmp_path / "plan"
    code, stdout, err = _run(capsys, "--results", FIXTURE, "--scenario", "real-time-api",
                             "--out", out)
    assert code == 0, err
    assert checks == [1]  # written, printed and drawn from the one typed plan
    assert {"plan.json", "plan.yaml", "plan.schema.json", "sizing.csv"} <= \
        {p.name for p in out.iterdir()}


def test_plan_writes_both_files_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "plan"
    code, stdout, err = _run(capsys, "--results", FIXTURE, "--scenario", "real-time-api",
                             "--out", out)
    assert code == 0, err
    doc = yaml.safe_load((out / "plan.yaml").read_text())
    assert doc == json.loads((out / "plan.json").read_text())
    assert doc["trainer"]["teacher"] == "builtin:teacher"
    for needle in ("decision:", "QPS over 1000", "students (ranked", "cheapest configuration",
                   "one-time cost", "leave-one-model-out", str(out / "plan.yaml")):
        assert needle in stdout


def test_several_results_scenarios_and_options(tmp_path, capsys):
    scenario = tmp_path / "mine.yaml"
    scenario.write_text(GOOD_SCENARIO)
    hand = tmp_path / "hand.csv"
    builtin = {"builtin:teacher": 14393088, "builtin:student-5x": 2767872,
               "builtin:student-10x": 1433280, "builtin:student-20x": 700800,
               "builtin:student-50x": 273024}  # the same models, "measured" on an L4 by hand
    synthetic_results(device="cuda", env_gpu="NVIDIA L4", models=builtin).to_csv(hand,
                                                                                index=False)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"retention_accuracy": 0.99}))
    code, _, err = _run(capsys, "--results", FIXTURE, "--results", hand, "--scenario", scenario,
                        "--scenario", "embedded-iot", "--retention-threshold", "0.9",
                        "--metrics", f"builtin:student-50x={metrics}", "--engineering-weeks",
                        "1", "--out", tmp_path / "o")
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "plan.json").read_text())
    assert doc["scenarios"] == ["mine", "embedded-iot"] and doc["retention_threshold"] == 0.9
    assert len(doc["sources"]["machines"]) == 2
    assert doc["sources"]["retention"]["builtin:student-50x"] == "measured"
    assert doc["roi"]["inputs"]["engineering_weeks"] == 1.0


def test_portfolio_option_totals_the_scenarios(tmp_path, capsys):
    code, stdout, err = _run(capsys, "--results", FIXTURE, "--scenario", "real-time-api",
                             "--scenario", "cloud-batch", "--portfolio", "--out", tmp_path)
    assert code == 0, err
    roi = json.loads((tmp_path / "plan.json").read_text())["roi"]
    assert roi["scope"] == "portfolio" and roi["portfolio"] == ["real-time-api", "cloud-batch"]
    assert roi["monthly_savings_usd"] == pytest.approx(
        sum(r["monthly_savings_usd"] for r in roi["per_scenario"].values()))
    assert "ROI per scenario" in stdout
    assert "portfolio total of real-time-api, cloud-batch" in stdout


SCENARIO_BAD = {
    "negative-qps.yaml": (GOOD_SCENARIO.replace("qps: 50", "qps: -5"),
                          "workload.qps: must be greater than 0; got -5"),
    "zero-sla.yaml": (GOOD_SCENARIO.replace("latency_ms: 200", "latency_ms: 0"),
                      "sla.latency_ms: must be greater than 0; got 0"),
    "unknown-hw.yaml": (GOOD_SCENARIO.replace("[l4]", "[l4, tpu-v9]"),
                        "unknown hardware 'tpu-v9'"),
    "malformed.yaml": ("name: [unclosed\n", "not valid YAML"),
    "no-deployment.yaml": (GOOD_SCENARIO.replace("deployment: cloud\n", ""),
                           "deployment: required field is missing; allowed: 'cloud' or "
                           "'device'"),
    "bad-deployment.yaml": (GOOD_SCENARIO.replace("deployment: cloud", "deployment: edge"),
                            "deployment: must be 'cloud' or 'device'; got 'edge'"),
}


@pytest.mark.parametrize("name", sorted(SCENARIO_BAD))
def test_bad_scenarios(tmp_path, capsys, name):
    text, needle = SCENARIO_BAD[name]
    (tmp_path / name).write_text(text)
    _refused(tmp_path, capsys, needle, "--results", FIXTURE, "--scenario", tmp_path / name)


def _table(tmp_path, mutate):
    path = tmp_path / "bad.csv"
    mutate(synthetic_results()).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("case,needle", [
    ("missing-columns", "missing required column(s) params, latency_ms_mean or latency_ms_p50"),
    ("no-ok-rows", "status: no row is ok"),
    ("unknown-hardware-row", "hardware: unknown hardware 'abacus'"),
    ("no-such-file", "does not exist"),
])
def test_bad_results(tmp_path, capsys, case, needle):
    mutate = {"missing-columns": lambda d: d.drop(columns=["params", "latency_ms_mean",
                                                           "latency_ms_p50"]),
              "no-ok-rows": lambda d: d.assign(status="timeout"),
              "unknown-hardware-row": lambda d: d.assign(hardware="abacus")}.get(case)
    path = _table(tmp_path, mutate) if mutate else tmp_path / "none.csv"
    _refused(tmp_path, capsys, needle, "--results", path, "--scenario", "real-time-api")


@pytest.mark.parametrize("args,needle", [
    (["--scenario", "no-such-preset"], "unknown scenario 'no-such-preset'"),
    (["--scenario", "real-time-api", "--retention-threshold", "1.5"],
     "retention threshold must be in (0, 1] (a fraction such as 0.95); got 1.5"),
    (["--scenario", "real-time-api", "--training-hardware", "abacus"],
     "unknown hardware 'abacus'"),
    (["--scenario", "real-time-api", "--hardware", "{malformed}"], "not valid YAML"),
    (["--scenario", "real-time-api", "--metrics", "nonsense"], "expected SPEC=FILE"),
    (["--scenario", "real-time-api", "--engineering-weeks", "-2"],
     "engineering_weeks must be a finite number >= 0; got -2.0"),
    (["--retention-threshold", "0.9"], "Missing option '--scenario'"),
])
def test_bad_options(tmp_path, capsys, args, needle):
    malformed = tmp_path / "hw.yaml"
    malformed.write_text("hardware: [{name: x\n")
    args = [str(a).replace("{malformed}", str(malformed)) for a in args]
    _refused(tmp_path, capsys, needle, "--results", FIXTURE, *args)


def _refused(tmp_path, capsys, needle, *args):
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, *args, "--out", out)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    assert "Traceback" not in err + stdout
    assert not out.exists()
