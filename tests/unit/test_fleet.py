import numpy as np
import pandas as pd
import pytest

from contracts.errors import InputError
from roi.cost import evaluate
from roi.fleet import Assumptions, best_per_hardware, best_per_model, scenario_grid
from roi.hardware import load_catalog
from roi.measurements import merge, prepare
from roi.projection import calibrate, target_rates
from roi.scenarios import Scenario
from roi.service import forward_times, request_service_ms

from .plan_helpers import synthetic_results

CATALOG = load_catalog()


def _scenario(**kw) -> Scenario:
    data = {"name": "t", "deployment": "cloud",
            "workload": {"qps": 100, "tokens_in_per_request": 128,
                         "tokens_out_per_request": 0, "arrival": "poisson"},
            "sla": {"percentile": 99, "latency_ms": 200}, "candidate_hardware": ["l4"]}
    for key, value in kw.items():
        if isinstance(value, dict):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    return Scenario.model_validate(data)


def _fwd(df, names):
    df = prepare(df, CATALOG) if "machine" not in df else df
    fits = calibrate(df)
    return forward_times(df, fits, [CATALOG.get(n) for n in names]), fits


def test_unmeasured_hardware_is_projected_and_says_so():
    fwd, (fit,) = _fwd(synthetic_results(), ["l4", "c7i.xlarge", "iot-1gb"])
    assert set(fwd["source"]) == {"projected"}
    row = fwd[(fwd.hardware == "l4") & (fwd.model == "m:s10") & (fwd.batch_size == 8)].iloc[0]
    # a CPU calibration carried to a GPU: the GPU's launch floor, not the CPU's overhead
    expect = target_rates(fit, CATALOG.get("l4"), cross_kind=True).predict_ms(
        2e6 * 128 * 8, 4e6, 1e6)
    assert row["fwd_ms_p50"] == pytest.approx(float(expect))
    assert float(expect) != pytest.approx(float(target_rates(fit, CATALOG.get("l4")).predict_ms(
        2e6 * 128 * 8, 4e6, 1e6)))
    assert row["fwd_ms_p10"] <= row["fwd_ms_p50"] <= row["fwd_ms_p90"]
    assert "projected from Test CPU" in row["note"]
    iot = fwd[fwd.hardware == "iot-1gb"]
    assert iot["fwd_ms_p50"].isna().all() and iot["note"].str.contains("no compute figure").all()


def test_measured_hardware_uses_its_own_rows_and_other_gpus_its_calibration():
    cpu = prepare(synthetic_results(), CATALOG)
    gpu = prepare(synthetic_results(device="cuda", env_gpu="NVIDIA L4", overhead_ms=0.1,
                                    gflop_s=5000.0), CATALOG)
    fwd, _ = _fwd(merge([cpu, gpu]), ["l4", "a10g"])
    l4 = fwd[fwd.hardware == "l4"]
    assert set(l4["source"]) == {"measured"} and set(l4["measured_on"]) == {"NVIDIA L4"}
    mine = gpu.set_index(["model", "batch_size"])["latency_ms_mean"]
    for _, r in l4.iterrows():
        assert r["fwd_ms_p50"] == pytest.approx(mine[(r["model"], r["batch_size"])])
    a10g = fwd[fwd.hardware == "a10g"]
    assert set(a10g["source"]) == {"projected"}
    assert a10g["note"].str.contains("projected from NVIDIA L4").all()


def test_request_service_time_by_hand():
    fwd = pd.DataFrame({"seq_len": [128], "overhead_ms": [0.5], "fwd_ms_p10": [10.5],
                        "fwd_ms_p50": [10.5], "fwd_ms_p90": [10.5], "step_ms_p10": [1.0],
                        "step_ms_p50": [1.0], "step_ms_p90": [1.0]})
    out = request_service_ms(fwd, tokens_in=64, tokens_out=4)
    # prefill 0.5 + (10.5 - 0.5) * 64/128 = 5.5, then 4 decode steps of 1 ms
    assert out["service_ms_p50"].iloc[0] == pytest.approx(9.5)


def test_an_artifact_without_a_kv_cache_is_costed_as_a_forward_per_token():
    fwd = pd.DataFrame({"seq_len": [128, 128], "overhead_ms": [0.5, 0.5],
                        **{f"fwd_ms_{b}": [10.5, 10.5] for b in ("p10", "p50", "p90")},
                        **{f"step_ms_{b}": [1.0, 10.5] for b in ("p10", "p50", "p90")},
                        "decode_mode": ["kv-cache", "recompute"]})
    out = request_service_ms(fwd, tokens_in=64, tokens_out=4)
    # prefill 5.5 as above; recompute: token i is a forward over 64 + i tokens,
    # 0.5 + 10 * (64 + i) / 128 for i = 1..4: 5.578125 + 5.65625 + 5.734375 + 5.8125 = 22.78125
    assert out["service_ms_p50"].tolist() == pytest.approx([9.5, 5.5 + 22.78125])


def test_decode_mode_follows_the_table_and_old_ort_rows_recompute():
    df = synthetic_results(hardware="c7i.xlarge",
                           runtimes=(("ort", "fp32"), ("torch-eager", "fp32")))
    ort = df["backend"].str.startswith("ort")
    assert ort.any() and (~ort).any()
    fwd, _ = _fwd(df, ["c7i.xlarge", "l4"])  # measured here, projected there
    for _, r in fwd.iterrows():  # no decode_mode and no tpot: ORT files had no cache then
        want = "recompute" if r["backend"].startswith("ort") else "kv-cache"
        assert r["decode_mode"] == want
        if want == "recompute" and r["source"] != "not applicable":
            assert "no KV cache" in r["note"] and r["step_ms_p50"] == r["fwd_ms_p50"]
    shipped = df.assign(decode_mode="kv-cache", tpot_ms=2.0)
    fwd, _ = _fwd(shipped, ["c7i.xlarge"])
    assert (fwd["decode_mode"] == "kv-cache").all() and (fwd["step_ms_p50"] == 2.0).all()
    with pytest.raises(InputError, match="decode_mode: allowed kv-cache, recompute"):
        prepare(df.assign(decode_mode="beam"), CATALOG)


def test_measured_tpot_is_the_decode_step():
    df = synthetic_results(hardware="c7i.xlarge").assign(tpot_ms=3.0)
    fwd, _ = _fwd(df, ["c7i.xlarge"])
    assert (fwd["step_ms_p50"] == 3.0).all() and fwd["note"].str.contains("measured tpot").all()


def test_grid_costs_match_the_sizing_core():
    fwd, _ = _fwd(synthetic_results(), ["l4"])
    g = scenario_grid(_scenario(), fwd, CATALOG)
    assert len(g) == len(fwd)
    r = g.iloc[3]
    direct = evaluate(pd.DataFrame([{
        "service_ms_mean": r["service_ms_p50"], "service_ms_cv": r["service_cv"],
        "batch_size": r["batch_size"], "sla_percentile": 99, "sla_latency_ms": 200,
        "design_qps": 100, "usd_per_hour": 0.8048, "tokens_per_request": 128}])).iloc[0]
    assert r["usd_per_month"] == pytest.approx(direct["usd_per_month"])
    assert r["qps_per_replica_p50"] == pytest.approx(direct["qps_per_replica"])
    assert g["usd_per_month_p10"].le(g["usd_per_month"]).all()
    assert g["usd_per_month"].le(g["usd_per_month_p90"]).all()


def test_sla_and_memory_verdicts():
    fwd, _ = _fwd(synthetic_results(gflop_s=0.05), ["c7i.xlarge"])  # a very slow machine
    g = scenario_grid(_scenario(candidate_hardware=["c7i.xlarge"],
                                sla={"percentile": 99, "latency_ms": 50}), fwd, CATALOG)
    teacher = g[g.model == "m:teacher"].iloc[0]
    assert not teacher["feasible"] and teacher["reason"].startswith("misses the SLA")
    big = synthetic_results(models={"m:teacher": 1_000_000_000, "m:s5": 200_000_000})
    fwd, _ = _fwd(big, ["jetson-orin-nano"])
    g = scenario_grid(_scenario(candidate_hardware=["jetson-orin-nano"], deployment="device",
                                workload={"qps": None, "requests_per_day": 1000,
                                          "arrival": "single-stream"},
                                constraints={"memory_limit_gib": 1}), fwd, CATALOG)
    assert set(g["batch_size"]) == {1}  # one request at a time: no batches
    t = g[g.model == "m:teacher"].iloc[0]
    assert not t["fits_memory"] and t["reason"].startswith("does not fit: needs")
    # a bought device: its unit price spread over 36 months
    assert g["usd_per_hour"].iloc[0] * 730 == pytest.approx(249 / 36)
    assert Assumptions().record()["device_amortization_months"] == 36


def test_multi_model_packing_costs_the_bins():
    fwd, _ = _fwd(synthetic_results(), ["l4"])
    g = scenario_grid(_scenario(workload={"qps": 50, "models": 5}), fwd, CATALOG)
    r = g.iloc[0]
    assert r["usd_per_month"] == pytest.approx(r["replicas_p50"] * 0.8048 * 730)
    # five light models fit one L4 together where unpacked they would take five replicas
    light = g[g["qps_per_replica_p50"] > 50]
    assert (light["replicas_p50"] < light["replicas_unpacked"]).any()


def test_best_configuration_is_the_cheapest_feasible():
    fwd, _ = _fwd(synthetic_results(runtimes=(("ort", "fp32"), ("ort", "int8"))),
                  ["l4", "a10g"])
    g = scenario_grid(_scenario(candidate_hardware=["l4", "a10g"]), fwd, CATALOG)
    best = best_per_hardware(g)
    assert len(best) == 2 * 5
    for _, b in best.iterrows():
        rows = g[(g.hardware == b.hardware) & (g.model == b.model) & g.feasible]
        assert b["usd_per_month"] == pytest.approx(rows["usd_per_month"].min())
    per_model = best_per_model(best)
    assert len(per_model) == 5 and per_model["feasible"].all()
    assert np.all(per_model["hardware"] == "l4")  # $0.80/h beats $1.006/h at equal replicas


def test_service_time_from_raw_samples_or_mean_and_cv():
    from roi.service import service_time

    row = pd.Series({"service_ms_p50": 10.0, "service_cv": 0.5})
    st = service_time(row)
    assert float(st.mean_ms) == pytest.approx(10.0) and float(st.scv) == pytest.approx(0.25)
    raw = service_time(row, raw_ms=np.array([1.0, 2.0, 3.0]))  # rescaled to the request
    assert float(raw.mean_ms) == pytest.approx(10.0)
    np.testing.assert_allclose(np.sort(raw.shift_ms), [5.0, 10.0, 15.0])


@pytest.mark.parametrize("window", [None, 0.5, float("inf")])
def test_batching_rows_are_sized_with_the_scenario_window(window, monkeypatch):
    import roi.fleet

    seen = []
    monkeypatch.setattr(roi.fleet, "evaluate", lambda grid, **kw: seen.append(grid) or
                        evaluate(grid, **kw))
    fwd, _ = _fwd(synthetic_results(), ["l4"])
    workload = {} if window is None else {"batch_window_ms": window}
    g = scenario_grid(_scenario(workload=workload), fwd, CATALOG)
    grid = seen[1]  # the P50 band's
    # default: one batch's median service time, past which a longer window buys nothing
    want = g["service_ms_p50"].to_numpy() if window is None else np.full(len(g), window)
    np.testing.assert_allclose(grid["batch_window_ms"].to_numpy(), want)


def test_a_negative_batch_window_is_refused():
    with pytest.raises(Exception, match="batch_window_ms"):
        _scenario(workload={"batch_window_ms": -1})


def test_a_fleet_whose_p90_is_far_above_its_p50_names_the_input_that_drives_it():
    """Near the SLA bound the slow end of the band leaves a replica almost no queueing room:
    the P90 fleet balloons, and the row says which input does it (its service-time band)."""
    fwd, _ = _fwd(synthetic_results(), ["l4"])
    busy = {"qps": 50_000}
    loose = scenario_grid(_scenario(workload=busy), fwd, CATALOG)
    assert (loose["fleet_spread"] <= 5).all() and (loose["spread_note"] == "").all()
    r = loose[loose.feasible & (loose.batch_size == 1)].sort_values(
        "latency_ms_alone_p90").iloc[-1]
    edge = r["latency_ms_alone_p90"] * 1.2  # the slow end of one request just inside the bound
    tight = scenario_grid(_scenario(workload=busy, sla={"latency_ms": edge}), fwd, CATALOG)
    row = tight[(tight.model == r.model) & (tight.batch_size == 1)].iloc[0]
    assert row["feasible"] and row["fleet_spread"] > 5
    assert row["fleet_spread"] == pytest.approx(row["replicas_p90"] / row["replicas_p50"])
    note = row["spread_note"]
    assert note.startswith(f"P90 fleet {row['fleet_spread']:,.0f}x the P50 fleet")
    assert "service-time band" in note and "projected from Test CPU" in note
    calm = tight[tight.feasible & (tight.fleet_spread <= 5)]
    assert (calm["spread_note"] == "").all()


def test_a_cpu_only_board_is_projected_as_a_cpu_not_as_an_accelerator():
    """A Raspberry Pi names its cores (vcpus): a CPU calibration carries to it with the CPU's
    own overheads and band; a phone's NPU or a Jetson is an accelerator (launch floor, band
    widened x0.5-x2)."""
    fwd, (fit,) = _fwd(synthetic_results(), ["raspberry-pi-4b-1gb", "jetson-orin-nano"])
    pi = fwd[fwd.hardware == "raspberry-pi-4b-1gb"]
    jetson = fwd[fwd.hardware == "jetson-orin-nano"]
    assert len(pi) and len(jetson)
    assert not pi["note"].str.contains("carried to an accelerator").any()
    assert jetson["note"].str.contains("carried to an accelerator").all()
    ratio = (pi["fwd_ms_p90"] / pi["fwd_ms_p50"]).to_numpy()
    assert ratio == pytest.approx(fit.band[1])
    assert (jetson["fwd_ms_p90"] / jetson["fwd_ms_p50"]).to_numpy() == pytest.approx(
        fit.band[1] * 2.0)
