"""Micro-benchmarks timed by pytest-benchmark itself: the timing loop and the statistics of
bench/, the sizing evaluations of roi/sizing.py, the projection of roi/projection.py.

Each is a call the fixture times (rounds calibrated by pytest-benchmark), on fixed seeded inputs,
with its result checked, so that a saved run can gate a later one (BENCHMARKS.md, "Micro-
benchmarks"):

    .venv/bin/python -m pytest tests/benchmarks/test_micro.py --benchmark-only \
        --benchmark-autosave --benchmark-json=runs/micro.json
    .venv/bin/python -m pytest tests/benchmarks/test_micro.py --benchmark-only \
        --benchmark-compare --benchmark-compare-fail=median:25%

Imports no torch: it runs in the planner-only install too (the bench/ parts need numpy only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.stats import speedup_ci, summarize_ns
from bench.timing import TimingSettings, time_cpu
from roi.hardware import load_catalog
from roi.measurements import load_results
from roi.projection import calibrate, leave_one_out_report
from roi.sizing import ServiceTime, max_qps_per_replica, response_time_quantile_ms

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "bench_results.csv"
LOOP_CALLS = 10_000


def _latencies_ns(n: int, median_ms: float, seed: int) -> np.ndarray:
    """Right-skewed per-call samples, as measured latencies are."""
    rng = np.random.default_rng(seed)
    return (median_ms * 1e6 * rng.lognormal(0.0, 0.2, n)).astype(np.int64)


@pytest.mark.benchmark(group="bench")
def test_timing_loop_10k_noop_calls(benchmark):
    samples = benchmark(time_cpu, lambda: None,
                        TimingSettings(warmup_calls=0, min_calls=LOOP_CALLS, min_time_s=0.0))
    if benchmark.stats:  # None under --benchmark-disable (the call ran once, untimed)
        benchmark.extra_info["ns_per_call"] = benchmark.stats.stats.median / LOOP_CALLS * 1e9
    assert len(samples) == LOOP_CALLS and samples.min() >= 0


@pytest.mark.benchmark(group="bench")
def test_summarize_10k_samples(benchmark):
    samples = _latencies_ns(10_000, 2.0, seed=1)
    out = benchmark(summarize_ns, samples)
    assert out["n_calls"] == 10_000 and out["latency_ms_p50"] == pytest.approx(2.0, rel=0.02)


@pytest.mark.benchmark(group="bench")
def test_speedup_bootstrap_ci_2k_samples(benchmark):
    """The bootstrap CI of a ratio of medians (2,000 resamples of 2,000 calls per side)."""
    teacher, student = _latencies_ns(2000, 20.0, seed=2), _latencies_ns(2000, 2.0, seed=3)
    ratio, lo, hi = benchmark(speedup_ci, teacher, student)
    assert lo < ratio < hi and ratio == pytest.approx(10.0, rel=0.05)


def _services(n: int, seed: int = 0) -> tuple[ServiceTime, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    service = ServiceTime.from_mean_cv(rng.uniform(1, 200, n), rng.uniform(0, 1.5, n))
    return service, rng.choice([90, 95, 99], n), rng.uniform(400, 4000, n)


@pytest.mark.benchmark(group="sizing")
def test_max_qps_10k_unbatched_rows(benchmark):
    """M/G/1 capacity under a percentile bound, Cramér–Lundberg tail, 10,000 rows at once."""
    service, pct, bound = _services(10_000)
    qps = benchmark(max_qps_per_replica, service, pct, bound)
    assert qps.shape == (10_000,) and np.all(qps >= 0) and (qps > 0).mean() > 0.9


@pytest.mark.benchmark(group="sizing")
def test_max_qps_1k_batched_rows(benchmark):
    """The dynamic-batching model (batch 8, 20 ms window), 1,000 rows at once."""
    service, pct, bound = _services(1000, seed=1)
    qps = benchmark(max_qps_per_replica, service, pct, bound, batch_size=8,
                    batch_window_ms=20.0)
    assert qps.shape == (1000,) and np.all(qps >= 0) and (qps > 0).mean() > 0.5


@pytest.mark.benchmark(group="sizing")
def test_p99_response_time_10k_rows(benchmark):
    service, _, _ = _services(10_000, seed=2)
    qps = 0.5 * 1e3 / service.mean_ms  # utilization 0.5
    p99 = benchmark(response_time_quantile_ms, service, qps, 99)
    assert p99.shape == (10_000,) and np.all(p99 > service.mean_ms)


@pytest.fixture(scope="module")
def measured():
    return load_results([str(FIXTURE)], load_catalog())


@pytest.mark.benchmark(group="projection")
def test_calibrate_the_fixture_table(benchmark, measured):
    """Fit every (machine, backend, dtype) of tests/fixtures/bench_results.csv."""
    fits = benchmark(calibrate, measured)
    assert len(fits) >= 2 and all(f.flop_per_ms > 0 for f in fits)


@pytest.mark.benchmark(group="projection")
def test_leave_one_out_report(benchmark, measured):
    fits = calibrate(measured)
    report = benchmark(leave_one_out_report, fits)
    assert report and all(r["median_ape"] >= 0 for r in report)


@pytest.mark.benchmark(group="projection")
def test_predict_100k_models(benchmark, measured):
    fit = calibrate(measured)[0]
    rng = np.random.default_rng(4)
    params = rng.uniform(1e5, 1e9, 100_000)
    flops, weight_bytes = 2 * params * 128, 4 * params
    ms = benchmark(fit.predict_ms, flops, weight_bytes, params)
    assert ms.shape == (100_000,) and np.all(ms >= fit.overhead_ms)
