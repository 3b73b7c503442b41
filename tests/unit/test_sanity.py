"""roi.sanity: plain warnings, once per model and backend, for measurements whose spread says
the machine was busy (issue 18)."""

import math

import pandas as pd

from roi.sanity import ADVICE, CV_LIMIT, measurement_warnings


def _rows(*rows):
    base = {"model": "builtin:teacher", "backend": "torch", "latency_ms_p50": 10.0,
            "cv_source": "measured"}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_a_busy_row_is_named_once_per_model_and_backend():
    df = _rows({"latency_ms_cv": 0.42}, {"latency_ms_cv": 0.92, "batch_size": 8},
               {"latency_ms_cv": 0.1, "backend": "ort"})
    assert measurement_warnings(df) == [
        f"measurements on builtin:teacher torch spread CV 0.92 > {CV_LIMIT:g} (1 of 2 rows): "
        f"{ADVICE}"]
    assert measurement_warnings(df, cv_limit=0.25)[0].startswith(
        "measurements on builtin:teacher torch spread CV 0.92 > 0.25 (2 of 2 rows)")


def test_quiet_rows_and_assumed_cvs_give_no_warning():
    df = _rows({"latency_ms_cv": 0.2}, {"latency_ms_cv": 0.9, "cv_source": "assumed 0.25",
                                        "model": "m2"})
    assert measurement_warnings(df) == []
    assert measurement_warnings(pd.DataFrame()) == [] and measurement_warnings(None) == []


def test_after_idle_drift_outside_its_range_is_named():
    df = _rows({"latency_ms_cv": 0.1, "after_idle_ms_p50": 60.0},
               {"latency_ms_cv": 0.1, "after_idle_ms_p50": 12.0, "model": "quiet"},
               {"latency_ms_cv": 0.1, "after_idle_ms_p50": 2.0, "model": "starved"})
    warnings = measurement_warnings(df)
    assert len(warnings) == 2
    assert warnings[0] == ("measurements on builtin:teacher torch drift after idle: median "
                           f"6.00x the back-to-back median (expected 0.5-4x): {ADVICE}")
    assert warnings[1].startswith("measurements on starved torch drift after idle: median 0.20x")


def test_junk_values_are_skipped_not_raised():
    df = _rows({"latency_ms_cv": "n/a"}, {"latency_ms_cv": math.nan},
               {"latency_ms_cv": math.inf, "after_idle_ms_p50": None})
    assert measurement_warnings(df) == []


def test_no_torch_and_no_io():
    import roi.sanity as mod

    text = open(mod.__file__).read()
    assert "import torch" not in text and "open(" not in text
