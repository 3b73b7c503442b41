"""The sizing model's predictions for a LoadGen run, so they can be set beside what LoadGen
measured (bench/loadgen.py), and the measured peaks the planner prefers to its own figure.

Two predictions per configuration, both from the single-call service-time distribution bench
measured (roi.sizing, M/G/1 with Poisson arrivals):

- the response-time percentile at a fixed QPS (LoadGen's Server scenario at that target), and
- the highest QPS whose run LoadGen would call VALID under a latency bound.

The second is not max_qps_per_replica at the nominal percentile: LoadGen's early stopping
(loadgen/early_stopping.cc) calls a Server run VALID only when the count of queries over the
bound is low enough that, at 99% confidence, the true over-bound fraction is under
1 - percentile. A run of n queries may have at most t_max(n) of them over the bound, i.e.
its observed p(100·(1 - t_max/n)) must meet the bound, which for a short run is a stricter
percentile than the one claimed (p99.4 for 3,000 queries at a claimed p99). The prediction
sizes at that percentile, with n the queries the run will issue at that rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .sizing import ServiceTime, max_qps_per_replica, response_time_quantile_ms

CONFIDENCE = 0.99  # LoadGen's early-stopping confidence (results.cc)


def binomial_cdf(t: int, n: int, q: float) -> float:
    """P(X <= t) for X ~ Binomial(n, q), summed in log space (n up to millions)."""
    if t < 0:
        return 0.0
    if t >= n or q <= 0:
        return 1.0
    k = np.arange(t + 1, dtype=float)
    logpmf = (math.lgamma(n + 1) - _lgamma(k + 1) - _lgamma(n - k + 1)
              + k * math.log(q) + (n - k) * math.log1p(-q))
    top = logpmf.max()
    return float(min(1.0, math.exp(top) * np.exp(logpmf - top).sum()))


def _lgamma(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.lgamma, otypes=[float])(x)


def early_stopping_max_overlatency(n: int, percentile: float,
                                   confidence: float = CONFIDENCE) -> int:
    """The most queries of n that may exceed the bound for LoadGen's Server early stopping to
    pass (n >= h + t with odds(h, t) <= 1 - confidence); -1 where even none over fails."""
    q = 1 - percentile / 100
    lo, hi = -1, n  # cdf(t) grows with t: the largest t with cdf(t) <= 1 - c
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if binomial_cdf(mid, n, q) <= 1 - confidence:
            lo = mid
        else:
            hi = mid
    return lo


def certified_percentile(n: int, percentile: float, confidence: float = CONFIDENCE) -> float:
    """The percentile of the true response time that must meet the bound for a run of n
    queries to pass early stopping about half the time: 100·(1 - (t_max + 0.5) / n)."""
    t = early_stopping_max_overlatency(n, percentile, confidence)
    if t < 0:
        return math.nan  # too few queries for any verdict
    return 100.0 * (1 - (t + 0.5) / n)


@dataclass(frozen=True)
class PeakPrediction:
    qps: float
    percentile: float  # the percentile sized at (after early stopping)
    queries: int  # the queries the run issues at that rate

    def record(self) -> dict:
        return {"qps": self.qps, "percentile": self.percentile, "queries": self.queries}


def predicted_peak_qps(service: ServiceTime, percentile: float, latency_ms: float, *,
                       min_duration_s: float, min_queries: int,
                       early_stopping: bool = True) -> PeakPrediction:
    """The highest Poisson rate whose LoadGen Server run (min_duration_s, min_queries) should
    come out VALID; early_stopping=False sizes at the nominal percentile instead."""
    if not (min_duration_s > 0 and min_queries >= 1):
        raise InputError("a LoadGen run needs min_duration_s > 0 and min_queries >= 1")
    pct, qps, n = percentile, 0.0, int(min_queries)
    for _ in range(6):  # n depends on the rate and the rate on n: a few rounds converge
        qps = float(max_qps_per_replica(service, pct, latency_ms))
        n = max(int(min_queries), math.ceil(qps * min_duration_s))
        if not early_stopping:
            break
        new = certified_percentile(n, percentile)
        if math.isnan(new) or abs(new - pct) < 1e-6:
            pct = new if not math.isnan(new) else pct
            break
        pct = new
    if early_stopping:
        qps = float(max_qps_per_replica(service, pct, latency_ms))
    return PeakPrediction(qps, pct, n)


def predicted_quantile_ms(service: ServiceTime, qps: float, percentile: float) -> float:
    """The response-time percentile (ms) at a Poisson rate; inf at or beyond capacity."""
    if qps * float(service.mean_ms) / 1000 >= 1:
        return math.inf
    return float(response_time_quantile_ms(service, qps, percentile))


def relative_error(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured."""
    return (predicted - measured) / measured if measured else math.nan
