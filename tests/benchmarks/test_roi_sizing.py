"""Benchmarks of the planner's sizing core (issue 3's figures; they go to BENCHMARKS.md).

Run:  .venv/bin/python -m pytest tests/benchmarks/test_roi_sizing.py -s

Goals: 10,000 (scenario × hardware × model × batch) evaluations in <= 1 s; the queueing model's
p99 within 10% of a discrete-event simulation over utilizations 0.3–0.9 (M/M/1, M/D/1).
"""

from __future__ import annotations


import numpy as np
import pytest

from roi.cost import evaluate
from roi.simulation import simulated_quantile_ms
from roi.sizing import ServiceTime, response_time_quantile_ms

from ..unit.test_cost import grid_of
from .figures import record

@pytest.mark.parametrize("method", ["cramer-lundberg", "allen-cunneen"])
def test_ten_thousand_evaluations_within_one_second(benchmark, method):
    grid = grid_of(10_000)
    out = benchmark.pedantic(evaluate, args=(grid,), kwargs={"method": method}, rounds=5,
                             iterations=1)
    best = benchmark.stats.stats.min
    record("roi-sizing-10k", method=method, rows=len(out), best_s=best,
           median_s=benchmark.stats.stats.median, feasible=float(out.meets_sla.mean()))
    assert best <= 1.0


def test_queueing_model_against_simulation():
    errors = {}
    for name, cv in (("M/M/1", 1.0), ("M/D/1", 0.0), ("M/G/1 cv=0.3", 0.3),
                     ("M/H2/1 cv=2", 2.0)):
        service = ServiceTime.from_mean_cv(10.0, cv)
        draws = service.sample(2_000_000, np.random.default_rng(1))
        for rho in (0.3, 0.5, 0.7, 0.9):
            sim = simulated_quantile_ms(draws, rho * 100, 99, seed=2)
            for method in ("cramer-lundberg", "allen-cunneen"):
                model = float(response_time_quantile_ms(service, rho * 100, 99, method=method))
                errors[f"{name} rho={rho} {method}"] = model / sim - 1
    record("roi-queueing-vs-simulation", p99_relative_error=errors)
    for key, err in errors.items():
        if "cramer-lundberg" in key or "M/M/1" in key:
            assert abs(err) < 0.10, key
