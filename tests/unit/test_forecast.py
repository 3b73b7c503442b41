"""The retention forecast: the laws' fits (odds law for retention, loss law beside it), the
accuracy map, the calibrated band, steps to a threshold, and curves it cannot fit (said why,
never a traceback)."""

import math
from dataclasses import replace

import numpy as np
import pytest

from contracts.curves import to_frame
from contracts.errors import InputError
from roi.curvefit import backtest_errors, fit_odds, logit, loss_error, odds_error, regime
from roi.forecast import (
    CannotFit,
    Calibration,
    build,
    fit_accuracy_map,
    fit_law,
    loss_calibration,
    odds_calibration,
)

STEPS = np.array([24, 34, 48, 68, 96])
BATCH = 4096.0


def _law(tokens, e=1.2, a=2.0, alpha=0.5, d_ref=1e5):
    return e + a * (np.asarray(tokens, float) / d_ref) ** -alpha


def _acc(loss):  # logit(acc) = 2.2 - 1.05 loss, as the shipped teacher's curves roughly are
    return 1 / (1 + np.exp(-(2.2 - 1.05 * np.asarray(loss, float))))


def _rows(model="builtin:s", mode="kd", steps=STEPS, law=_law, **kw):
    tokens = np.asarray(steps, float) * BATCH
    loss = law(tokens)
    base = dict(model=model, mode=mode, phase="final", batch_tokens=BATCH, params=1000,
                teacher="builtin:teacher", teacher_params=10000, teacher_hash="t",
                data_fingerprint="d", teacher_loss=1.0, teacher_accuracy=float(_acc(1.0)),
                recipe="r", source="pilot")
    base.update(kw)
    return [dict(base, step=int(s), tokens=t, loss=float(l), accuracy=float(_acc(l)))
            for s, t, l in zip(steps, tokens, loss)]


def test_fit_law_recovers_a_known_law():
    tokens = STEPS * BATCH
    law = fit_law(tokens, _law(tokens))
    assert law(1e7) == pytest.approx(_law(1e7), rel=0.01)
    assert law.alpha == pytest.approx(0.5, abs=0.03)


def test_a_flat_curve_cannot_be_fitted():
    with pytest.raises(CannotFit, match="flat"):
        fit_law(STEPS * BATCH, np.full(5, 2.0))


def test_accuracy_map_is_the_logit_line():
    loss = np.linspace(1.0, 3.0, 8)
    m = fit_accuracy_map(loss, _acc(loss))
    assert (m.c0, m.c1) == (pytest.approx(2.2), pytest.approx(-1.05))
    assert m.sigma < 1e-9
    with pytest.raises(CannotFit, match="rise"):
        fit_accuracy_map(loss, _acc(loss)[::-1])


def _odds_rows(model="builtin:s", steps=STEPS, c=1.0, beta=0.8, transient=None):
    """Rows whose retention follows logit(r) = c + beta·ln(steps / 48) exactly (times the
    optional `transient` factor on the logit of the early budgets)."""
    t_acc = float(_acc(1.0))
    x = c + beta * np.log(np.asarray(steps, float) / 48)
    if transient is not None:
        x = x - transient(np.asarray(steps, float))
    ret = 1 / (1 + np.exp(-x))
    rows = _rows(model, steps=steps)
    return [dict(r, accuracy=float(q * t_acc)) for r, q in zip(rows, ret)]


def test_a_perfect_law_backtests_to_no_error_and_the_floors_hold():
    points = to_frame(_rows())
    tokens, loss = points["tokens"].to_numpy(float), points["loss"].to_numpy(float)
    errs = backtest_errors(tokens, loss, fit_law, loss_error)
    assert len(errs) == 3 + 2 + 1 - 3  # fits on 3 and 4 points predict the later ones
    assert max(abs(e) for _, e in errs) < 1e-3
    cal = loss_calibration({("s", "kd"): points})
    assert cal.kappa >= 0 and cal.noise >= 0.002 and cal.units == "log loss"
    line = to_frame(_odds_rows())
    ret = line["accuracy"].to_numpy(float) / float(_acc(1.0))
    assert max(abs(e) for _, e in backtest_errors(tokens, ret, fit_odds, odds_error)) < 1e-6
    cal = odds_calibration({("s", "kd"): line}, float(_acc(1.0)))
    assert cal.kappa < 1e-6 and cal.noise >= 0.02 and cal.units == "logit retention"


def test_the_odds_law_recovers_its_line_from_the_regime_points():
    tokens = STEPS * BATCH
    assert list(regime(tokens)) == [2, 3, 4]  # 48, 68, 96: the upper half of log 24..96
    assert list(regime(np.array([50, 71, 100, 141, 200, 283, 400]) * BATCH)) == [4, 5, 6]
    c = build(to_frame(_odds_rows(beta=0.8))).get("builtin:s")
    assert c.retention_law == "odds" and c.odds.beta == pytest.approx(0.8)
    want = 1 / (1 + np.exp(-(1.0 + 0.8 * np.log(1600 / 48))))
    assert c.retention(1600 * BATCH)[1] == pytest.approx(want, rel=1e-6)


def test_an_early_transient_does_not_bend_the_forecast():
    """A student cut out of its teacher recovers slowly first (the project's long runs); the
    forecast follows the curve's later budgets, not its start."""
    slow = _odds_rows(steps=[12, 17, 24, 34, 48, 68, 96],
                      transient=lambda s: 0.8 * np.exp(-s / 10))
    c = build(to_frame(slow)).get("builtin:s")
    want = 1 / (1 + np.exp(-(1.0 + 0.8 * np.log(1600 / 48))))
    assert c.retention(1600 * BATCH)[1] == pytest.approx(want, abs=0.01)
    law = fit_law(to_frame(slow)["tokens"], to_frame(slow)["loss"])
    assert law.alpha > 0  # the loss law still fits beside it


def test_band_widens_with_the_extrapolation_distance():
    cal = Calibration(kappa=0.05, noise=0.01, backtests=4, source="test")
    assert cal.sigma(0.5) == pytest.approx(0.01)
    assert cal.sigma(1.0) == pytest.approx(0.01)
    assert cal.sigma(16.0) == pytest.approx(math.hypot(0.01, 0.05 * math.log(16)))
    base = build(to_frame(_rows())).get("builtin:s")
    for c in (replace(base, odds_calibration=cal), replace(base, odds=None, calibration=cal)):
        for steps in (48, 200, 1600):
            lo, mid, hi = c.retention(steps * BATCH)
            assert lo <= mid <= hi
        width = [float(np.subtract(*logit(c.retention(s * BATCH)[::-2])))
                 for s in (200, 800, 3200)]  # in odds: near 100% a band narrows in points
        assert width[0] < width[1] < width[2]


def test_tokens_to_a_threshold_and_one_out_of_reach():
    c = build(to_frame(_odds_rows()), odds_floor={}).get("builtin:s")
    assert c.asymptote() is None  # the odds law sees no ceiling below the teacher
    t = c.tokens_to(0.95, quantile=50)
    assert t is not None and c.retention(t)[1] >= 0.95 - 1e-9
    assert c.tokens_to(0.95, quantile=10) >= t  # the pessimistic end needs more
    assert c.tokens_to(0.95, quantile=50, max_tokens=t / 2) is None


def test_a_student_at_its_teacher_falls_back_to_the_loss_law():
    """A teacher worse than the pilots (loss 3.5): every pilot is above it, the odds law
    cannot be fitted, the loss law and the accuracy map stand in."""
    at = _rows(teacher_loss=3.5, teacher_accuracy=float(_acc(3.5)))
    c = build(to_frame(at), kappa_floor={}).get("builtin:s")
    assert c.retention_law == "loss" and "at the teacher" in c.odds_failed
    reach = c.asymptote()  # acc(E) / teacher acc, E = 1.2 against the teacher's 3.5
    assert reach == pytest.approx(float(_acc(1.2) / _acc(3.5)), rel=0.02)
    assert c.tokens_to(reach + 0.01, quantile=50) is None


def test_curves_that_cannot_be_fitted_say_why():
    rows = (_rows("builtin:a") + _rows("builtin:short", steps=STEPS[:2])
            + _rows("builtin:flat", law=lambda t: np.full(len(t), 2.0))
            + _rows("builtin:nan", law=lambda t: np.where(t > 40 * BATCH, np.nan, _law(t)))
            + _rows("builtin:noisy", law=lambda t: _law(t) * np.array([1, 1.3, 0.8, 1.25, 0.9])))
    fc = build(to_frame(rows))
    assert fc.get("builtin:a") is not None
    assert "too short" in fc.why_not("builtin:short")
    assert "flat" in fc.why_not("builtin:flat")
    assert "dropped" in fc.why_not("builtin:nan")
    assert "noisy" in fc.why_not("builtin:noisy")
    assert "no pilot curve" in fc.why_not("builtin:other")


def test_one_teacher_and_data_per_table_and_one_recipe():
    with pytest.raises(InputError, match="fingerprints"):
        build(to_frame(_rows() + _rows("builtin:b", teacher_hash="other")))
    fc = build(to_frame(_rows() + _rows("builtin:b") + _rows("builtin:b", steps=[400],
                                                                recipe="x", source="run")))
    assert fc.recipe == "r" and len(fc.ignored) == 1 and "another recipe" in fc.ignored[0]
    with pytest.raises(InputError, match="no final points"):
        build(to_frame(_rows()).assign(phase="stable"))


def test_the_shipped_floor_widens_a_band_the_pilots_alone_would_keep_narrow():
    narrow = build(to_frame(_odds_rows()), odds_floor={}).get("builtin:s")
    floored = build(to_frame(_odds_rows())).get("builtin:s")  # roi.forecast.ODDS_KAPPA_FLOOR
    assert narrow.retention_calibration.kappa < 0.01 <= floored.retention_calibration.kappa
    assert "raised to the floor" in floored.retention_calibration.source
    at = 16 * 96 * BATCH
    assert np.subtract(*floored.retention(at)[::-2]) > 3 * np.subtract(*narrow.retention(at)[::-2])


def test_pilot_compute_counts_the_shared_teacher_once():
    """Two KD curves and a baseline, student 1,000 params, teacher 10,000: per KD token 6,000 +
    20,000 FLOPs. With the teacher-logit cache the teacher labels the shared windows once."""
    per_kd, per_ce, tokens = 6_000 + 20_000, 6_000, 96 * BATCH
    rows = (_rows("builtin:a", "kd", pilot_flops=per_kd * tokens)
            + _rows("builtin:b", "kd", pilot_flops=per_kd * tokens)
            + _rows("builtin:a", "ce", pilot_flops=per_ce * tokens))
    fc = build(to_frame(rows))
    assert fc.pilot_flops == pytest.approx(3 * 6_000 * tokens + 20_000 * tokens)


def test_pilot_compute_of_curves_without_a_compute_column_is_unknown_not_an_error():
    rows = _rows("builtin:a", "kd", pilot_flops=float("nan")) + _rows("builtin:a", "ce",
                                                                     pilot_flops=1e12)
    assert build(to_frame(rows)).pilot_flops == pytest.approx(1e12)
    assert math.isnan(build(to_frame(_rows(pilot_flops=float("nan")))).pilot_flops)
