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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from .errors import InputError

Method = Literal["cramer-lundberg", "allen-cunneen"]
METHODS = ("cramer-lundberg", "allen-cunneen")
MAX_SAMPLE_ATOMS = 20_000  # raw samples beyond this are summarised by as many quantiles
_GRID = 48  # coarse search points before bisection: the feasible set need not be an interval
_BISECT = 32


@dataclass(frozen=True)
class ServiceTime:
    """Service time of one batch, in ms: a mixture of shifted exponentials.

    With probability weight[k], S = shift_ms[k] + Exp(rate_per_ms[k]); an infinite rate is an
    atom at shift_ms[k]. Arrays have shape (*rows, K): one distribution per row.
    """

    weight: np.ndarray
    shift_ms: np.ndarray
    rate_per_ms: np.ndarray

    @classmethod
    def from_mean_cv(cls, mean_ms: np.ndarray | float, cv: np.ndarray | float) -> "ServiceTime":
        """cv <= 1: a floor plus an exponential tail (shift mean·(1-cv), tail mean·cv), the shape
        of measured latencies; cv > 1: a two-phase hyperexponential with balanced means."""
        mean, cv = np.broadcast_arrays(np.asarray(mean_ms, float), np.asarray(cv, float))
        if not (np.all(np.isfinite(mean)) and np.all(mean > 0)):
            raise InputError(f"service time mean_ms must be positive; got {_worst(mean)}")
        if not (np.all(np.isfinite(cv)) and np.all(cv >= 0)):
            raise InputError(f"service time cv must be >= 0; got {_worst(cv)}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            p1 = 0.5 * (1 + np.sqrt(np.maximum(cv**2 - 1, 0) / (cv**2 + 1)))
            low = cv <= 1
            weight = np.stack([np.where(low, 1.0, p1), np.where(low, 0.0, 1 - p1)], -1)
            shift = np.stack([np.where(low, mean * (1 - cv), 0.0), np.zeros_like(mean)], -1)
            rate1 = np.where(low, np.where(cv > 0, 1 / (mean * cv), np.inf), 2 * p1 / mean)
            rate2 = np.where(low, np.inf, 2 * (1 - p1) / mean)
        return cls(weight, shift, np.stack([rate1, rate2], -1))

    @classmethod
    def from_samples(cls, samples_ms: np.ndarray) -> "ServiceTime":
        """The empirical distribution of measured per-batch latencies (one row)."""
        x = np.sort(np.asarray(samples_ms, float).ravel())
        if x.size == 0 or not np.all(np.isfinite(x)) or x[0] <= 0:
            low = x.min() if x.size else "-"
            raise InputError("service-time samples must be a non-empty set of positive, finite "
                             f"milliseconds; got {x.size} samples, min {low}")
        if x.size > MAX_SAMPLE_ATOMS:  # keeps the MGF sums fast; quantiles keep the tail
            x = np.quantile(x, (np.arange(MAX_SAMPLE_ATOMS) + 0.5) / MAX_SAMPLE_ATOMS)
        return cls(np.full(x.size, 1 / x.size), x, np.full(x.size, np.inf))

    @property
    def mean_ms(self) -> np.ndarray:
        return np.sum(self.weight * (self.shift_ms + _inv(self.rate_per_ms)), -1)

    @property
    def scv(self) -> np.ndarray:
        """Squared coefficient of variation, Var(S) / E[S]²."""
        tail = _inv(self.rate_per_ms)
        second = np.sum(self.weight * ((self.shift_ms + tail) ** 2 + tail**2), -1)
        return second / self.mean_ms**2 - 1

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws from a one-row distribution (for simulation)."""
        k = rng.choice(self.weight.shape[-1], size=n, p=self.weight / self.weight.sum())
        tail = rng.exponential(1.0, n) * _inv(self.rate_per_ms)[k]
        return self.shift_ms[k] + tail

    def mgf(self, s: np.ndarray) -> np.ndarray:
        """E[exp(s·S)] for 0 <= s < min rate."""
        return 1 + self.mgf_excess(s)[0]

    def mgf_excess(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(M(s) - 1, M(s) - 1 - s·E[S], M'(s) - E[S]) with M the MGF of S.

        Near s = 0 (utilization near 1) these differences are what the tail depends on, and
        forming them as differences of M would cancel every significant digit; each is built
        here from terms that are all >= 0 for s >= 0."""
        s, d, r = _col(s), self.shift_ms, self.rate_per_ms
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = np.minimum(s * d, 700.0)
            g = np.where(y < 1e-2, y * y / 2 * (1 + y / 3 + y * y / 12 + y**3 / 60),
                         np.expm1(y) - y)  # e^y - 1 - y
            finite = np.isfinite(r)
            beta = np.where(finite, s / r, 0.0)
            h = np.where(finite, s * s / (r * (r - s)), 0.0)  # r/(r-s) - 1 - s/r
            ab_1 = np.expm1(y) * (1 + beta + h) + beta + h  # e^{sd}·r/(r-s) - 1
            excess = h + y * (beta + h) + g * (1 + beta + h)
            tail = np.where(finite, 1 / (r - s), 0.0)
            prime = ab_1 * (d + tail) + np.where(finite, s / (r * (r - s)), 0.0)
        w = self.weight
        return np.sum(w * ab_1, -1), np.sum(w * excess, -1), np.sum(w * prime, -1)

    def sf(self, t_ms: np.ndarray) -> np.ndarray:
        """P(S > t)."""
        u = _col(t_ms) - self.shift_ms
        with np.errstate(invalid="ignore", over="ignore"):
            expo = np.exp(-self.rate_per_ms * np.maximum(u, 0))
        part = np.where(u < 0, 1.0, np.where(np.isinf(self.rate_per_ms), 0.0, expo))
        return np.sum(self.weight * part, -1)

    def waiting_term(self, t_ms: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """E[exp(-eta·(t - S)); S <= t]: how an Exp(eta) wait adds to S in P(W + S > t)."""
        u, eta, r = _col(t_ms) - self.shift_ms, _col(eta), self.rate_per_ms
        u_pos = np.maximum(u, 0)
        lo, gap = np.minimum(eta, r), np.abs(r - eta)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            # r·(e^{-eta·u} - e^{-r·u}) / (r - eta), written without cancellation or overflow
            spread = np.where(gap * u_pos < 1e-12, u_pos, -np.expm1(-gap * u_pos) / gap)
            finite = r * np.exp(-lo * u_pos) * spread
        part = np.where(np.isinf(r), np.exp(-eta * u_pos), finite)
        return np.sum(self.weight * np.where(u < 0, 0.0, part), -1)

    def _bound(self) -> np.ndarray:
        """Largest s (per row) where the MGF search stays finite and meaningful."""
        scale = np.max(np.where(self.weight > 0, self.shift_ms + _inv(self.rate_per_ms), 0), -1)
        rmin = np.min(np.where(self.weight > 0, self.rate_per_ms, np.inf), -1)
        return np.minimum(rmin * (1 - 1e-9), 40.0 / scale)


def _inv(rate: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(np.isinf(rate), 0.0, 1 / rate)


def _col(x) -> np.ndarray:
    return np.asarray(x, float)[..., None]


def _worst(x: np.ndarray) -> float:
    bad = x[~(np.isfinite(x) & (x > 0))] if x.size else x
    return float(bad.flat[0]) if bad.size else float(np.min(x))


def erlang_c(servers: np.ndarray | int, offered_load: np.ndarray | float) -> np.ndarray:
    """P(an arrival waits) in M/M/c with c servers and offered load a = lambda/mu (Erlangs).

    Built on the Erlang B recursion B(k) = a·B(k-1) / (k + a·B(k-1)), which never forms a^c or
    c!, so it stays stable for thousands of servers. Returns 1 where a >= c (unstable queue).
    """
    c = np.asarray(servers)
    a = np.asarray(offered_load, float)
    if np.any(c < 1) or np.any(c != np.floor(c)):
        raise InputError(f"servers must be a positive integer; got {_worst(c.astype(float))}")
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
        raise InputError(f"SLA percentile must be in (0, 100); got {_worst(p)}")
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
    batch_size > 1 and one server use the dynamic-batching model (_batching_max_qps: E_b/G/1
    batches, forming delay capped by the window), checked against roi.simulation's batching
    server; batch size 1, and batching over several servers, use the M/G/c model above, the
    latter costed conservatively (batches taken as Poisson, the first request waiting for
    batch_size - 1 more arrivals capped by the window)."""
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
            out[rows] = _batching_max_qps(sub, *args, pick(b, rows).astype(int),
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


# ------------------------------------------------------------------------ dynamic batching
#
# The server (bench/loadgen.py BatchingSUT, simulated by roi.simulation.batch_response_ms):
# one worker; when free it takes the first waiting request, then more until it holds b or
# `window` ms have passed, and serves the batch in S (the padded batch's time). A request's
# response is D + S with D its delay to the batch's start. With requests at rate lambda:
#
# - Full batches (infinite window) are exactly an E_b/G/1 queue of batches: batch
#   inter-arrivals are Gamma(b, lambda). A request at position i of its batch starts after
#   max(U_i, F_i): U_i = the previous batch's wait + service - the i arrivals' gaps since it
#   was ready (the server's remaining work), F_i ~ Gamma(b - i, lambda) the wait for the
#   batch to fill; U_i and F_i are independent. The batch wait's tail is C·exp(-eta·t) with
#   eta the Lundberg root M_S(eta)·(lambda/(lambda + eta))^b = 1 and C from the b - 1 roots
#   of lambda^b·B*(s) = (lambda - s)^b in Re s > 0 (the E_k/G/1 solution); U_i's tail is
#   then C·(1 + eta/lambda)^(b-i)·exp(-eta·t), averaged over the b positions.
# - A window caps the forming wait (F -> min(F, w)); a request that found the server busy
#   and its batch short when the server frees waits up to w more (D <= U + min(F, w)).
# - Under a short window at light load batches run part-full, so the server is busy more
#   than lambda·E[S]/b: a fraction rho_S solving rho_S·(1 + lambda·w + rho_S·lambda·E[S]) =
#   lambda·E[S] (batch size 1 + arrivals in the window + arrivals during a service), and an
#   arrival that finds it busy waits the residual service (taken as exponential, mean
#   E[S](1 + cs²)/2). U's tail is the slower of the two, with the larger prefactor.
# The eta decay of long waits is the same for every window: with a queue of >= b requests
# every policy serves full batches at once. roi.simulation checks the whole (issue 3's
# benchmark, tests/benchmarks/test_roi_sizing.py).

_FORMING_SLICES = 7  # tail slices of the forming delay (probabilities 1/2, 1/4, ... of it)
_ROOT_ITERATIONS = 6  # fixed-point steps per E_b/G/1 root: the prefactor within ~1-3%
_BATCH_BISECT = 16
_ROOT_TABLE_STEP = 4  # the root factor is tabulated at every 4th search point


@lru_cache(maxsize=64)
def _forming_atoms(b: int) -> tuple[np.ndarray, np.ndarray]:
    """(probability, lambda·F) atoms of the fill wait F of a random request in a full batch of
    b: lambda·F ~ Gamma(k, 1), k uniform on 0 ... b-1 (k = 0, the last to arrive: no wait).
    Slices of tail probability halve, so the percentile's tail keeps its resolution; each
    atom sits at its slice's conditional mean."""
    if b <= 1:
        return np.array([1.0]), np.array([0.0])
    u = np.linspace(0.0, b + 12 * np.sqrt(b) + 40, 20_001)
    j = np.arange(b - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pois = -u[:, None] + j * np.log(u)[:, None] - np.cumsum(np.log(np.maximum(j, 1)))
    pois = np.exp(np.where(u[:, None] > 0, log_pois, np.where(j == 0, 0.0, -np.inf)))
    sf = pois @ (b - 1 - j) / b  # P(lambda·F > u)
    dens = pois.sum(1) / b
    edges = sf[0] * np.append(0.5 ** np.arange(_FORMING_SLICES), 0.0)
    probs, values = [1 / b], [0.0]
    for hi, lo in zip(edges[:-1], edges[1:]):
        m = (sf <= hi) & (sf > lo)
        probs.append(hi - lo)
        values.append(float(np.sum(u[m] * dens[m]) / np.sum(dens[m])))
    return np.array(probs), np.array(values)


def _root_factor(service: ServiceTime, lam: np.ndarray, eta: np.ndarray,
                 b: np.ndarray) -> np.ndarray:
    """prod_j (1 + eta/s_j) over the b - 1 roots s_j (Re s_j > 0) of lambda^b·B*(s) =
    (lambda - s)^b, by fixed-point iteration s = lambda·(1 - omega_j·B*(s)^(1/b)) from
    lambda·(1 - omega_j); roots come in conjugate pairs, so half of them suffice. log B* keeps
    the mean shift's phase outside the log, so it stays continuous in s."""
    out = np.ones(lam.shape)
    for size in np.unique(b):
        rows = b == size
        used = np.any(service.weight[rows] > 0, 0)  # components with weight somewhere
        w, d, r = (a[rows][:, used][:, None, :] for a in
                   (service.weight, service.shift_ms, service.rate_per_ms))
        d0 = np.sum(w * d, -1)
        d, finite = d - d0[..., None], np.isfinite(r)
        j = np.arange(1, int(size) // 2 + 1)  # omega_j and omega_{b-j} give conjugate roots
        omega = np.exp(2j * np.pi * j / size)
        la = lam[rows][:, None]
        s = la * (1 - omega)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for _ in range(_ROOT_ITERATIONS):
                z = s[..., None]
                term = w * np.exp(-z * d) * np.where(finite, r / (r + z), 1.0)
                log_lst = -s * d0 + np.log(np.sum(term, -1))
                s = la * (1 - omega * np.exp(log_lst / size))
            f = np.abs(1 + eta[rows][:, None] / s) ** np.where(2 * j == size, 1, 2)
        out[rows] = np.prod(f, -1)
    return out


def _batch_tail(service: ServiceTime, x: np.ndarray, b: np.ndarray, window: np.ndarray,
                roots=None):
    """(lambda per ms, decay, prefactor) of the delay U to the server being free, at the
    Lundberg root x = eta of the E_b/G/1 batch queue: lambda = eta / (M_S(eta)^(1/b) - 1).
    `roots`: (log x, log root factor) tables to interpolate the root factor from."""
    mean = service.mean_ms
    m1, _, prime = service.mgf_excess(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = np.expm1(np.log1p(m1) / b)  # M^(1/b) - 1 = eta/lambda
        lam = x / e
        c_wait = (b - lam * mean) / (lam * (prime + mean) - b * (1 + m1) / (1 + e))
        if roots is None:
            c_wait = c_wait * _root_factor(service, lam, x, b)
        else:
            c_wait = c_wait * np.exp(_interp_rows(np.log(x), *roots))
        q = np.nan_to_num(c_wait * np.expm1(b * np.log1p(e)) / (b * e), nan=1.0)
        a = lam * mean
        lw = lam * window
        part_full = np.where(np.isinf(window), 0.0,
                             2 * a / ((1 + lw) + np.sqrt((1 + lw) ** 2 + 4 * a * a)))
        busy = np.clip(np.maximum(a / b, part_full), 0.0, 1.0)
    residual_rate = 2 / (mean * (1 + service.scv))
    # P(U > 0) is the busy fraction; an asymptotic constant above 1 (light load, where the
    # previous batch's residual service is the whole body of U) says nothing about the body
    q = np.where(q > 1, busy, np.clip(np.maximum(q, busy), 0.0, 1.0))
    return lam, np.minimum(x, residual_rate), q


def _interp_rows(x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Per-row linear interpolation: xs, ys of shape (points, rows), xs ascending."""
    i = np.clip(np.sum(xs <= x[None], 0), 1, xs.shape[0] - 1)[None]
    x0, x1 = np.take_along_axis(xs, i - 1, 0)[0], np.take_along_axis(xs, i, 0)[0]
    y0, y1 = np.take_along_axis(ys, i - 1, 0)[0], np.take_along_axis(ys, i, 0)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(np.nan_to_num((x - x0) / (x1 - x0)), 0.0, 1.0)
    return y0 + frac * (y1 - y0)


def _batch_response_sf(service: ServiceTime, t: np.ndarray, lam, eta, q, b, window):
    """P(D + S > t) for dynamic batching: the forming atoms f, and U with P(U > u) =
    q·exp(-eta·u): D = max(U, f) for f <= w, else (the window closes first) D = U + w while
    U < f - w, f while U < f, U beyond (so P(D > y) = P(U > y - w) below f, P(U > y) above)."""
    total = np.zeros(t.shape)
    sf_w, wt_w = service.sf(t - window), service.waiting_term(t - window, eta)
    for size in np.unique(b):
        rows = b == size
        sub = ServiceTime(service.weight[rows], service.shift_ms[rows],
                          service.rate_per_ms[rows])
        et, ee, qq, ww, la = t[rows], eta[rows], q[rows], window[rows], lam[rows]
        for p, u in zip(*_forming_atoms(int(size))):
            f = u / la
            sf_f, wt_f = sub.sf(et - f), sub.waiting_term(et - f, ee)
            with np.errstate(over="ignore", invalid="ignore"):
                tail_f = qq * np.exp(-ee * f) * wt_f
                held = sf_w[rows] + qq * (wt_w[rows] - np.exp(-ee * (f - ww)) * wt_f) + tail_f
            total[rows] += p * np.minimum(np.where(f > ww, held, sf_f + tail_f), 1.0)
    return total


def _batching_max_qps(service: ServiceTime, percentile: np.ndarray, latency_ms: np.ndarray,
                      b: np.ndarray, window: np.ndarray) -> np.ndarray:
    """max_qps_per_replica for rows of one server with batch_size b > 1 (1-D arrays); rows
    whose service has one component (cv <= 1) run apart, on that component alone."""
    single = np.all(service.weight[:, 1:] == 0, -1)
    out = np.zeros(b.shape)
    for rows, k in ((single, 1), (~single, service.weight.shape[-1])):
        if rows.any():
            sub = ServiceTime(*(a[rows][:, :k] for a in
                                (service.weight, service.shift_ms, service.rate_per_ms)))
            out[rows] = _batching_rows(sub, np.asarray(percentile, float)[rows],
                                       np.asarray(latency_ms, float)[rows], b[rows], window[rows])
    return out


def _batching_rows(service: ServiceTime, percentile, t, b, window) -> np.ndarray:
    target = 1 - percentile / 100
    grid = _batch_grid(service, b)
    coarse = grid[::_ROOT_TABLE_STEP]
    if not np.array_equal(coarse[-1], grid[-1]):
        coarse = np.concatenate([coarse, grid[-1:]])
    lam = np.stack([_batch_tail(service, g, b, window)[0] for g in coarse])  # cheap part
    with np.errstate(divide="ignore"):
        factor = np.log(np.stack([_root_factor(service, la, g, b)
                                  for la, g in zip(lam, coarse)]))
    roots = (np.log(coarse), np.nan_to_num(factor, nan=0.0, posinf=700.0, neginf=0.0))

    def feasible(x: np.ndarray) -> np.ndarray:
        lam, eta, q = _batch_tail(service, x, b, window, roots)
        ok = _batch_response_sf(service, t, lam, eta, q, b, window) <= target
        return ok & (lam > 0)

    x = _first_feasible(feasible, grid[0], grid[-1], steps=_BATCH_BISECT, grid=grid)
    lam = _batch_tail(service, np.where(np.isnan(x), grid[-1], x), b, window, roots)[0]
    return np.where(np.isnan(x), 0.0, lam * 1000)


_UTILIZATIONS = np.unique(np.concatenate([
    1 - np.geomspace(1e-4, 0.025, 5), np.linspace(0.025, 0.975, 20), np.geomspace(1e-4, 0.025, 5)]))


def _batch_grid(service: ServiceTime, b: np.ndarray) -> np.ndarray:
    """Search points x (ascending) at the utilizations _UTILIZATIONS of full batches, found by
    interpolating log x on a fine grid: a narrow feasible band (a tight SLA, where low rates
    wait to fill batches and high ones queue) is not skipped as a grid even in log x would."""
    scale = np.max(np.where(service.weight > 0, service.shift_ms + _inv(service.rate_per_ms),
                            0), -1)
    rmin = np.min(np.where(service.weight > 0, service.rate_per_ms, np.inf), -1)
    top = np.minimum(rmin * (1 - 1e-9), np.minimum(40.0 * b, 600.0) / scale)
    lo = np.minimum(2e-5 / (service.mean_ms * (1 + service.scv)), top * 1e-6)
    fine = np.exp(np.linspace(np.log(lo), np.log(top), 160))  # (160, rows)
    s, d, r = fine[..., None], service.shift_ms, service.rate_per_ms
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mgf = np.sum(service.weight * np.exp(np.minimum(s * d, 700.0))
                     * np.where(np.isinf(r), 1.0, r / (r - s)), -1)
        rho = fine / np.expm1(np.log(mgf) / b) * service.mean_ms / b  # falls with x
    rho = np.nan_to_num(rho, nan=0.0)
    target = _UTILIZATIONS[::-1][:, None]  # high load (small x) first
    i = np.clip(np.sum(rho[None] > target[:, None], 1), 1, fine.shape[0] - 1)  # (P, rows)
    r0, r1 = np.take_along_axis(rho, i - 1, 0), np.take_along_axis(rho, i, 0)
    x0, x1 = np.log(np.take_along_axis(fine, i - 1, 0)), np.log(np.take_along_axis(fine, i, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(np.nan_to_num((r0 - target) / (r0 - r1)), 0.0, 1.0)
    grid = np.exp(x0 + frac * (x1 - x0))
    return np.maximum.accumulate(np.concatenate([lo[None], grid, top[None]]), 0)


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
