"""The LLM serving model against hand-computed values, and the projected decision table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from contracts.errors import InputError
from roi.hardware import load_catalog
from contracts.llm_arch import shipped
from roi.llm_plan import default_students, llm_comparison
from roi.llm_serving import (
    CASES,
    LLMSLA,
    Workload,
    best_point,
    implied_efficiency,
    load_assumptions,
    replica,
    serving_grid,
    sla_for,
)

CAT = load_catalog()
H100 = CAT.get("h100")
A = load_assumptions()
FIXED = A.calibrated(spread=0.0, prefill_compute=0.5, decode_compute=0.5, decode_bandwidth=0.6,
                     allreduce_latency_us=10.0, link_efficiency=0.8)


def test_every_band_has_a_source_and_an_order():
    for name in ("prefill_compute", "decode_compute", "decode_bandwidth", "link_efficiency"):
        band = getattr(A, name)
        assert band.source and 0 < band.pessimistic <= band.optimistic <= 1
    assert A.allreduce_latency_us.pessimistic >= A.allreduce_latency_us.optimistic
    assert A.sla_presets["mlperf"].ttft_ms == 2000 and A.sla_presets["mlperf"].tpot_ms == 100
    assert A.sla_presets["mlperf-interactive"].tpot_ms == 30


def test_decode_step_at_batch_one_reads_the_weights_by_hand():
    s = shipped("llama-3-8b")
    r = replica(s, H100, "bf16", 1, 512, 128, FIXED, batch=[1])
    c_mean = 512 + 64
    read = s.weight_bytes("bf16") + s.kv_bytes_per_token("bf16") * c_mean
    step_ms = read / (3350e9 * 0.6) * 1e3
    assert r.step_ms[1, 0] == pytest.approx(step_ms)
    # the prompt through every layer; the LM head once, for the first token's logits
    prefill_ms = s.prefill_flops(512, logits_tokens=1) / (989e12 * 0.5) * 1e3
    assert s.prefill_flops(512, 1) < s.prefill_flops(512)
    assert r.ttft_ms[1, 0] == pytest.approx(prefill_ms + step_ms)
    assert r.tpot_ms[1, 0] == pytest.approx(step_ms)  # alone: no other prefills interleave
    assert r.e2e_ms[1, 0] == pytest.approx(prefill_ms + step_ms + 127 * step_ms)
    assert r.requests_s[1, 0] == pytest.approx(1e3 / (prefill_ms + 128 * step_ms))


def test_kv_cache_limits_the_batch():
    s = shipped("llama-3-8b")
    r = replica(s, H100, "bf16", 1, 1024, 1024, FIXED)
    free = 80 * 2**30 * A.memory_utilization - s.weight_bytes("bf16")
    assert r.max_batch == int(free // (s.kv_bytes_per_token("bf16") * 2048))
    assert r.batch.max() == r.max_batch


def test_too_big_and_no_fp8_say_why():
    assert "does not fit" in replica(shipped("llama-3-70b"), H100, "bf16", 1, 128, 8, A)
    assert "FP8" in replica(shipped("llama-3-8b"), CAT.get("a100-80gb"), "fp8", 1, 128, 8, A)
    assert "no published" in replica(shipped("llama-3-8b"), CAT.get("m7g.large"), "bf16", 1,
                                     128, 8, A)


def test_tensor_parallel_splits_weights_and_pays_for_communication():
    s = shipped("llama-3-8b")
    one = replica(s, H100, "bf16", 1, 128, 128, FIXED, batch=[1])
    two = replica(s, H100, "bf16", 2, 128, 128, FIXED, batch=[1])
    comm_ms = 2 * 32 * (10e-6 + 2 * 0.5 * 1 * 4096 * 2 / (450e9 * 0.8)) * 1e3
    half = (one.step_ms[1, 0]) / 2  # weights and KV both split in two
    assert two.step_ms[1, 0] == pytest.approx(half + comm_ms, rel=1e-9)


def test_bands_order_the_cases():
    r = replica(shipped("llama-3-8b"), H100, "bf16", 1, 512, 128, A)
    assert np.all(r.step_ms[0] >= r.step_ms[1]) and np.all(r.step_ms[1] >= r.step_ms[2])


def test_best_point_honours_the_sla():
    r = replica(shipped("llama-3-8b"), H100, "bf16", 1, 512, 128, FIXED)
    loose = best_point(r, LLMSLA(tpot_ms=1e9))
    tight = best_point(r, LLMSLA(tpot_ms=20))
    assert tight["batch"][1] < loose["batch"][1]
    assert tight["tpot_ms"][1] <= 20
    none = best_point(r, LLMSLA(ttft_ms=0.001))
    assert not none["meets_sla"].any() and np.isnan(none["batch"]).all()


def test_fleet_cost_is_gpus_times_price():
    w = Workload(512, 128, design_qps=100.0, mean_qps=50.0, arrival="offline")
    g = serving_grid([("m", shipped("llama-3-8b"))], [H100], w, LLMSLA(e2e_ms=5000), ["bf16"],
                     FIXED)
    row = g[(g.tp == 1)].iloc[0]
    assert row["gpus"] == math.ceil(100 / row["requests_s"])
    assert row["usd_per_month"] == pytest.approx(row["gpus"] * 55.04 / 8 * 730)
    tokens = 50 * 640 * 3600 * 730
    assert row["usd_per_1m_tokens"] == pytest.approx(row["usd_per_month"] / tokens * 1e6)


def test_calibration_recovers_the_efficiency():
    s = shipped("llama-3-8b")
    r = replica(s, H100, "bf16", 1, 512, 128, FIXED, batch=[1])
    got = implied_efficiency(s, H100, "bf16", 1, prompt_tokens=512, tpot_ms=r.tpot_ms[1, 0],
                             context=512 + 64)
    assert got["decode_bandwidth"] == pytest.approx(0.6)
    cal = A.calibrated(decode_bandwidth=got["decode_bandwidth"])
    assert cal.decode_bandwidth.pessimistic == pytest.approx(0.54)
    with pytest.raises(InputError, match="unknown band"):
        A.calibrated(mfu=0.5)


def test_sla_from_preset_and_scenario():
    from roi.scenarios import load_scenario

    sla = sla_for(load_scenario("real-time-api"), "mlperf-interactive", A)
    assert (sla.ttft_ms, sla.tpot_ms, sla.e2e_ms) == (500, 30, 100)
    with pytest.raises(InputError, match="allowed: mlperf"):
        sla_for(None, "fast", A)


def test_default_students_follow_the_seed_sizes():
    labels = [lbl for lbl, _ in default_students(shipped("llama-3-70b"))]
    assert labels == ["config:llama-3.2-1b", "config:llama-3.2-3b", "config:llama-3-8b",
                      "config:llama-2-13b"]
    assert [lbl for lbl, _ in default_students(shipped("qwen2.5-72b"))] == [
        "config:qwen2.5-1.5b", "config:qwen2.5-3b", "config:qwen2.5-7b", "config:qwen2.5-14b"]


def test_distill_our_70b_decision_table():
    cmp = llm_comparison("config:llama-3-70b", scenario="cloud-batch",
                         measured_retention={"config:llama-3-8b": 0.97})
    s = cmp.summary.set_index("model")
    assert s.loc["config:llama-3-70b", "role"] == "teacher"
    assert (cmp.grid["source"] == "projected").all()
    assert s["meets_sla"].all()
    students = s[s["role"] == "student"]
    assert (students["cost_reduction"] > 0.5).all()
    assert (students["usd_per_month_pessimistic"] >= students["usd_per_month_optimistic"]).all()
    assert s.loc["config:llama-3.2-3b", "retention_source"].startswith("prior")
    assert s.loc["config:llama-3-8b", "retention_low"] == 0.97
    assert not s.loc["config:llama-2-13b", "same_family"]
    assert any("tokenizer" in n for n in cmp.notes)
    d = cmp.to_dict()
    assert d["source"] == "projected" and len(d["models"]) == 5
    assert all(v is None or not (isinstance(v, float) and math.isnan(v))
               for m in d["models"] for v in m.values())
    assert set(CASES) == {"pessimistic", "mid", "optimistic"}


def test_a_phone_cannot_hold_the_teacher():
    cmp = llm_comparison("config:llama-3-70b", scenario="mobile-on-device")
    teacher = cmp.summary.set_index("model").loc["config:llama-3-70b"]
    assert not teacher["meets_sla"] and "does not fit" in teacher["reason"]
