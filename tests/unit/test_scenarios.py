import subprocess
import sys

import pytest
import yaml

from app.cli import main
from contracts.errors import InputError
from roi.hardware import load_catalog, shipped_catalog
from roi.scenarios import load_scenario, load_scenarios, presets

# The seed's ROI matrix, copied from seed/knowledge-distillation-why-compress-models-today.txt
SEED_MATRIX = {
    "cloud-batch": ("Cloud inference (batch)", "50-70%", "30-50%", "10-30% less",
                    "7B-13B distilled"),
    "real-time-api": ("Real-time API (sub-100ms SLA)", "70-80%", "60-80%", "40-60% less",
                      "3B-7B distilled"),
    "mobile-on-device": ("Mobile on-device", "85-90%", "80-95%", "Offline", "1B-3B distilled"),
    "embedded-iot": ("Embedded/IoT (1GB RAM limit)", "90-95%", "90-98%", "Offline",
                     "500M-1B distilled"),
    "multi-model": ("Multi-model serving (5+ models)", "60-75%", "40-60%", "20-40% less",
                    "Mix of 3B-13B"),
}


def test_five_presets_in_the_seeds_order_keep_its_ranges_verbatim():
    shipped = presets()
    assert list(shipped) == list(SEED_MATRIX)
    for name, row in SEED_MATRIX.items():
        seed = shipped[name].seed
        assert (seed.scenario, seed.inference_cost_reduction, seed.latency_improvement,
                seed.data_transfer, seed.best_fit_model_size) == row


def test_seed_ranges_parse_to_numbers():
    shipped = presets()
    batch, iot, multi = (shipped[n].seed for n in ("cloud-batch", "embedded-iot", "multi-model"))
    assert batch.cost_reduction == (0.5, 0.7) and batch.latency_reduction == (0.3, 0.5)
    assert batch.data_transfer_reduction == (0.1, 0.3) and iot.data_transfer_reduction is None
    assert iot.best_fit_params == (5e8, 1e9) and multi.best_fit_params == (3e9, 13e9)


def test_presets_match_the_seed_and_use_catalog_hardware():
    shipped, catalog = presets(), shipped_catalog()
    for s in shipped.values():
        s.check_hardware(catalog)
        assert s.basis and s.candidate_hardware
    rt, iot, mobile, multi = (shipped[n] for n in ("real-time-api", "embedded-iot",
                                                   "mobile-on-device", "multi-model"))
    assert (rt.sla.percentile, rt.sla.latency_ms, rt.workload.arrival) == (99, 100, "poisson")
    assert iot.constraints.memory_limit_gib == 1 and iot.constraints.offline
    assert mobile.constraints.offline and mobile.workload.arrival == "single-stream"
    assert multi.workload.models >= 5
    assert {n: s.deployment for n, s in shipped.items()} == {
        "cloud-batch": "cloud", "real-time-api": "cloud", "mobile-on-device": "device",
        "embedded-iot": "device", "multi-model": "cloud"}
    assert all(catalog.get(h).kind == "device" for h in mobile.candidate_hardware)


def test_workload_rates_derive_from_each_other():
    rt = presets()["real-time-api"].workload  # qps 2000 at peak, peak/mean 2
    assert (rt.design_qps, rt.mean_qps, rt.daily_requests) == (2000, 1000, 86_400_000)
    batch = presets()["cloud-batch"].workload  # 10M/day, flat
    assert batch.mean_qps == pytest.approx(115.7407, rel=1e-6) == batch.design_qps
    assert batch.tokens_per_request == 640


SCENARIO = {
    "name": "my-api",
    "deployment": "cloud",
    "workload": {"qps": 50, "tokens_in_per_request": 64, "tokens_out_per_request": 4,
                 "arrival": "poisson"},
    "sla": {"percentile": 95, "latency_ms": 250},
    "candidate_hardware": ["l4", "a10g"],
}


def _write(tmp_path, data, name="s.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_load_by_preset_name_or_user_file(tmp_path):
    assert load_scenario("embedded-iot").name == "embedded-iot"
    s = load_scenario(_write(tmp_path, SCENARIO))
    assert s.name == "my-api" and s.seed is None and s.constraints.offline is False
    many = _write(tmp_path, {"scenarios": [SCENARIO, {**SCENARIO, "name": "other"}]}, "m.yaml")
    assert [x.name for x in load_scenarios(many)] == ["my-api", "other"]
    with pytest.raises(InputError, match="holds 2 scenarios"):
        load_scenario(many)


def test_user_hardware_makes_a_user_candidate_valid(tmp_path):
    hw = _write(tmp_path, "hardware:\n  - {name: my-gpu, kind: cloud, source: quote, "
                "source_date: 2026-11, instance_usd_per_hour: 2.5}\n", "hw.yaml")
    path = _write(tmp_path, {**SCENARIO, "candidate_hardware": ["my-gpu"]})
    with pytest.raises(InputError, match="unknown hardware 'my-gpu'"):
        load_scenario(path)
    assert load_scenario(path, load_catalog(hw)).candidate_hardware == ["my-gpu"]


def _with(path: str, value):
    data = yaml.safe_load(yaml.safe_dump(SCENARIO))
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return data


@pytest.mark.parametrize("data,needles", [
    (_with("workload.qps", -5), ["workload.qps", "greater than 0", "got -5"]),
    (_with("sla.latency_ms", 0), ["sla.latency_ms", "greater than 0", "got 0"]),
    (_with("sla.percentile", 100), ["sla.percentile", "less than 100", "got 100"]),
    (_with("workload.arrival", "bursty"), ["workload.arrival", "'poisson', 'offline' or "
                                           "'single-stream'", "got 'bursty'"]),
    (_with("workload.qps", None), ["give requests_per_day or qps"]),
    (_with("workload.qps", 1e300), ["workload.qps", "less than or equal to 100000000"]),
    (_with("workload.tokens_out_per_request", 10**9), ["tokens_out_per_request",
                                                       "less than or equal to 10000000"]),
    (_with("deployment", None), ["scenario ('my-api'): deployment: required field is missing;"
                                 " allowed: 'cloud' or 'device'"]),
    (_with("deployment", "edge"), ["deployment: must be 'cloud' or 'device'", "got 'edge'"]),
    (_with("workload.requests_per_day", 86_400_000), ["qps 50 is below the mean rate"]),
    (_with("workload.tokens_in_per_request", 0), ["tokens_in_per_request", "got 0"]),
    (_with("constraints", {"memory_limit_gib": -1}), ["constraints.memory_limit_gib"]),
    (_with("candidate_hardware", ["l4", "tpu-v5"]), ["candidate_hardware[1]",
                                                     "unknown hardware 'tpu-v5'", "known: h100"]),
    (_with("candidate_hardware", []), ["candidate_hardware", "at least 1"]),
    (_with("candidate_hardware", ["l4", "l4"]), ["lists l4 more than once"]),
    (_with("sla.p", 99), ["sla.p: unknown field", "allowed fields: percentile, latency_ms"]),
    (_with("seed", {"scenario": "x", "inference_cost_reduction": "a lot",
                    "latency_improvement": "1-2%", "data_transfer": "Offline",
                    "best_fit_model_size": "1B-3B"}),
     ["seed.inference_cost_reduction", "percent range", "got 'a lot'"]),
    ("name: [unclosed\n", ["not valid YAML (line"]),
    ("- a list\n", ["must hold a scenario", "got list"]),
])
def test_bad_scenario_file_is_one_input_error(tmp_path, data, needles):
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as e:
        load_scenario(path)
    message = str(e.value)
    assert str(path) in message and "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_unknown_preset_or_missing_file(tmp_path):
    with pytest.raises(InputError, match="not a preset .*cloud-batch"):
        load_scenario("cloud-bath")
    with pytest.raises(InputError, match="does not exist"):
        load_scenario(tmp_path / "nope.yaml")


def test_cli_scenarios_lists_presets_and_user_files(tmp_path, capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name, row in SEED_MATRIX.items():
        assert name in out and row[1] in out and row[4] in out
    assert "p99 ≤ 100 ms" in out and "memory ≤ 1 GiB" in out
    assert main(["scenarios", "--scenario", str(_write(tmp_path, SCENARIO)),
                 "--scenario", "real-time-api"]) == 0
    out = capsys.readouterr().out
    assert "my-api" in out and "real-time-api" in out and "cloud-batch" not in out


def test_cli_bad_scenario_is_one_line_exit_2(tmp_path):
    path = _write(tmp_path, _with("workload.qps", -1))
    proc = subprocess.run([sys.executable, "-m", "app.cli", "scenarios", "--scenario",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "workload.qps" in lines[0]
