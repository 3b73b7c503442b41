"""roi/loadcheck.py: LoadGen's early-stopping rule reproduced, and the sizing model's
predictions for a LoadGen run checked against the queueing simulation."""

import itertools
import math

import numpy as np
import pytest

from roi.loadcheck import (
    binomial_cdf,
    certified_percentile,
    early_stopping_max_overlatency,
    predicted_peak_qps,
    predicted_quantile_ms,
    relative_error,
)
from roi.simulation import simulated_quantile_ms
from roi.sizing import ServiceTime, max_qps_per_replica


def test_binomial_cdf_by_hand():
    assert binomial_cdf(0, 3, 0.5) == pytest.approx(0.125)
    assert binomial_cdf(1, 3, 0.5) == pytest.approx(0.5)
    assert binomial_cdf(3, 3, 0.5) == 1.0 and binomial_cdf(-1, 3, 0.5) == 0.0
    assert binomial_cdf(0, 459, 0.01) == pytest.approx(0.99 ** 459)


def test_early_stopping_matches_loadgen():
    # LoadGen: with no slow query, ceil(log(0.01) / log(0.99)) = 459 queries pass at p99
    assert early_stopping_max_overlatency(458, 99) == -1
    assert early_stopping_max_overlatency(459, 99) == 0
    # "Need to process at least 662 queries" (MultiStream, p99) and 64 (SingleStream, p90)
    assert early_stopping_max_overlatency(661, 99) == 0
    assert early_stopping_max_overlatency(662, 99) == 1
    assert early_stopping_max_overlatency(63, 90) == 0
    assert early_stopping_max_overlatency(64, 90) == 1
    # the stored summary: 498 queries, 0 over the bound passes; 1,001 needed for the run that
    # had some over (server_invalid_early_stopping.txt: 'at least 503 more')
    assert early_stopping_max_overlatency(498, 99) == 0


def test_certified_percentile_tightens_short_runs():
    assert math.isnan(certified_percentile(100, 99))
    p = [certified_percentile(n, 99) for n in (1000, 3000, 10_000, 100_000)]
    assert all(a > b for a, b in itertools.pairwise(p))  # longer runs certify closer to p99
    assert 99.0 < p[-1] < 99.1 and 99.3 < p[1] < 99.5


def test_predicted_peak_is_under_the_nominal_and_converges():
    service = ServiceTime.from_mean_cv(10.0, 0.3)
    nominal = float(max_qps_per_replica(service, 99, 60.0))
    peak = predicted_peak_qps(service, 99, 60.0, min_duration_s=20, min_queries=662)
    plain = predicted_peak_qps(service, 99, 60.0, min_duration_s=20, min_queries=662,
                               early_stopping=False)
    assert plain.qps == pytest.approx(nominal) and plain.percentile == 99
    assert 0.85 * nominal < peak.qps < nominal and peak.percentile > 99
    assert peak.queries >= max(662, 0.95 * peak.qps * 20)  # the queries of a run at that rate
    longer = predicted_peak_qps(service, 99, 60.0, min_duration_s=600, min_queries=662)
    assert peak.qps < longer.qps < nominal


def test_predicted_quantile_agrees_with_simulation():
    rng = np.random.default_rng(0)
    samples = 4.0 + rng.exponential(1.0, 20_000)  # a floor and a tail, like measured latencies
    service = ServiceTime.from_samples(samples)
    for utilization in (0.3, 0.5, 0.7):
        qps = utilization / (service.mean_ms.item() / 1000)
        sim = simulated_quantile_ms(rng.choice(samples, 400_000), qps, 99, seed=1)
        assert relative_error(predicted_quantile_ms(service, qps, 99), sim) == pytest.approx(
            0, abs=0.05)
    assert predicted_quantile_ms(service, 1000 / service.mean_ms.item(), 99) == math.inf


def test_two_state_service_against_a_simulation_of_the_exact_model():
    from roi.loadcheck import idle_utilization, two_state_service
    from roi.simulation import simulate_two_state_ms

    rng = np.random.default_rng(2)
    busy = 5.0 + rng.exponential(0.5, 5_000)  # back to back: 5.5 ms
    idle = 5.7 + rng.exponential(0.5, 5_000)  # after an idle gap: 12.7% slower, as measured
    b, i = ServiceTime.from_samples(busy), ServiceTime.from_samples(idle)
    for utilization in (0.3, 0.5, 0.7):
        qps = utilization / (b.mean_ms.item() / 1000)
        rho = idle_utilization(b.mean_ms.item(), i.mean_ms.item(), qps)
        assert utilization < rho < utilization * i.mean_ms.item() / b.mean_ms.item()
        mixed = two_state_service(b, i, qps)
        assert mixed.mean_ms.item() == pytest.approx((1 - rho) * i.mean_ms.item()
                                                     + rho * b.mean_ms.item())
        t = simulate_two_state_ms(busy, idle, qps, 300_000, seed=3)[30_000:]
        exact = float(np.percentile(t, 99))
        one = predicted_quantile_ms(b, qps, 99)
        two = predicted_quantile_ms(b, qps, 99, after_idle=i)
        slow = predicted_quantile_ms(i, qps, 99)
        # Only requests that find the server idle pay the wake-up in the exact model; the
        # mixture charges it to queued requests too, so it sits above the exact model (within
        # 12% here) and below "every call is slow"; ignoring the wake-up sits below.
        assert one < exact < two < slow, utilization
        assert relative_error(two, exact) < 0.12, utilization


def test_two_state_peak_is_lower_than_the_back_to_back_peak():
    busy, idle = ServiceTime.from_mean_cv(10.0, 0.2), ServiceTime.from_mean_cv(11.5, 0.2)
    one = predicted_peak_qps(busy, 99, 60.0, min_duration_s=20, min_queries=662)
    two = predicted_peak_qps(busy, 99, 60.0, min_duration_s=20, min_queries=662,
                             after_idle=idle)
    slow = predicted_peak_qps(idle, 99, 60.0, min_duration_s=20, min_queries=662)
    assert slow.qps < two.qps < one.qps
