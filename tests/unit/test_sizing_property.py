"""Property: the dynamic-batching sizing model against roi.simulation's batching server.

Wherever the simulation of the load test's server (roi.simulation.simulated_max_qps) finds
a rate above zero, max_qps_per_replica is within 10% of it: over batch sizes 2-16, windows
(none, one batch's median service time, a random one, inf), the batch's mean service up to
1.2x the SLA bound (about half the draws within 1.5x of it: the SLA edge, where only
low-CV service can meet a p90-p99 bound) and CVs up to 1.2, and p90/p95/p99 (issue 16).
Where a batch alone misses the bound (R >= S) the model must say 0.

The simulation runs SIM_BATCHES·b requests per rate (its cost and noise go with the
batches), its service times stratified (shuffled quantiles of the model's distribution):
at light load, where the highest feasible rate hangs on P(S + w > t) being just under the
target, random draws of S alone move the simulated rate by 10-30% at this size. The
arrivals' noise stays: up to ~7% of the rate at light load or with p99 where P(R > t) is
flat in the rate, so a point off by more than 10% is simulated again on 4x the requests
before it counts (none needs it today: 101 examples, 39 feasible, max |error| 6.7%, median
0.5%). tests/benchmarks/test_roi_sizing.py::test_batching_sweep_against_simulation runs
1,100 points on 200,000 requests.
"""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from roi.simulation import simulated_max_qps
from roi.sizing import ServiceTime, max_qps_per_replica

SIM_BATCHES = 15_000  # the simulation's cost and noise go with batches, not requests
TOLERANCE = 0.10


def stratified_ms(service: ServiceTime, n: int, seed: int) -> np.ndarray:
    """n draws of a one-row service time: each component's share of n at its quantiles
    (k + 1/2)/share, shuffled, so the sample's distribution is the model's to O(1/n)."""
    w, d, r = (np.ravel(a) for a in (service.weight, service.shift_ms, service.rate_per_ms))
    counts = np.floor(w / w.sum() * n).astype(int)
    counts[np.argmax(w)] += n - counts.sum()
    parts = []
    for c, shift, rate in zip(counts, d, r):
        u = (np.arange(c) + 0.5) / max(c, 1)
        parts.append(shift - np.log1p(-u) / rate if np.isfinite(rate) else np.full(c, shift))
    return np.random.default_rng(seed).permutation(np.concatenate(parts))


def median_ms(service: ServiceTime) -> float:
    lo, hi = 0.0, 100 * float(service.mean_ms)
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(service.sf(mid)) > 0.5 else (lo, mid)
    return hi


def simulated(service: ServiceTime, percentile: float, latency_ms: float, b: int,
              window: float, n: int) -> float:
    """roi.simulation's highest rate meeting the SLA, on n stratified service times."""
    return simulated_max_qps(stratified_ms(service, n, seed=1), percentile, latency_ms,
                             batch_size=b, window_ms=window, seed=2, rel_tol=2e-3)


def window_ms(kind: str, service: ServiceTime, spread: float) -> float:
    median = median_ms(service)
    return {"0": 0.0, "median": median, "random": spread * median, "inf": np.inf}[kind]


EDGE = 1 / 1.5  # mean service / bound above this: the batch's own time is near the SLA
# grids, not floats: hypothesis's derandomized floats crowd at the ends of their ranges
LOOSE = np.geomspace(0.02, EDGE, 16, endpoint=False).round(4).tolist()
TIGHT = np.linspace(EDGE, 1.2, 9).round(4).tolist()
CVS = np.linspace(0.0, 1.2, 25).round(3).tolist()
# (mean / bound, cv): at the edge a batch alone meets a p90-p99 bound only at low CV
SHAPES = st.one_of(st.tuples(st.sampled_from(TIGHT), st.sampled_from(CVS[:7])),
                   st.tuples(st.sampled_from(LOOSE + TIGHT), st.sampled_from(CVS)))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(b=st.sampled_from([2, 4, 8, 16]), shape=SHAPES, percentile=st.sampled_from([90, 95, 99]),
       window=st.sampled_from(["0", "median", "random", "inf"]),
       spread=st.sampled_from([0.1, 0.3, 0.6, 1.0, 1.5, 2.0]),  # "random" window / median
       latency_ms=st.sampled_from([20.0, 50.0, 100.0, 200.0, 500.0]))
@example(b=8, shape=(0.319, 0.23), percentile=99, window="random", spread=0.37,
         latency_ms=100.0)  # issue 16's teacher on an L40S (an 11 ms window): ~180 QPS, not 7
def test_batching_max_qps_within_10_percent_of_the_simulation(
        b, shape, percentile, window, spread, latency_ms):
    ratio, cv = shape
    service = ServiceTime.from_mean_cv(ratio * latency_ms, cv)
    w = window_ms(window, service, spread)
    model = float(max_qps_per_replica(service, percentile, latency_ms, batch_size=b,
                                      batch_window_ms=w))
    if float(service.sf(latency_ms)) > 1 - percentile / 100:
        assert model == 0.0  # a batch alone misses the bound: no rate can meet it
        return
    sim = simulated(service, percentile, latency_ms, b, w, SIM_BATCHES * b)
    if sim > 0 and abs(model / sim - 1) > TOLERANCE:  # a miss gets a 4x longer simulation
        sim = simulated(service, percentile, latency_ms, b, w, 4 * SIM_BATCHES * b)
    if sim > 0:
        assert abs(model / sim - 1) <= TOLERANCE, (model, sim)
