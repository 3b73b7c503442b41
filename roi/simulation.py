"""Discrete-event simulation of a replica, to check the queueing model in roi/sizing.py.

M/G/1 is vectorized: Lindley's recursion W[n+1] = max(0, W[n] + S[n] - A[n+1]) has the closed
form W[n] = U[n] - min(0, min_{k<=n} U[k]) with U the running sum of S - A, i.e. one cumsum and
one running minimum, so a million customers take tens of milliseconds. M/G/c (c > 1) has no
such form and runs FCFS over a heap of server-free times, one customer at a time.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right

import numpy as np

from contracts.errors import InputError


def simulate_response_ms(service_ms: np.ndarray, qps: float, *, servers: int = 1,
                         seed: int = 0) -> np.ndarray:
    """Response times (wait + service, ms) of len(service_ms) Poisson arrivals at `qps`,
    served first-come first-served by `servers` servers."""
    s = np.asarray(service_ms, float)
    if qps <= 0 or s.size == 0 or np.any(s < 0):
        raise InputError(f"simulation needs qps > 0 and service times >= 0; got qps {qps}")
    if servers < 1:
        raise InputError(f"servers must be >= 1; got {servers}")
    gaps = np.random.default_rng(seed).exponential(1000.0 / qps, s.size)
    if servers == 1:
        return _lindley(s, gaps) + s
    return _fcfs_c(s, np.cumsum(gaps), servers) + s


def _lindley(s: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    u = np.concatenate([[0.0], np.cumsum(s[:-1] - gaps[1:])])
    return u - np.minimum(np.minimum.accumulate(u), 0.0)


def _fcfs_c(s: np.ndarray, arrivals: np.ndarray, servers: int) -> np.ndarray:
    free = [0.0] * servers
    wait = np.empty_like(s)
    for i, (t, d) in enumerate(zip(arrivals.tolist(), s.tolist())):
        start = max(t, free[0])
        wait[i] = start - t
        heapq.heapreplace(free, start + d)
    return wait


def simulated_quantile_ms(service_ms: np.ndarray, qps: float, percentile: float, *,
                          servers: int = 1, warmup: float = 0.1, seed: int = 0) -> float:
    """The percentile of simulated response times, the first `warmup` fraction dropped so the
    empty start does not flatter the result."""
    t = simulate_response_ms(service_ms, qps, servers=servers, seed=seed)
    return float(np.percentile(t[int(warmup * t.size):], percentile))


def simulate_two_state_ms(busy_ms: np.ndarray, idle_ms: np.ndarray, qps: float, n: int, *,
                          seed: int = 0) -> np.ndarray:
    """Response times of n Poisson arrivals at one FCFS server whose service depends on what a
    request finds: a draw from idle_ms when the server is idle at its arrival, from busy_ms
    otherwise (the exact model roi.loadcheck.two_state_service approximates)."""
    busy, idle = np.asarray(busy_ms, float), np.asarray(idle_ms, float)
    if qps <= 0 or n < 1 or busy.size == 0 or idle.size == 0:
        raise InputError(f"simulation needs qps > 0, n >= 1 and samples; got qps {qps}, n {n}")
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1000.0 / qps, n)).tolist()
    draw_busy = busy[rng.integers(0, busy.size, n)].tolist()
    draw_idle = idle[rng.integers(0, idle.size, n)].tolist()
    out = np.empty(n)
    free = 0.0
    for i, t in enumerate(arrivals):
        if t >= free:  # idle: starts now, pays the wake-up
            free = t + draw_idle[i]
        else:
            free += draw_busy[i]
        out[i] = free - t
    return out


def batch_response_ms(arrivals_ms: np.ndarray, service_ms: np.ndarray, batch_size: int,
                      window_ms: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """(response time of each request, size of each batch) at one dynamic-batching worker.

    The policy of bench/loadgen_sut.py BatchingSUT: when free, the worker takes the first waiting
    request (or waits for the next arrival), then keeps taking requests until it holds
    batch_size or window_ms has passed since it took the first (requests already queued come at
    once), and serves the batch. Batch j takes service_ms[j] (1-D: the padded batch, whatever
    its size) or service_ms[j, k - 1] (2-D, one column per size k). arrivals_ms must be sorted.
    A loop over batches, not requests: 300,000 requests in batches of 8 take ~0.05 s.
    """
    a = np.asarray(arrivals_ms, float)
    s = np.asarray(service_ms, float)
    b, n = int(batch_size), a.size
    if b < 1 or not window_ms >= 0 or n == 0 or np.any(s < 0):
        raise InputError(f"batch simulation needs batch_size >= 1, window_ms >= 0, arrivals and "
                         f"service times >= 0; got {batch_size}, {window_ms}, {n} arrivals")
    if s.ndim not in (1, 2) or (s.ndim == 2 and s.shape[1] < b):
        raise InputError(f"service_ms must be 1-D, or 2-D with {b} columns; got {s.shape}")
    arr, draws, per_size = a.tolist(), s.tolist(), s.ndim == 2
    ends, sizes = [], []
    i, free, w = 0, 0.0, float(window_ms)
    while i < n:
        if len(ends) == len(draws):
            raise InputError(f"service_ms ran out after {len(draws)} batches")
        take = arr[i] if arr[i] > free else free
        hi = min(i + b, n)
        m = bisect_right(arr, take + w, i, hi)  # takes these; m > i since arr[i] <= take
        if m - i == b:
            start = arr[m - 1] if arr[m - 1] > take else take
        else:  # the window closes on a part batch (with no window: the stream ended)
            start = take + w if w < math.inf else arr[n - 1]
        d = draws[len(ends)]
        free = start + (d[m - i - 1] if per_size else d)
        ends.append(free)
        sizes.append(m - i)
        i = m
    sizes = np.asarray(sizes)
    return np.repeat(np.asarray(ends), sizes) - a, sizes


def simulate_batching_ms(service_ms: np.ndarray, qps: float, *, batch_size: int,
                         window_ms: float = np.inf, n: int | None = None,
                         seed: int = 0) -> np.ndarray:
    """Response times (arrival to batch completion, ms) of n Poisson arrivals at `qps` at one
    dynamic-batching worker (batch_response_ms); n defaults to len(service_ms). The arrivals
    are simulate_response_ms's, so batch_size 1 gives its numbers, and a fixed seed scales the
    same unit-rate arrivals with qps (common random numbers across rates)."""
    s = np.asarray(service_ms, float)
    n = s.shape[0] if n is None else int(n)
    if qps <= 0 or n < 1:
        raise InputError(f"simulation needs qps > 0 and n >= 1; got qps {qps}, n {n}")
    arrivals = np.cumsum(np.random.default_rng(seed).exponential(1000.0 / qps, n))
    return batch_response_ms(arrivals, s, batch_size, window_ms)[0]


def simulated_max_qps(service_ms: np.ndarray, percentile: float, latency_ms: float, *,
                      batch_size: int = 1, window_ms: float = np.inf, n: int | None = None,
                      warmup: float = 0.1, seed: int = 0, grid: int = 24,
                      rel_tol: float = 1e-3) -> float:
    """The largest Poisson rate (requests/s) whose simulated `percentile` of the response time
    stays <= latency_ms at one dynamic-batching worker; 0 where none does.

    The same arrivals (scaled) and service draws at every rate, the first `warmup` fraction of
    requests dropped. With a window, a low rate can miss the bound (batches wait to fill) where
    a higher one meets it, so the rates are scanned down from capacity on a grid (utilization
    1 - 10^-3 ... 10^-3) to the first that meets it, then bisected up to the next grid point."""
    s = np.asarray(service_ms, float)
    full = s[:, batch_size - 1] if s.ndim == 2 else s
    capacity = batch_size * 1000.0 / float(np.mean(full))

    def meets(qps: float) -> bool:
        t = simulate_batching_ms(s, qps, batch_size=batch_size, window_ms=window_ms, n=n,
                                 seed=seed)
        return float(np.percentile(t[int(warmup * t.size):], percentile)) <= latency_ms

    rates = capacity * (1 - np.geomspace(1e-3, 1 - 1e-3, grid))
    below = next((k for k, q in enumerate(rates) if meets(q)), None)
    if below is None:
        return 0.0
    lo, hi = rates[below], rates[below - 1] if below else capacity
    while hi - lo > rel_tol * lo:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    return float(lo)
