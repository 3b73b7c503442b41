"""Data-generation cost (issue 9): local hours from the teacher's rates, API tokens x price,
the price catalog's sources, and the cost entering one-time cost, payback and break-even."""

import subprocess
import sys

import pandas as pd
import pytest

from roi.datagen_cost import (
    DataGenInputs,
    generation_cost,
    load_api_prices,
    teacher_generation_rates,
)
from contracts.errors import InputError
from roi.payback import Bands, Roi, RoiInputs, monte_carlo, one_time_cost, tornado


def test_api_cost_is_tokens_times_price_per_million():
    gen = DataGenInputs(teacher="api:gpt-4o-mini", samples=10_000, prompt_tokens=100,
                        completion_tokens=200)
    cost = generation_cost(gen, hardware="a10g", usd_per_hour=1.0)
    # 1e6 input tokens x $0.15/1M + 2e6 output tokens x $0.60/1M
    assert cost.usd == pytest.approx(0.15 + 1.20) and cost.hours is None
    assert "openai.com" in cost.inputs["usd_per_1m_input_tokens"]["source"]
    given = generation_cost(DataGenInputs(teacher="api:anything", samples=1000,
                                          prompt_tokens=1000, completion_tokens=500,
                                          usd_per_1m_input_tokens=2.0,
                                          usd_per_1m_output_tokens=8.0),
                            hardware="a10g", usd_per_hour=1.0)
    assert given.usd == pytest.approx(1e6 * 2.0 / 1e6 + 5e5 * 8.0 / 1e6)
    assert given.inputs["usd_per_1m_output_tokens"]["source"] == "given"


def test_local_cost_is_prefill_plus_decode_hours_at_the_hourly_price():
    gen = DataGenInputs(teacher="local", samples=3600, prompt_tokens=100, completion_tokens=50)
    cost = generation_cost(gen, hardware="a10g", usd_per_hour=2.0, prefill_tokens_per_s=1000.0,
                           decode_tokens_per_s=100.0, rate_source="measured")
    # 360k prompt tokens / 1000/s = 360 s; 180k new tokens / 100/s = 1800 s; 0.6 h x $2
    assert cost.hours == pytest.approx(0.6) and cost.usd == pytest.approx(1.2)
    fixed = generation_cost(DataGenInputs(teacher="local", samples=3600, prompt_tokens=100,
                                          completion_tokens=50, tokens_per_s=50.0),
                            hardware="a10g", usd_per_hour=2.0, prefill_tokens_per_s=1000.0,
                            decode_tokens_per_s=100.0)
    assert fixed.hours == pytest.approx((360 + 3600) / 3600)
    assert fixed.inputs["decode_tokens_per_s"]["source"] == "given"
    none = generation_cost(DataGenInputs(), hardware="a10g", usd_per_hour=2.0)
    assert none.usd == 0.0


def test_rates_come_from_the_service_table_best_batch():
    fwd = pd.DataFrame({"hardware": ["l4", "l4", "a10g"], "model": ["t", "t", "t"],
                        "batch_size": [1, 8, 8], "seq_len": [128, 128, 128],
                        "fwd_ms_p50": [10.0, 40.0, 1.0], "step_ms_p50": [2.0, 4.0, 1.0],
                        "source": ["measured"] * 3, "note": ["", "tpot", ""]})
    prefill, decode, src = teacher_generation_rates(fwd, "t", "l4")
    assert prefill == pytest.approx(8 * 128 / 0.040) and decode == pytest.approx(8 / 0.004)
    assert "measured on l4 (batch 8" in src
    assert teacher_generation_rates(fwd, "other", "l4")[1] is None


def test_one_time_cost_payback_and_break_even_include_generation():
    inputs = RoiInputs(training_hours=10.0, labeling_hours=5.0)
    gen = generation_cost(DataGenInputs(teacher="api:gpt-4o", samples=100_000,
                                        prompt_tokens=400, completion_tokens=400),
                          hardware="a10g", usd_per_hour=2.0)
    assert gen.usd == pytest.approx(4e7 * 2.5 / 1e6 + 4e7 * 10.0 / 1e6)  # $500
    base = one_time_cost(inputs, usd_per_hour=2.0, training_tokens=1e6, student_params=1e6,
                         peak_bf16_flop_s=None, teacher_tokens_per_s=None)
    ot = one_time_cost(inputs, usd_per_hour=2.0, training_tokens=1e6, student_params=1e6,
                       peak_bf16_flop_s=None, teacher_tokens_per_s=None, generation=gen)
    assert ot.total_usd == pytest.approx(base.total_usd + 500.0) == 8530.0
    assert ot.record()["generation_usd"] == pytest.approx(500.0)
    roi, roi0 = Roi(ot, 3000.0, 2000.0, 1e6, 12), Roi(base, 3000.0, 2000.0, 1e6, 12)
    assert roi.payback_months == pytest.approx(8.53) and roi0.payback_months == 8.03
    assert roi.break_even_requests_per_month == pytest.approx(8530.0 / (12 * 1e-3))
    bands = Bands((2500.0, 3000.0, 4000.0), (1500.0, 2000.0, 2200.0))
    rows = {r["input"]: r for r in tornado(roi, bands)}
    assert rows["data generation cost (x0.5 / x3)"]["swing_usd"] == pytest.approx(1250.0)
    assert "data generation cost (x0.5 / x3)" not in {r["input"] for r in tornado(roi0, bands)}
    assert (monte_carlo(roi, bands, 2000)["payback_months"]["p50"]
            > monte_carlo(roi0, bands, 2000)["payback_months"]["p50"])


def test_price_catalog_carries_sources_and_bad_inputs_are_refused(tmp_path):
    prices = load_api_prices()
    assert len(prices) >= 10
    for name, row in prices.items():
        assert row["source"].startswith("https://") and row["as_of"], name
        assert 0 < row["usd_per_1m_input_tokens"] <= row["usd_per_1m_output_tokens"], name
    for kw, field in ((dict(teacher="gpu"), "teacher"), (dict(samples=-1), "samples"),
                      (dict(prompt_tokens=float("nan")), "prompt_tokens"),
                      (dict(tokens_per_s=0.0), "tokens_per_s")):
        with pytest.raises(InputError, match=field):
            DataGenInputs(**kw)
    with pytest.raises(InputError, match="no price"):
        generation_cost(DataGenInputs(teacher="api:no-such-model", samples=1), hardware="x",
                        usd_per_hour=1.0)
    bad = tmp_path / "prices.yaml"
    bad.write_text("models:\n  m: {usd_per_1m_input_tokens: 1, usd_per_1m_output_tokens: 2}\n")
    with pytest.raises(InputError, match="models.m.source"):
        load_api_prices(bad)


def test_datagen_cost_imports_without_torch():
    code = ("import sys, roi.datagen_cost, roi.payback, roi.planner; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
