"""The training budget as a decision: the fewest steps whose forecast P10 reaches the
threshold, its one-time cost, and what a plan with pilot curves carries."""

import numpy as np
import pytest

from contracts.curves import to_frame
from contracts.errors import InputError
from roi.budget import choose, nice_steps
from roi.forecast import build
from roi.payback import OneTimeCost
from roi.planner import plan
from roi.retention import prior_band

from .plan_helpers import FIXTURE

BATCH = 4096.0
STEPS = [24, 34, 48, 68, 96]


def _rows(model, mode="kd", e=0.9, a=1.5, alpha=0.5, teacher="builtin:teacher"):
    tokens = np.asarray(STEPS, float) * BATCH
    loss = e + a * (tokens / 1e5) ** -alpha
    acc = 1 / (1 + np.exp(-(2.2 - 1.05 * loss)))
    return [dict(model=model, mode=mode, phase="final", step=s, tokens=t, loss=float(l),
                 accuracy=float(c), batch_tokens=BATCH, params=1000, teacher=teacher,
                 teacher_hash="t", data_fingerprint="d", teacher_loss=1.0,
                 teacher_accuracy=float(1 / (1 + np.exp(-(2.2 - 1.05)))), recipe="r",
                 settings='{"init": "teacher-pruned", "lr": 0.003, "teacher": "x"}',
                 source="pilot") for s, t, l, c in zip(STEPS, tokens, loss, acc)]


def _cost(params, tokens):
    return OneTimeCost(labeling_usd=tokens * 1e-6, training_usd=tokens * 2e-6,
                       engineering_usd=100.0, inputs={"tokens": tokens})


def test_nice_steps_round_up_to_two_figures():
    assert nice_steps(1537 * BATCH, BATCH) == 1600
    assert nice_steps(96 * BATCH, BATCH) == 96
    assert nice_steps(12_345 * BATCH, BATCH) == 13_000


def test_the_fewest_steps_whose_p10_reaches_the_threshold():
    c = build(to_frame(_rows("builtin:s")), kappa_floor={}).get("builtin:s")
    target = float(c.retention(2000 * BATCH)[0])  # P10 at 2,000 steps
    got = choose(c, prior_band(10), 1000, target, max_steps=50_000, default_steps=1500,
                 batch_tokens=BATCH, cost=_cost)
    assert got.source == "forecast" and got.reaches and got.band.source == "forecast"
    assert 1900 <= got.steps <= 2100 and got.band.low >= target - 1e-9
    assert got.band.steps == got.steps and got.band.low <= got.band.mid <= got.band.high
    assert got.one_time.training_usd == pytest.approx(got.steps * BATCH * 2e-6)
    assert got.grid[0]["steps"] == 24 and got.grid[-1]["steps"] == 50_000


def test_a_threshold_out_of_reach_says_so_with_the_forecast_there():
    c = build(to_frame(_rows("builtin:s"))).get("builtin:s")
    got = choose(c, prior_band(10), 1000, 0.999, max_steps=1536, default_steps=1500,
                 batch_tokens=BATCH, cost=_cost)
    assert not got.reaches and got.steps == 1536
    assert "does not reach 99.9%" in got.note and "1,536 steps: P10" in got.note


def test_without_a_forecast_the_prior_at_the_default_budget():
    got = choose(None, prior_band(10), 1000, 0.95, max_steps=1536, default_steps=1500,
                 batch_tokens=BATCH, cost=_cost, why_no_forecast="too short")
    assert got.source == "prior" and got.steps == 1500 and got.band.source == "prior"
    assert "too short" in got.note


def test_a_plan_with_pilots_carries_the_budget_and_the_forecast(monkeypatch):
    import roi.forecast

    monkeypatch.setattr(roi.forecast, "ODDS_KAPPA_FLOOR", {})  # the pilots' own band: P10 reaches
    curves = to_frame(_rows("builtin:student-5x", e=0.95) + _rows("builtin:student-10x", e=1.0)
                      + _rows("builtin:student-10x", "ce", e=1.1))
    doc = plan(FIXTURE, "real-time-api", pilot=curves, max_steps=20_000,
               retention_threshold=0.9).to_dict()
    rec = doc["recommended"]
    assert rec["retention_source"] == "forecast" and rec["budget"]["reaches_threshold"]
    assert doc["trainer"]["steps"] == rec["budget"]["steps"] == rec["retention_steps"]
    assert doc["trainer"]["init"] == "teacher-pruned" and doc["trainer"]["teacher"] != "x"
    assert doc["roi"]["one_time"]["inputs"]["training_tokens"]["value"] == pytest.approx(
        rec["budget"]["steps"] * BATCH)
    f = doc["forecast"]
    assert f["source"] == "pilot curves" and f["max_steps"] == 20_000
    assert {(c["model"], c["mode"]) for c in f["curves"]} == {
        ("builtin:student-5x", "kd"), ("builtin:student-10x", "kd"),
        ("builtin:student-10x", "ce")}


def test_pilots_of_another_teacher_are_refused():
    curves = to_frame(_rows("builtin:student-5x", teacher="hf:other"))
    with pytest.raises(InputError, match="teacher hf:other"):
        plan(FIXTURE, "real-time-api", pilot=curves)


def test_a_p50_that_reaches_the_threshold_without_its_p10_is_unconfirmed(monkeypatch):
    import roi.forecast

    monkeypatch.setitem(roi.forecast.ODDS_KAPPA_FLOOR, "kd", 0.6)  # a wide band: P10 never gets there
    curves = to_frame(_rows("builtin:student-5x", e=0.95) + _rows("builtin:student-10x", e=1.0))
    doc = plan(FIXTURE, "real-time-api", pilot=curves, max_steps=20_000,
               retention_threshold=0.9).to_dict()
    d = doc["decision"]
    assert not d["go"] and doc["recommended"] is None
    u = d["retention_unconfirmed"]
    assert u["model"] in ("builtin:student-5x", "builtin:student-10x") and u["steps_p50"] > 96
    assert d["reasons"][1].startswith("retention not confirmed: ")
    assert doc["trainer"]["student"] == u["model"] and doc["trainer"]["steps"] == u["steps_p50"]
    assert "raised to the floor 0.600" in doc["forecast"]["calibration"]["kd"]["source"]
