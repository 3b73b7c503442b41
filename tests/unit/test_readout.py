"""roi.readout: what a report computes from results and metrics (and roi.choices.kd_gain)."""

from roi.choices import kd_gain
from roi.readout import band_verdict, reduction


def test_reduction_needs_a_positive_teacher_figure():
    assert reduction(25, 100) == 0.75
    assert reduction(25, 0) is None
    assert reduction(float("nan"), 100) is None


def test_band_verdict_and_kd_gain():
    assert band_verdict(0.9, [0.8, 0.95]) == "inside the band"
    assert band_verdict(0.7, [0.8, 0.95]) == "below the band"
    assert band_verdict(0.9, None) is None
    budget = {"steps": 110, "grid": [{"steps": 100, "retention_p50": 0.9}],
              "baseline_grid": [{"steps": 100, "retention_p50": 0.85}]}
    gain, at = kd_gain(budget)
    assert round(gain, 6) == 5.0 and at == 100
    assert kd_gain({**budget, "baseline_grid": []}) is None
