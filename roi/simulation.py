"""Discrete-event simulation of a replica, to check the queueing model in roi/sizing.py.

M/G/1 is vectorized: Lindley's recursion W[n+1] = max(0, W[n] + S[n] - A[n+1]) has the closed
form W[n] = U[n] - min(0, min_{k<=n} U[k]) with U the running sum of S - A, i.e. one cumsum and
one running minimum, so a million customers take tens of milliseconds. M/G/c (c > 1) has no
such form and runs FCFS over a heap of server-free times, one customer at a time.
"""

from __future__ import annotations

import heapq

import numpy as np

from .errors import InputError


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
