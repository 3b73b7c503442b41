"""roi.readout: what a report shows that is computed from the plan, not read from it."""

import math

from roi.readout import band_verdict, best_cost, kd_gain, range_verdict, reduction


def test_range_verdict_reads_the_seed_range_and_says_where_a_figure_lies():
    assert range_verdict(0.3, "20-40%") == "inside"
    assert range_verdict(0.1, " 20 - 40 % cheaper") == "below"
    assert range_verdict(0.5, "20.5-40%") == "above"
    assert range_verdict(None, "20-40%") is None
    assert range_verdict(0.3, "substantial") is None


def test_reduction_needs_a_positive_teacher_figure():
    assert reduction(25, 100) == 0.75
    assert reduction(25, 0) is None
    assert reduction(float("nan"), 100) is None


def test_best_cost_picks_the_cheapest_feasible_row_and_explains_a_miss():
    plan = {"scenarios": ["b", "a"], "cost": [
        {"scenario": "a", "model": "t", "role": "teacher", "usd_per_month": 50.0,
         "feasible": True, "reason": ""},
        {"scenario": "a", "model": "t", "role": "teacher", "usd_per_month": 20.0,
         "feasible": True, "reason": ""},
        {"scenario": "b", "model": "t", "role": "teacher", "usd_per_month": 1.0,
         "feasible": False, "reason": "too slow"},
        {"scenario": "b", "model": "t", "role": "teacher", "usd_per_month": 2.0,
         "feasible": False, "reason": "too big"}]}
    best = best_cost(plan)
    assert list(best["scenario"]) == ["b", "a"]  # the plan's scenario order
    assert math.isnan(best["usd_per_month"][0]) and best["reason"][0] == "too slow; too big"
    assert best["usd_per_month"][1] == 20.0


def test_band_verdict_and_kd_gain():
    assert band_verdict(0.9, [0.8, 0.95]) == "inside the band"
    assert band_verdict(0.7, [0.8, 0.95]) == "below the band"
    assert band_verdict(0.9, None) is None
    budget = {"steps": 110, "grid": [{"steps": 100, "retention_p50": 0.9}],
              "baseline_grid": [{"steps": 100, "retention_p50": 0.85}]}
    gain, at = kd_gain(budget)
    assert round(gain, 6) == 5.0 and at == 100
    assert kd_gain({**budget, "baseline_grid": []}) is None
