"""Scoring the forecast against long curves: only the pilot part is fitted; errors in points."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from contracts.curves import read_curves, to_frame
from roi.forecastcheck import measured_steps_to, score

BATCH = 4096.0


def _curve(model, mode, steps, e=1.2, a=2.0, alpha=0.5, teacher_acc=0.76, c=0.5, beta=0.8):
    """Loss on the loss law; retention on the odds law, logit(r) = c + beta·ln(steps / 100)."""
    tokens = np.asarray(steps, float) * BATCH
    loss = e + a * (tokens / 1e5) ** -alpha
    acc = teacher_acc / (1 + np.exp(-(c + beta * np.log(np.asarray(steps, float) / 100))))
    return [dict(model=model, mode=mode, phase="final", step=int(s), tokens=t, loss=float(l),
                 accuracy=float(c), batch_tokens=BATCH, params=100, teacher="builtin:teacher",
                 teacher_hash="t", data_fingerprint="d", teacher_loss=1.0,
                 teacher_accuracy=teacher_acc, recipe="r", source="pilot")
            for s, t, l, c in zip(steps, tokens, loss, acc)]


def test_a_curve_that_follows_its_law_scores_near_zero():
    steps = [50, 71, 100, 141, 200, 400, 1500, 3200]
    table = to_frame(_curve("builtin:a", "kd", steps) + _curve("builtin:a", "ce", steps, e=1.3,
                                                                c=0.3))
    result = score(table, 200, (400, 1500, 3200), 0.9)
    assert len(result["cases"]) == 6
    kd = result["summary"]["kd"]
    assert kd["cases"] == 3 and kd["worst_abs_error_points"] < 0.5
    assert kd["coverage_p10_p90"] == 1.0
    assert all(c["steps"] in (400, 1500, 3200) for c in result["cases"])


def test_measured_steps_to_interpolates_in_log_steps():
    curve = pd.DataFrame({"step": [100, 400], "accuracy": [0.5, 0.7], "teacher_accuracy": 1.0})
    assert measured_steps_to(curve, 0.6) == pytest.approx(200.0)
    assert measured_steps_to(curve, 0.4) == 100
    assert measured_steps_to(curve, 0.8) is None


LONG = Path(__file__).parents[1] / "fixtures" / "forecast" / "long-curves.csv"


def test_the_project_long_curves_stay_forecast_within_the_goals():
    """The benchmark's own whole runs (BENCHMARKS.md "Retention forecast": 10x/20x/50x, KD and
    no-KD, 13 budgets to 3,200 steps) rescored: from pilots of 1/8 of the largest budget the
    odds law meets issue 15's goals; from 1/16 its worst case stays within 5 points. A change
    to the forecast that loses this fails here, not in a 1.5-hour benchmark."""
    table = to_frame(read_curves(LONG).to_dict("records"))
    eighth = score(table, 400, (800, 1500, 3200), 0.95)["summary"]
    for mode in ("kd", "ce"):
        assert eighth[mode]["cases"] == 9
        assert eighth[mode]["median_abs_error_points"] <= 2.0
        assert eighth[mode]["worst_abs_error_points"] <= 5.0
        assert eighth[mode]["coverage_p10_p90"] >= 0.8
    sixteenth = score(table, 200, (400, 1500, 3200), 0.95)["summary"]
    assert sixteenth["kd"]["worst_abs_error_points"] <= 5.0


LONG_6400 = Path(__file__).parents[1] / "fixtures" / "forecast" / "long-curves-6400.csv"


def test_pilots_of_a_sixteenth_of_6400_steps_meet_the_goals():
    """Issue 15's goal to the letter: the KD curves of whole runs to 6,400 steps (10x/20x/50x,
    one thread, session 9; BENCHMARKS.md "Retention forecast") rescored from pilots of 400 steps
    (1/16 of the largest budget) at 800 / 2,263 / 6,400 (an 8x span): median within 2 points,
    worst within 5, the P10-P90 band covering >= 80% of the cases."""
    table = to_frame(read_curves(LONG_6400).to_dict("records"))
    kd = score(table, 400, (800, 2263, 6400), 0.95)["summary"]["kd"]
    assert kd["cases"] == 9
    assert kd["median_abs_error_points"] <= 2.0
    assert kd["worst_abs_error_points"] <= 5.0
    assert kd["coverage_p10_p90"] >= 0.8
