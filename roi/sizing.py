"""Sizing at a latency SLA: the most requests per second one replica takes under Poisson arrivals
while the SLA percentile of the response time (batch forming + queueing + service) holds.

A replica is an M/G/c queue: c servers (model instances or accelerators behind one queue), each
serving one batch at a time. Two tail models, both exact for M/M/c:

- "cramer-lundberg" (default): P(wait) from Erlang C; the waiting-time tail K·exp(-eta·t), with
  eta the Cramér–Lundberg root of an M/G/1 "superserver" serving S/c and K its asymptotic
  prefactor scaled by Erlang C. Exact in the tail for M/G/1; within 2% of simulation for M/D/1.
- "allen-cunneen": the classic approximation, mean wait = Erlang C / (c·mu - lambda) ·
  (1 + cs²) / 2, wait exponential given that one waits. Simple, but 13–18% high on M/D/1 p99 at
  utilizations 0.3–0.5, which is why it is not the default.

The response time T = W + S adds the service time's own distribution exactly (W and S are
independent for a FCFS arrival). Service times are mixtures of shifted exponentials (see
ServiceTime), so every quantity is closed-form and the whole computation vectorizes over arrays
of (scenario × hardware × model × batch) rows. roi/simulation.py checks it by simulation.

Rows with batch_size > 1 on one server are the load test's dynamic-batching server (take the
first waiting request, hold the batch open up to a window for more, serve it): sized by an
exact decomposition of a request's delay over the arrivals after the previous batch closed,
with the batch queue's wait (E_b/G/1) fitted to its exact P(W > 0) and E[W] ("dynamic
batching" below).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from contracts.errors import InputError

from .batching import batching_max_qps
from .service_time import ServiceTime, worst_value

Method = Literal["cramer-lundberg", "allen-cunneen"]
METHODS = ("cramer-lundberg", "allen-cunneen")
_GRID = 48  # coarse search points before bisection: the feasible set need not be an interval
_BISECT = 32


def erlang_c(servers: np.ndarray | int, offered_load: np.ndarray | float) -> np.ndarray:
    """P(an arrival waits) in M/M/c with c servers and offered load a = lambda/mu (Erlangs).

    Built on the Erlang B recursion B(k) = a·B(k-1) / (k + a·B(k-1)), which never forms a^c or
    c!, so it stays stable for thousands of servers. Returns 1 where a >= c (unstable queue).
    """
    c = np.asarray(servers)
    a = np.asarray(offered_load, float)
    if np.any(c < 1) or np.any(c != np.floor(c)):
        raise InputError(f"servers must be a positive integer; got {worst_value(c.astype(float))}")
    if np.any(a < 0) or not np.all(np.isfinite(a)):
        raise InputError("offered load must be finite and >= 0")
    c, a = np.broadcast_arrays(c.astype(int), a)
    b = np.ones(a.shape)
    for k in range(1, int(c.max(initial=1)) + 1):
        b = np.where(k <= c, a * b / (k + a * b), b)
    rho = a / c
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rho < 1, b / (1 - rho * (1 - b)), 1.0)


def allen_cunneen_wait_ms(service: ServiceTime, qps: np.ndarray | float,
                          servers: np.ndarray | int = 1) -> np.ndarray:
    """Mean wait in queue (ms) for M/G/c: Erlang C / (c·mu - lambda) · (1 + cs²) / 2."""
    lam, c, mean = np.asarray(qps, float) / 1000, np.asarray(servers), service.mean_ms
    rho = lam * mean / c
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = erlang_c(c, lam * mean) / (c / mean - lam) * (1 + service.scv) / 2
    return np.where(rho < 1, wait, np.inf)


def _tail_params(service: ServiceTime, x: np.ndarray, c: np.ndarray, method: str):
    """(lambda per ms, wait decay eta, wait prefactor q) at search coordinate x.

    cramer-lundberg: x = eta/c, lambda = c·x / (M_S(x) - 1) falls as x grows.
    allen-cunneen: x = 1 - rho.
    """
    mean = service.mean_ms
    if method == "allen-cunneen":
        lam = (1 - x) * c / mean
        eta = 2 * (c / mean - lam) / (1 + service.scv)
        return lam, eta, erlang_c(c, lam * mean)
    m1, d, p = service.mgf_excess(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lam = c * x / m1
        rho = 1 - d / m1
        k_super = d / (x * p - d)  # (1 - rho) / (lambda·M'(x)/c - 1), cancellation-free
        q = erlang_c(c, np.clip(rho, 0, 1 - 1e-15) * c) * k_super / rho
    return lam, c * x, np.clip(np.nan_to_num(q, nan=1.0), 0.0, 1.0)


def _response_sf(service, t_ms, eta, q) -> np.ndarray:
    """P(W + S > t) with P(W > w) = q·exp(-eta·w)."""
    return np.minimum(service.sf(t_ms) + q * service.waiting_term(t_ms, eta), 1.0)


def _x_range(service: ServiceTime, method: str, shape) -> tuple[np.ndarray, np.ndarray]:
    """Search interval from utilization ~1 - 1e-6 to ~0 (near x = 0, 1 - rho ~ x·E[S²]/2E[S])."""
    if method == "allen-cunneen":
        return np.full(shape, 1e-6), np.full(shape, 1 - 1e-7)
    top = np.broadcast_to(service._bound(), shape)
    low = 2e-6 / (service.mean_ms * (1 + service.scv))
    return np.broadcast_to(np.minimum(low, top * 1e-3), shape), top


def _check(method: str, percentile, latency_ms) -> None:
    if method not in METHODS:
        raise InputError(f"queueing method must be one of {', '.join(METHODS)}; got {method!r}")
    p, t = np.asarray(percentile, float), np.asarray(latency_ms, float)
    if np.any(~np.isfinite(p) | (p <= 0) | (p >= 100)):
        raise InputError(f"SLA percentile must be in (0, 100); got {worst_value(p)}")
    if np.any(np.isnan(t) | (t <= 0)):
        raise InputError(f"SLA latency_ms must be > 0; got {float(np.min(t))}")


def max_qps_per_replica(service: ServiceTime, percentile: np.ndarray | float,
                        latency_ms: np.ndarray | float, *, servers: np.ndarray | int = 1,
                        batch_size: np.ndarray | int = 1,
                        batch_window_ms: np.ndarray | float = np.inf,
                        method: Method = "cramer-lundberg") -> np.ndarray:
    """Requests per second one replica sustains with the SLA percentile of the response time
    under `latency_ms`; 0 where even an idle replica misses it.

    `service` is the latency of one batch of `batch_size` (padded: whatever its fill). Rows with
    batch_size > 1 and one server use the dynamic-batching model (batching_max_qps, "dynamic
    batching" below), which roi.simulation's batching server checks; batch size 1, and
    batching over several servers, use the M/G/c model above, the latter costed
    conservatively (batches taken as Poisson, the first request waiting for batch_size - 1
    more arrivals capped by the window)."""
    _check(method, percentile, latency_ms)
    b = np.asarray(batch_size, float)
    shape = np.broadcast_shapes(service.mean_ms.shape, np.shape(percentile),
                                np.shape(latency_ms), np.shape(servers), b.shape,
                                np.shape(batch_window_ms))
    batching = np.broadcast_to((b > 1) & (np.asarray(servers) == 1), shape)
    if not batching.any():
        return _mgc_max_qps(service, percentile, latency_ms, servers, b, batch_window_ms,
                            method, shape)
    out = np.zeros(shape)
    pick = lambda x, rows: np.broadcast_to(np.asarray(x), shape)[rows]  # noqa: E731
    for rows, size in ((~batching, _mgc_max_qps), (batching, None)):
        if not rows.any():
            continue
        sub = _service_rows(service, shape, rows)
        args = (pick(percentile, rows), pick(latency_ms, rows))
        if size is None:
            out[rows] = batching_max_qps(sub, *args, pick(b, rows).astype(int),
                                          pick(batch_window_ms, rows).astype(float))
        else:
            out[rows] = size(sub, *args, pick(servers, rows), pick(b, rows),
                             pick(batch_window_ms, rows), method, (int(rows.sum()),))
    return out


def _service_rows(service: ServiceTime, shape, rows: np.ndarray) -> ServiceTime:
    k = service.weight.shape[-1]
    take = lambda a: np.broadcast_to(a, (*shape, k))[rows]  # noqa: E731
    return ServiceTime(take(service.weight), take(service.shift_ms), take(service.rate_per_ms))


def _mgc_max_qps(service, percentile, latency_ms, servers, b, batch_window_ms, method,
                 shape) -> np.ndarray:
    c = np.broadcast_to(np.asarray(servers), shape)
    target = np.broadcast_to(1 - np.asarray(percentile, float) / 100, shape)

    def feasible(x: np.ndarray) -> np.ndarray:
        lam, eta, q = _tail_params(service, x, c, method)
        with np.errstate(divide="ignore"):
            forming = np.minimum(batch_window_ms, (b - 1) / (b * lam))
        budget = latency_ms - np.where(b > 1, forming, 0.0)
        ok = _response_sf(service, np.maximum(budget, 0), eta, q) <= target
        return ok & (budget > 0) & (lam > 0)

    lo, hi = _x_range(service, method, shape)
    x = _first_feasible(feasible, lo, hi)
    lam, _, _ = _tail_params(service, np.where(np.isnan(x), hi, x), c, method)
    return np.where(np.isnan(x), 0.0, lam * 1000 * b)


def _first_feasible(feasible, lo: np.ndarray, hi: np.ndarray, points: int = _GRID,
                    steps: int = _BISECT, grid: np.ndarray | None = None) -> np.ndarray:
    """Smallest x in [lo, hi] (log scale) where feasible(x) holds; NaN where none does.

    A coarse grid first, because with batching the feasible set is an interval away from
    both ends; then bisection between the last infeasible and first feasible grid points."""
    if grid is None:
        grid = np.exp(np.linspace(np.log(lo), np.log(hi), points))  # (points, *shape)
    ok = np.stack([feasible(g) for g in grid])
    found = ok.any(0)
    first = np.argmax(ok, 0)
    take = lambda i: np.take_along_axis(grid, i[None], 0)[0]  # noqa: E731
    right, left = take(first), take(np.maximum(first - 1, 0))
    left = np.where(first == 0, right, left)
    for _ in range(steps):
        mid = np.sqrt(left * right)
        good = feasible(mid)
        right, left = np.where(good, mid, right), np.where(good, left, mid)
    return np.where(found, right, np.nan)


def wait_decay(service: ServiceTime, qps: np.ndarray | float, servers: np.ndarray | int = 1,
               method: Method = "cramer-lundberg") -> tuple[np.ndarray, np.ndarray]:
    """(eta per ms, prefactor q) of the waiting-time tail P(W > w) = q·exp(-eta·w) at `qps`."""
    lam = np.asarray(qps, float) / 1000
    c = np.asarray(servers)
    rho = lam * service.mean_ms / c
    if np.any(rho >= 1):
        raise InputError(f"qps is at or above the replica's capacity (utilization "
                         f"{float(np.max(rho)):.3f} >= 1)")
    if method == "allen-cunneen":
        return _tail_params(service, 1 - rho, c, method)[1:]
    # lambda(x) falls with x: bisect for the x that gives the requested rate
    lo, hi = _x_range(service, method, rho.shape)
    for _ in range(100):
        mid = np.sqrt(lo * hi)
        too_fast = _tail_params(service, mid, c, method)[0] > lam
        lo, hi = np.where(too_fast, mid, lo), np.where(too_fast, hi, mid)
    return _tail_params(service, np.sqrt(lo * hi), c, method)[1:]


def response_time_quantile_ms(service: ServiceTime, qps: np.ndarray | float,
                              percentile: np.ndarray | float, *, servers: np.ndarray | int = 1,
                              method: Method = "cramer-lundberg") -> np.ndarray:
    """The percentile of the response time (wait + service, ms) at a given request rate."""
    _check(method, percentile, 1.0)
    eta, q = wait_decay(service, qps, servers, method)
    target = 1 - np.asarray(percentile, float) / 100
    lo = np.zeros(np.broadcast_shapes(eta.shape, target.shape))
    hi = lo + service.mean_ms + 1 / eta
    for _ in range(200):  # grow until the bound is above the percentile
        short = _response_sf(service, hi, eta, q) > target
        if not short.any():
            break
        hi = np.where(short, hi * 2, hi)
    for _ in range(80):
        mid = (lo + hi) / 2
        above = _response_sf(service, mid, eta, q) > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return hi
