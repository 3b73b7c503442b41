"""The sizing model's predictions for a LoadGen run, so they can be set beside what LoadGen
measured (bench/loadgen.py), and the measured peaks the planner prefers to its own figure.

Two predictions per configuration, both from the single-call service-time distribution bench
measured (roi.sizing, M/G/1 with Poisson arrivals), optionally two-state: calls that find the
server idle take the "after idle" distribution (two_state_service):

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

from contracts.errors import InputError

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
                       early_stopping: bool = True,
                       after_idle: ServiceTime | None = None) -> PeakPrediction:
    """The highest Poisson rate whose LoadGen Server run (min_duration_s, min_queries) should
    come out VALID; early_stopping=False sizes at the nominal percentile instead. With
    after_idle, the two-state service time (two_state_service) at the rate searched."""
    if not (min_duration_s > 0 and min_queries >= 1):
        raise InputError("a LoadGen run needs min_duration_s > 0 and min_queries >= 1")
    if after_idle is not None:
        base = service
        qps = float(max_qps_per_replica(base, percentile, latency_ms))
        for _ in range(8):  # the mixture depends on the rate: iterate to a fixed point
            service = two_state_service(base, after_idle, qps)
            new = float(max_qps_per_replica(service, percentile, latency_ms))
            if abs(new - qps) <= 1e-4 * max(qps, 1e-9):
                break
            qps = new
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


def predicted_quantile_ms(service: ServiceTime, qps: float, percentile: float,
                          after_idle: ServiceTime | None = None) -> float:
    """The response-time percentile (ms) at a Poisson rate; inf at or beyond capacity. With
    after_idle, the two-state service time at that rate (two_state_service)."""
    if after_idle is not None:
        service = two_state_service(service, after_idle, qps)
    if qps * float(service.mean_ms) / 1000 >= 1:
        return math.inf
    return float(response_time_quantile_ms(service, qps, percentile))


def idle_utilization(busy_ms: float, idle_ms: float, qps: float) -> float:
    """The server's busy fraction rho when a request that finds it idle (probability 1 - rho
    under Poisson arrivals, PASTA) takes idle_ms on average and the others busy_ms:
    rho = qps·((1 - rho)·idle + rho·busy), so rho = qps·idle / (1 + qps·(idle - busy))."""
    lam = qps / 1000.0
    return lam * idle_ms / (1 + lam * (idle_ms - busy_ms))


def two_state_service(busy: ServiceTime, after_idle: ServiceTime, qps: float) -> ServiceTime:
    """The service time a queue at this Poisson rate sees: the after-idle distribution with
    probability 1 - rho (requests that find the server idle), the back-to-back one otherwise.

    Why: a server that idles between requests pays a wake-up (thread pools that stopped
    spinning, caches another process refilled) that back-to-back timing never sees; measured
    here at 10-14% of the service time at utilization 0.3 and 2-3% at 0.7 (BENCHMARKS.md,
    issue 5). Feeding the mixture to the M/G/1 model as independent draws charges the wake-up
    to some queued requests too: against a simulation where only the requests that find the
    server idle pay it, the mixture's p99 is 9-11% higher (tests/unit/test_loadcheck.py). It is
    kept because it is what matched LoadGen: the SUT's own service times under load, fed the same
    way, predicted LoadGen's p99 within 1-8% at utilization 0.3 (a wake-up slows the few calls
    after it too, which the strict model misses)."""
    if busy.weight.ndim != 1 or after_idle.weight.ndim != 1:
        raise InputError("two_state_service takes one service-time distribution per state")
    rho = idle_utilization(float(busy.mean_ms), float(after_idle.mean_ms), qps)
    if not 0 <= rho < 1:
        rho = 1.0  # at or past capacity: every request finds the server busy
    return ServiceTime(np.concatenate([after_idle.weight * (1 - rho), busy.weight * rho]),
                       np.concatenate([after_idle.shift_ms, busy.shift_ms]),
                       np.concatenate([after_idle.rate_per_ms, busy.rate_per_ms]))


def wake_mixture(busy: ServiceTime, wake_ms: np.ndarray, rho: np.ndarray) -> ServiceTime:
    """two_state_service for arrays of rows whose after-idle state is the busy distribution
    shifted by wake_ms (the planner's form: bench records the median extra time of calls after
    an idle gap): with probability 1 - rho a draw pays wake_ms more."""
    wake, rho = np.asarray(wake_ms, float)[..., None], np.clip(rho, 0.0, 1.0)[..., None]
    w, shift = busy.weight, busy.shift_ms
    return ServiceTime(np.concatenate([w * (1 - rho), w * rho + 0 * wake], -1),
                       np.concatenate([shift + wake, shift + 0 * wake], -1),
                       np.concatenate([busy.rate_per_ms + 0 * wake] * 2, -1))


TWO_STATE_ROUNDS = 8


def two_state_max_qps(busy: ServiceTime, wake_ms: np.ndarray, batch_size: np.ndarray,
                      size) -> np.ndarray:
    """Requests per second under the two-state service time, for arrays of rows: `size(svc)`
    is the sizing (max_qps_per_replica of a ServiceTime of the rows). The idle fraction depends
    on the rate and the rate on the mixture: iterate from the back-to-back figure, which can
    only fall (a lower rate leaves the server idle more often, so more batches pay the wake-up).
    A batch that starts on an idle server pays it once."""
    qps = np.asarray(size(busy), float)
    wake = np.broadcast_to(np.asarray(wake_ms, float), qps.shape)
    mean = np.broadcast_to(busy.mean_ms, qps.shape)
    batches = np.broadcast_to(np.asarray(batch_size, float), qps.shape)
    for _ in range(TWO_STATE_ROUNDS):
        rho = np.where(qps > 0, idle_utilization(mean, mean + wake, qps / batches), 0.0)
        new = np.asarray(size(wake_mixture(busy, wake, np.where(rho < 1, rho, 1.0))), float)
        done = bool(np.all(np.abs(new - qps) <= 1e-4 * np.maximum(qps, 1e-9)))
        qps = new
        if done:
            break
    return qps


def relative_error(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured."""
    return (predicted - measured) / measured if measured else math.nan
