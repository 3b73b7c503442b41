import pytest

from contracts.errors import InputError
from roi.payback import Bands, Roi, RoiInputs, monte_carlo, one_time_cost, tornado


def _one_time(**kw):
    inputs = RoiInputs(**{"training_hours": 10.0, "labeling_hours": 5.0, **kw})
    return one_time_cost(inputs, usd_per_hour=2.0, training_tokens=1e6, student_params=1e6,
                         peak_bf16_flop_s=None, teacher_tokens_per_s=None)


def test_one_time_cost_by_hand():
    ot = _one_time()
    # labeling 5 h x $2 + training 10 h x $2 + 2 weeks x $4000
    assert (ot.labeling_usd, ot.training_usd, ot.engineering_usd) == (10.0, 20.0, 8000.0)
    assert ot.total_usd == 8030.0
    assert ot.inputs["training_hours"] == {"value": 10.0, "source": "given"}
    assert ot.inputs["engineering_weeks"]["value"] == 2.0


def test_estimated_hours_from_flops_and_teacher_speed():
    inputs = RoiInputs()
    ot = one_time_cost(inputs, usd_per_hour=1.0, training_tokens=3.6e9, student_params=1e6,
                       peak_bf16_flop_s=1e14, teacher_tokens_per_s=1e6)
    # labeling: 3.6e9 tokens / 1e6 tokens/s = 1 h; training: 6·1e6·3.6e9 / (0.3·1e14) s
    assert ot.inputs["labeling_hours"]["value"] == pytest.approx(1.0)
    assert ot.inputs["training_hours"]["value"] == pytest.approx(6 * 1e6 * 3.6e9 / 3e13 / 3600)
    unknown = one_time_cost(inputs, usd_per_hour=1.0, training_tokens=1e6, student_params=1,
                            peak_bf16_flop_s=None, teacher_tokens_per_s=None)
    assert unknown.labeling_usd == 0 and "unknown" in unknown.inputs["labeling_hours"]["source"]


def test_payback_arithmetic():
    roi = Roi(_one_time(engineering_weeks=2, engineering_usd_per_week=3985.0), 3000.0, 2000.0,
              1_000_000.0, 12)
    assert roi.one_time.total_usd == 8000.0
    assert roi.monthly_savings_usd == 1000.0
    assert roi.payback_months == 8.0
    assert roi.net_usd == 12 * 1000 - 8000
    # $1000 saved on 1M requests: $0.001 a request; 8000 / (12 x 0.001) a month breaks even
    assert roi.break_even_requests_per_month == pytest.approx(8000 / 0.012)
    assert roi.record()["net_12_months_usd"] == 4000.0


def test_no_savings_never_pays_back():
    roi = Roi(_one_time(), 1000.0, 1000.0, 1e6, 12)
    assert roi.payback_months is None and roi.break_even_requests_per_month is None
    assert roi.net_usd == -roi.one_time.total_usd


def test_tornado_is_sorted_by_swing_and_hand_checkable():
    roi = Roi(_one_time(), 3000.0, 2000.0, 1e6, 12)
    rows = tornado(roi, Bands((2500.0, 3000.0, 4000.0), (1500.0, 2000.0, 2200.0)))
    swings = [r["swing_usd"] for r in rows]
    assert swings == sorted(swings, reverse=True)
    by = {r["input"]: r for r in rows}
    teacher = by["teacher monthly cost (projection band)"]
    assert teacher["net_at_high_usd"] - teacher["net_at_low_usd"] == pytest.approx(12 * 1500)
    weeks = by["engineering weeks"]
    assert (weeks["low_value"], weeks["high_value"]) == (1.0, 4.0)
    assert weeks["swing_usd"] == pytest.approx(8000 / 2 * 3)
    assert by["request volume (x0.5 / x2)"]["net_at_high_usd"] == pytest.approx(
        12 * 2000 - 8030)


def test_monte_carlo_is_seeded_and_ordered():
    roi = Roi(_one_time(), 3000.0, 2000.0, 1e6, 12)
    bands = Bands((2500.0, 3000.0, 4000.0), (1500.0, 2000.0, 2200.0))
    a, b = monte_carlo(roi, bands, 5000, seed=3), monte_carlo(roi, bands, 5000, seed=3)
    assert a == b
    s = a["monthly_savings_usd"]
    # the teacher's band leans up more than the student's, so the common draw skews savings up
    assert s["p10"] < s["p50"] < s["p90"] and s["p50"] == pytest.approx(1100, rel=0.1)
    p = a["payback_months"]
    assert p["p10"] < p["p50"] < p["p90"]
    assert 0.5 < a["probability_savings_positive"] <= 1
    never = monte_carlo(Roi(_one_time(), 1000.0, 1000.0, 1e6, 12),
                        Bands((1000.0,) * 3, (1000.0,) * 3), 1000)
    assert never["payback_months"]["p50"] is None


@pytest.mark.parametrize("kw,needle", [({"engineering_weeks": -1}, "engineering_weeks"),
                                       ({"training_mfu": 0}, "training_mfu"),
                                       ({"training_hours": float("nan")}, "training_hours"),
                                       ({"horizon_months": 0}, "horizon_months")])
def test_bad_inputs(kw, needle):
    with pytest.raises(InputError, match=needle):
        RoiInputs(**kw)


def test_monthly_costs_move_together_and_savings_band_by_hand():
    """Teacher $3,000 (P10 $2,400, P90 $3,750) and student $1,000 (P10 $800, P90 $1,250): the
    same ±25%/-20% log band. One calibration draw moves both, so savings = $2,000 x the same
    factor: P10 $1,600, P50 $2,000, P90 $2,500. Drawn independently, P10-P90 would be wider
    (about $1,360-$2,690)."""
    import numpy as np

    from roi.payback import monthly_costs

    bands = Bands((2400.0, 3000.0, 3750.0), (800.0, 1000.0, 1250.0))
    z = np.random.default_rng(1).standard_normal(200_000)
    teacher, student = monthly_costs(bands, z)
    assert np.allclose(teacher / student, 3.0)
    p10, p50, p90 = np.quantile(teacher - student, (0.1, 0.5, 0.9))
    assert p10 == pytest.approx(1600, rel=0.01)
    assert p50 == pytest.approx(2000, rel=0.01)
    assert p90 == pytest.approx(2500, rel=0.01)
    t2, _ = monthly_costs(bands, z)
    _, s2 = monthly_costs(bands, np.random.default_rng(2).standard_normal(200_000))
    lo, hi = np.quantile(t2 - s2, (0.1, 0.9))
    assert lo < 1500 and hi > 2600  # independence would widen it


def test_monte_carlo_savings_band_is_the_correlated_one():
    """Everything but the monthly costs and volume fixed: savings P10/P90 follow the common
    factor of the two bands times the volume draw (sigma 0.25)."""
    import math

    roi = Roi(_one_time(engineering_weeks=0.0), 3000.0, 1000.0, 1e6, 12)
    mc = monte_carlo(roi, Bands((2400.0, 3000.0, 3750.0), (800.0, 1000.0, 1250.0)), 50_000)
    s = mc["monthly_savings_usd"]
    # log savings ~ split normal (sd log(1.25)/Z90 above, log(1.25)/Z90 below) + N(0, 0.25)
    sd = math.hypot(math.log(1.25) / 1.2815515655446004, 0.25)
    assert s["p50"] == pytest.approx(2000, rel=0.02)
    assert s["p90"] == pytest.approx(2000 * math.exp(1.2815515655446004 * sd), rel=0.03)
    assert s["p10"] == pytest.approx(2000 * math.exp(-1.2815515655446004 * sd), rel=0.03)
