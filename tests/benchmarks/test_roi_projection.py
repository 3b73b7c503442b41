"""Benchmark of the planner's projection (issue 3's figure; it goes to BENCHMARKS.md).

Run:  .venv/bin/python -m pytest tests/benchmarks/test_roi_projection.py -s
      ROI_RESULTS=runs/bench-.../results.csv[,other.csv] ... to judge a fresh bench table

Goal: leave-one-model-out error of the calibrated roofline on the measuring machine (predict
each measured model size from the others), median absolute percentage error <= 15% per backend.
A backend whose own measurements scatter more than the model can be judged by (median per-call
CV above NOISY_CV, e.g. a second process training on the same cores) is recorded, not asserted.
Where a table holds rows measured on catalog hardware (a GPU), its rows are also predicted from
the other machines' calibration and the catalog, and that error is recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from roi.hardware import load_catalog
from roi.measurements import load_results
from roi.projection import calibrate, leave_one_out_report
from roi.service import forward_times

from .figures import record

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "bench_results.csv"
GOAL = 0.15
NOISY_CV = 0.5


def _tables() -> list[str]:
    given = os.environ.get("ROI_RESULTS")
    return given.split(",") if given else [str(FIXTURE)]


@pytest.fixture(scope="module")
def results():
    return load_results(_tables(), load_catalog())


def test_leave_one_model_out_error_per_backend(results):
    fits = calibrate(results)
    report = leave_one_out_report(fits)
    cv = results.groupby(["machine", "backend"])["latency_ms_cv"].median()
    figures = {f"{r['backend']} @ {r['machine']}": {
        "median_ape": r["median_ape"], "max_ape": r["max_ape"], "n": r["n_predictions"],
        "median_cv": float(cv[(r["machine"], r["backend"])])} for r in report}
    record("roi-projection-leave-one-out", tables=_tables(), goal=GOAL, per_backend=figures)
    assert report, "no machine has 3 or more model sizes of one backend"
    noisy = [k for k, v in figures.items() if v["median_cv"] > NOISY_CV]
    judged = {k: v for k, v in figures.items() if k not in noisy}
    for key, fig in judged.items():
        assert fig["median_ape"] <= GOAL, key
    if noisy:
        pytest.xfail(f"measurements too noisy to judge (median CV > {NOISY_CV}): "
                     + ", ".join(f"{k} {figures[k]['median_ape']:.1%}" for k in noisy))


def test_measured_catalog_hardware_predicted_from_the_other_machines(results):
    measured = results[results["hardware"].notna()]
    if measured.empty:
        pytest.skip("no rows measured on catalog hardware (e.g. a GPU) in these tables")
    errors = {}
    for hw, rows in measured.groupby("hardware"):
        others = results[~results["machine"].isin(set(rows["machine"]))]
        fits = calibrate(others)
        fwd = forward_times(others, fits, [load_catalog().get(hw)])
        got = fwd.merge(rows, on=["model", "backend", "dtype", "batch_size", "seq_len"])
        ape = np.abs(got["fwd_ms_p50"] / got["latency_ms_mean"] - 1)
        errors[hw] = {"median_ape": float(np.median(ape)), "n": int(len(ape))}
    record("roi-projection-cross-hardware", tables=_tables(), per_hardware=errors)
