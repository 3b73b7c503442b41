"""Scoring the forecast against long curves: only the pilot part is fitted; errors in points."""

import numpy as np
import pandas as pd
import pytest

from contracts.curves import to_frame
from roi.forecastcheck import measured_steps_to, score

BATCH = 4096.0


def _curve(model, mode, steps, e=1.2, a=2.0, alpha=0.5, teacher_acc=0.76):
    tokens = np.asarray(steps, float) * BATCH
    loss = e + a * (tokens / 1e5) ** -alpha
    acc = 1 / (1 + np.exp(-(2.2 - 1.05 * loss)))
    return [dict(model=model, mode=mode, phase="final", step=int(s), tokens=t, loss=float(l),
                 accuracy=float(c), batch_tokens=BATCH, params=100, teacher="builtin:teacher",
                 teacher_hash="t", data_fingerprint="d", teacher_loss=1.0,
                 teacher_accuracy=teacher_acc, recipe="r", source="pilot")
            for s, t, l, c in zip(steps, tokens, loss, acc)]


def test_a_curve_that_follows_its_law_scores_near_zero():
    steps = [50, 71, 100, 141, 200, 400, 1500, 3200]
    table = to_frame(_curve("builtin:a", "kd", steps) + _curve("builtin:a", "ce", steps, e=1.3))
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
