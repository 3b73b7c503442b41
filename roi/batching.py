"""The load test's dynamic-batching server sized at an SLA: roi/sizing.py sends rows with
batch_size > 1 on one server here (batching_max_qps). The method is the comment below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .service_time import ServiceTime, inv_rate

# The server (bench/loadgen_sut.py BatchingSUT, simulated by roi.simulation.batch_response_ms):
# one worker; when free it takes the first waiting request, then more until it holds b or
# `window` (w) ms have passed, and serves the batch in S (the padded batch's time, whatever
# its fill). A request's response is R = D + S, D its delay to its batch's start.
#
# The model is exact but for one fit (the batch queue's wait W, below). Take the moment O a
# batch closes (its b-th request came, or its window ran out): arrivals after O are a Poisson
# process T_1 < T_2 < ..., and the server is free X = W + S' after O (S' that batch's time).
# - The i-th arrival (i <= b) joins the next batch unless its window closed first, and waits
#   D_i = max(U_i, min(U_i + w, F_i)): U_i = (X - T_1)^+ - (T_i - T_1) until the server is
#   free, F_i = T_b - T_i ~ Gamma(b - i) until the batch is full. So P(R > t) is E[requests
#   of a batch with D + S > t] / E[requests of a batch], and for tau = t - S >= 0 request i
#   counts with Pf_i·A_i + (1 - Pf_i)·B_i: the batch fills by tau (Pf_i = P(F_i <= tau)) and
#   the server is late (A_i = P(N((X - tau)^+) >= i)), or it does not and the window decides
#   (B_i = P(N((X + w - tau)^+) >= i) + E[e^{-lambda X}]·Pois(i - 1; lambda(w - tau)) for
#   tau < w), N(L) the arrivals in a span L: over X's shifted exponentials a Poisson count
#   plus a geometric one, in closed form. S goes by Gauss-Legendre nodes.
# - W is the same for every window: with Y the server's free time after a batch's first
#   request came, Y' = (Y^+ - Gamma(b - 1))^+ + S - Exp(lambda) however the window closes a
#   batch, so W' = (W + S - Gamma(b))^+, the E_b/G/1 queue. Its P(W = 0) = b·lambda^{b-1}(1 -
#   rho) / prod s_j and E[W] = sum 1/s_j + (lambda²E[S²] - b(b - 1)) / (2·lambda(b -
#   lambda·E[S])) are exact (s_j the b - 1 roots of lambda^b·B*(s) = (lambda - s)^b in
#   Re s > 0: the E_k/G/1 solution); beyond 0, W is fitted as x0 + Exp(eta), eta the Lundberg
#   root of M_S(eta)·(lambda/(lambda + eta))^b = 1 (_batch_wait).
# A Monte Carlo of the decomposition with W simulated agrees with roi.simulation within its
# noise (1-2%); the fit moves P(R > t) by a few % (9% at most, measured) where W matters.
# tests/benchmarks/test_roi_sizing.py sweeps it against the simulation, and
# tests/unit/test_sizing_property.py holds it there as a property.
#
# It replaces a model that took U as q·Exp(eta) with, below heavy load, eta = 2/(E[S](1 +
# cs²)) (the residual of the batch in service) and q the busy fraction: far too heavy a tail
# for low-CV service. At the SLA edge its p99 ran high (issue 16: 107.5 ms where the simulation
# gives 99.6 at 180 QPS) and the rate collapsed (7.07 QPS where the simulation sustains 181).

_RATE_GRID = np.array([0.999, 0.99, 0.96, 0.9, 0.8, 0.65, 0.45, 0.28, 0.15, 0.07, 0.03, 0.01,
                       3e-3, 1e-3, 1e-4])  # utilizations scanned down from capacity


_RATE_STEPS = 5  # Illinois steps on log(P(R > t) / target) between grid rates


_DIP_EXCESS = np.log(3.0)  # a dip of P within 3x of the target: look between its neighbours


_DIP_STEPS = 10  # golden-section steps of that look


# iteration steps from scratch / from a nearby rate's result (_Warm): the E_k/G/1 roots'
# fixed point, the Lundberg root's safeguarded Newton (relative error < 1e-4 either way)
_ROOT_STEPS = (12, 3)


_ETA_STEPS = (30, 10)


_GL_NODES = 4  # Gauss-Legendre nodes per panel of the own service time S


_TAIL_PANEL = 6.0  # S's first panel spans 6 mean tails: its density's bulk
_MAX_PARTS = 16  # services of more atoms (raw samples) are binned first (_compact)


_BIN_EDGES = np.concatenate([np.linspace(0.0, 0.9, 10),
                             1 - 0.1 * 0.5 ** np.arange(1, 15), [1.0]])  # finer in the tail


@dataclass(frozen=True)
class _BatchRows:
    """Rows (1-D) of one batch size b and what does not depend on the rate: the nodes
    tau = t - S of the own service time, P(S > t), the Lundberg root's upper bound."""

    service: ServiceTime
    t: np.ndarray
    window: np.ndarray
    b: int
    tau: np.ndarray  # (rows, nodes)
    tau_weight: np.ndarray
    service_sf: np.ndarray
    eta_hi: np.ndarray

    @classmethod
    def of(cls, service: ServiceTime, t: np.ndarray, window: np.ndarray, b: int
           ) -> "_BatchRows":
        tau, weight = _own_service_nodes(service, t, window)
        return cls(service, t, window, b, tau, weight, service.sf(t), _eta_top(service, b))

    def take(self, rows: np.ndarray) -> "_BatchRows":
        s = self.service
        return _BatchRows(ServiceTime(s.weight[rows], s.shift_ms[rows], s.rate_per_ms[rows]),
                          self.t[rows], self.window[rows], self.b,
                          *(a[rows] for a in (self.tau, self.tau_weight, self.service_sf,
                                              self.eta_hi)))


@dataclass
class _Warm:
    """Where a rate's root searches start: a nearby rate's roots (per row)."""

    roots: np.ndarray  # (rows, b // 2) complex: the E_k/G/1 roots
    eta: np.ndarray  # the Lundberg root
    cold: bool = True  # a guess, not a nearby rate's result: iterate longer

    def take(self, rows: np.ndarray) -> "_Warm":
        return _Warm(self.roots[rows], self.eta[rows], self.cold)

    def put(self, rows: np.ndarray, new: "_Warm") -> None:
        self.roots[rows], self.eta[rows], self.cold = new.roots, new.eta, False

    def update(self, new: "_Warm") -> None:
        self.roots, self.eta, self.cold = new.roots, new.eta, False


def batching_max_qps(service: ServiceTime, percentile: np.ndarray, latency_ms: np.ndarray,
                      b: np.ndarray, window: np.ndarray) -> np.ndarray:
    """max_qps_per_replica for rows of one server with batch_size b > 1 (1-D arrays), one
    batch size at a time; rows whose service has one component (cv <= 1) run apart, on that
    component alone. A row whose batch alone misses the SLA (R >= S) is 0 at once."""
    target = 1 - np.asarray(percentile, float) / 100
    t = np.asarray(latency_ms, float)
    possible = service.sf(t) <= target
    single = np.all(service.weight[:, 1:] == 0, -1)
    out = np.zeros(b.shape)
    for size in np.unique(b[possible]):
        for kind, k in ((single, 1), (~single, service.weight.shape[-1])):
            rows = possible & kind & (b == size)
            if rows.any():
                sub = _compact(ServiceTime(*(a[rows][:, :k] for a in (
                    service.weight, service.shift_ms, service.rate_per_ms))))
                group = _BatchRows.of(sub, t[rows], window[rows], int(size))
                out[rows] = _batching_rows(group, target[rows]) * 1000
    return out


def _compact(service: ServiceTime) -> ServiceTime:
    """A service of more than _MAX_PARTS atoms (ServiceTime.from_samples) as one atom per
    probability bin of _BIN_EDGES, at the bin's mean: the mean stays, the tail keeps its
    resolution, and the model's cost stops growing with the samples."""
    if service.weight.shape[-1] <= _MAX_PARTS or not np.all(np.isinf(service.rate_per_ms)):
        return service
    order = np.argsort(service.shift_ms, -1)
    w, d = (np.take_along_axis(a, order, -1) for a in (service.weight, service.shift_ms))
    mid = (np.cumsum(w, -1) - w / 2) / np.sum(w, -1, keepdims=True)
    bins = np.clip(np.searchsorted(_BIN_EDGES, mid, side="right") - 1, 0, _BIN_EDGES.size - 2)
    weight = np.zeros((w.shape[0], _BIN_EDGES.size - 1))
    total = np.zeros_like(weight)
    for row in range(w.shape[0]):
        np.add.at(weight[row], bins[row], w[row])
        np.add.at(total[row], bins[row], w[row] * d[row])
    with np.errstate(invalid="ignore"):
        shift = np.where(weight > 0, total / weight, 0.0)
    return ServiceTime(weight, shift, np.full(weight.shape, np.inf))


def _batching_rows(rows: _BatchRows, target: np.ndarray) -> np.ndarray:
    """The highest rate (per ms) whose P(R > t) <= target. A window makes low rates miss
    the SLA too (batches wait to fill) and can split the feasible rates into two bands (light
    load, and where batches fill fast but do not queue yet), so: scan _RATE_GRID down from
    capacity to the first rate that meets the SLA, look for a band narrower than the grid at
    the scan's dips above it (_dip), and close in on the highest band's upper end."""
    capacity = rows.b / rows.service.mean_ms
    excess, warm = _scan(rows, target, capacity)
    i, k = np.arange(capacity.size), np.argmax(excess <= 0, 1)  # first grid rate that meets
    good = np.where(excess[i, k] <= 0, capacity * _RATE_GRID[k], np.nan)
    bad = np.where(k > 0, capacity * _RATE_GRID[np.maximum(k - 1, 0)], capacity)
    f_good = excess[i, k]
    f_bad = np.where(k > 0, excess[i, np.maximum(k - 1, 0)], -np.log(target))
    center, dips = _dips(excess)
    if dips.size:  # a band found there lies above the one the scan found
        found = _dip(rows.take(dips), target[dips], capacity[dips], excess[dips], center)
        higher = ~np.isnan(found[0])
        for values, new in zip((good, bad, f_good, f_bad), found):
            values[dips[higher]] = new[higher]
    out = np.zeros(capacity.size)
    found = np.flatnonzero(~np.isnan(good))
    if found.size:
        out[found] = _crossing(rows.take(found), target[found], good[found], bad[found],
                               f_good[found], f_bad[found], warm.take(found))
    return out


def _scan(rows: _BatchRows, target: np.ndarray, capacity: np.ndarray
          ) -> tuple[np.ndarray, "_Warm"]:
    """log(P(R > t) / target) at the grid rates, (rows, grid), down to each row's first that
    meets the SLA (inf below it); and the roots at the last rate each row saw."""
    lam0 = capacity * _RATE_GRID[0]
    warm = _Warm(_root_start(lam0, rows.b), _heavy_traffic_eta(rows.service, lam0, rows.b))
    excess = np.full((capacity.size, _RATE_GRID.size), np.inf)
    left = np.arange(capacity.size)
    for k, rho in enumerate(_RATE_GRID):
        excess[left, k], new = _excess(rows.take(left), capacity[left] * rho, warm.take(left),
                                       target[left])
        warm.put(left, new)
        left = left[excess[left, k] > 0]
        if not left.size:
            break
    return excess, warm


def _dips(excess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grid index, row) of each row's lowest local minimum of log(P / target) among the
    grid rates scanned above its first feasible one, where that minimum is within
    _DIP_EXCESS of the target: a feasible band may hide between its neighbours."""
    inf = np.full((excess.shape[0], 1), np.inf)
    above, below = np.hstack([inf, excess[:, :-1]]), np.hstack([excess[:, 1:], inf])
    dip = (excess > 0) & (excess < above) & (excess < below) & (excess < _DIP_EXCESS)
    rows = np.flatnonzero(dip.any(1))
    return np.argmin(np.where(dip, excess, np.inf)[rows], 1), rows


def _dip(rows: _BatchRows, target: np.ndarray, capacity: np.ndarray, excess: np.ndarray,
         k: np.ndarray) -> tuple[np.ndarray, ...]:
    """Golden-section search for the lowest P(R > t) between the grid neighbours of grid
    point k (a dip of the scan). Returns (good, bad, f_good, f_bad) for _crossing: good,
    the highest rate seen that meets the SLA, is NaN where the dip stays above it."""
    i, last = np.arange(k.size), _RATE_GRID.size - 1
    rates = capacity[:, None] * _RATE_GRID
    top = np.where(k > 0, rates[i, np.maximum(k - 1, 0)], capacity)  # P > target there
    f_bad = np.where(k > 0, excess[i, np.maximum(k - 1, 0)], -np.log(target))
    lo = np.log(np.where(k < last, rates[i, np.minimum(k + 1, last)], rates[i, k] / 3))
    hi, ratio = np.log(top), (np.sqrt(5) - 1) / 2
    good, f_good = np.full(k.size, np.nan), np.full(k.size, np.nan)
    lam = np.exp(hi - ratio * (hi - lo))
    warm = _Warm(_root_start(lam, rows.b), _heavy_traffic_eta(rows.service, lam, rows.b))

    def probe(x: np.ndarray) -> np.ndarray:
        nonlocal good, f_good
        f, new = _excess(rows, np.exp(x), warm, target)
        warm.update(new)
        higher = (f <= 0) & ~(good >= np.exp(x))
        good, f_good = np.where(higher, np.exp(x), good), np.where(higher, f, f_good)
        return f

    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = probe(x1), probe(x2)
    for _ in range(_DIP_STEPS):
        lower = f1 < f2  # the minimum lies in [lo, x2]
        hi, lo = np.where(lower, x2, hi), np.where(lower, lo, x1)
        x_new = np.where(lower, hi - ratio * (hi - lo), lo + ratio * (hi - lo))
        f_new = probe(x_new)
        x1, f1, x2, f2 = (np.where(lower, x_new, x2), np.where(lower, f_new, f2),
                          np.where(lower, x1, x_new), np.where(lower, f1, f_new))
    return good, top, f_good, f_bad


def _crossing(rows: _BatchRows, target: np.ndarray, good: np.ndarray, bad: np.ndarray,
              f_good: np.ndarray, f_bad: np.ndarray, warm: "_Warm") -> np.ndarray:
    """The rate in [good, bad] where f = log(P(R > t) / target) crosses 0 (f(good) <= 0 <
    f(bad)): Illinois steps (regula falsi that halves a stale end's f) on log rate; returns
    the last rate that met the SLA."""
    x_good, x_bad = np.log(good), np.log(bad)
    side = np.zeros(good.shape, int)
    for _ in range(_RATE_STEPS):
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (x_good * f_bad - x_bad * f_good) / (f_bad - f_good)
        x = np.where(np.isfinite(x) & (x > x_good) & (x < x_bad), x, (x_good + x_bad) / 2)
        f, new = _excess(rows, np.exp(x), warm, target)
        warm.update(new)
        meets = f <= 0
        f_bad = np.where(meets & (side == -1), f_bad / 2, f_bad)
        f_good = np.where(~meets & (side == 1), f_good / 2, f_good)
        x_good, f_good = np.where(meets, x, x_good), np.where(meets, f, f_good)
        x_bad, f_bad = np.where(meets, x_bad, x), np.where(meets, f_bad, f)
        side = np.where(meets, -1, 1)
    return np.exp(x_good)


def _excess(rows: _BatchRows, lam: np.ndarray, warm: "_Warm", target: np.ndarray
            ) -> tuple[np.ndarray, "_Warm"]:
    """log(P(R > t) / target) at rate lam: <= 0 where the rate meets the SLA."""
    sf, new = _batch_response_sf(rows, lam, warm)
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(sf, 1e-300) / target), new


def _batch_response_sf(rows: _BatchRows, lam: np.ndarray, warm: "_Warm"
                       ) -> tuple[np.ndarray, "_Warm"]:
    """P(R > t) at rate lam (per ms): the decomposition above, summed over the b arrivals
    after O and the own service's nodes; and the roots, to start a nearby rate from."""
    b, service = rows.b, rows.service
    eta = _lundberg_root(service, lam, b, warm.eta, rows.eta_hi, _ETA_STEPS[not warm.cold])
    p, x0, roots = _batch_wait(service, lam, eta, b, warm.roots, _ROOT_STEPS[not warm.cold])
    free = _free_time(service, p, x0, eta)  # X's components: (KX, rows) each
    idle = _laplace(free, lam)  # E[e^{-lambda X}]: the batch's first request finds it idle
    inf_w = np.isinf(rows.window)
    w, tau = np.where(inf_w, 0.0, rows.window)[:, None], rows.tau
    late = _count_tails(lam, free, 0.0, tau, b)  # A_i: (b, rows, nodes)
    if np.all(w == 0) and not inf_w.any():
        num = np.sum(late, 0)  # no window: B_i = A_i
    else:
        held = _count_tails(lam, free, np.maximum(w - tau, 0.0), np.maximum(tau - w, 0.0), b)
        first = _poisson_pmfs(lam[:, None] * np.maximum(w - tau, 0.0), b)[:b]
        held = np.where(inf_w[:, None], 1.0, held + idle[:, None] * (tau < w) * first)
        full = _poisson_tails(lam[:, None] * tau, b)[b - 1::-1]  # P(F_i <= tau), i = 1 ... b
        num = np.sum(full * (late - held) + held, 0)
    members = _members(free, idle, lam, w[:, 0], inf_w, b)
    total = np.sum(rows.tau_weight * num, -1) + members * rows.service_sf
    return np.clip(total / members, 0.0, 1.0), _Warm(roots, eta, False)


def _members(free, idle: np.ndarray, lam: np.ndarray, w: np.ndarray, inf_w: np.ndarray,
             b: int) -> np.ndarray:
    """E[requests per batch] = sum_i P(i joins): P(N(X + w) >= i) + E[e^{-lambda X}]·
    Pois(i - 1; lambda·w), the second for a batch whose first request found the server idle."""
    if inf_w.all():
        return np.full(lam.shape, float(b))
    joins = np.sum(_count_tails(lam, free, w[:, None], 0.0, b), 0)[:, 0]
    full = _poisson_tails(lam * w, b)[b]  # P(Pois(lambda·w) >= b)
    return np.where(inf_w, float(b), joins + idle * (1 - full))


def _heavy_traffic_eta(service: ServiceTime, lam: np.ndarray, b: int) -> np.ndarray:
    """The Lundberg root's diffusion estimate 2(E[A] - E[S]) / (Var A + Var S), A ~
    Gamma(b, lambda): a start for _lundberg_root near capacity."""
    var_s = service.scv * service.mean_ms**2
    return 2 * (b / lam - service.mean_ms) / (b / lam**2 + var_s)


def _lundberg_root(service: ServiceTime, lam: np.ndarray, b: int, start: np.ndarray,
                   hi: np.ndarray, steps: int) -> np.ndarray:
    """eta > 0 with g(eta) = log M_S(eta) - b·log(1 + eta/lambda) = 0 (g is convex, g(0) = 0,
    g'(0) < 0 below capacity): safeguarded Newton from `start` inside a bracket that the
    signs of g shrink; a step that leaves it bisects (in log eta). Where the root lies past
    `hi` (exponential tails at low rates: W is ~0 there) it stays at hi."""
    w, d = service.weight, service.shift_ms
    top = np.max(np.where(w > 0, d, -np.inf), -1)  # factored out: e^{s·shift} cannot overflow
    d_top = d - top[:, None]
    r = np.where(np.isfinite(service.rate_per_ms), service.rate_per_ms, 1e300)  # atoms: 1
    lo = np.minimum(1e-12 / service.mean_ms, hi * 1e-12)
    x = np.clip(np.nan_to_num(start, nan=1.0), lo * 10, hi)
    for _ in range(steps):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gap = r - x[:, None]
            term = w * np.exp(x[:, None] * d_top) * (r / gap)
            m = np.sum(term, -1)
            g = x * top + np.log(m) - b * np.log1p(x / lam)
            newton = x - g / (np.sum(term * (d + 1 / gap), -1) / m - b / (lam + x))
        above = g > 0
        lo, hi = np.where(above, lo, x), np.where(above, x, hi)
        x = np.where((newton >= lo) & (newton <= hi), newton, np.sqrt(lo * hi))
    return x


def _eta_top(service: ServiceTime, b: int) -> np.ndarray:
    """Upper end of the Lundberg root's range: the MGF's reach."""
    scale = np.max(np.where(service.weight > 0, service.shift_ms + inv_rate(service.rate_per_ms),
                            0), -1)
    rmin = np.min(np.where(service.weight > 0, service.rate_per_ms, np.inf), -1)
    return np.minimum(rmin * (1 - 1e-12), np.minimum(40.0 * b, 600.0) / scale)


def _root_start(lam: np.ndarray, b: int) -> np.ndarray:
    """lambda·(1 - omega_j), j = 1 ... b/2: where the fixed point for root j starts."""
    j = np.arange(1, b // 2 + 1)
    return lam[:, None] * (1 - np.exp(2j * np.pi * j / b))


def _batch_wait(service: ServiceTime, lam: np.ndarray, eta: np.ndarray, b: int,
                roots: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, x0, roots): the E_b/G/1 batch wait fitted as W = x0 + Exp(eta) with probability
    p, else 0, keeping P(W > 0) and E[W] exact; where E[W] < P(W > 0)/eta (a fast component
    of S: W's body falls faster than its tail) x0 = 0 and p = eta·E[W] keep E[W] and the
    tail's decay instead. The roots s_j of lambda^b·B*(s) = (lambda - s)^b in Re s > 0 come
    by fixed-point steps s = lambda·(1 - omega_j·B*(s)^(1/b)) from `roots` (conjugate pairs:
    half of them suffice; log B* keeps the mean shift's phase outside the log, so it stays
    continuous in s)."""
    w, d, r = (a[:, None, :] for a in (service.weight, service.shift_ms, service.rate_per_ms))
    d0 = np.sum(w * d, -1)
    d, finite = d - d0[..., None], np.isfinite(r)
    j = np.arange(1, b // 2 + 1)
    omega, la, s = np.exp(2j * np.pi * j / b), lam[:, None], roots
    mean = service.mean_ms
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(steps):
            z = s[..., None]
            term = w * np.exp(-z * d) * np.where(finite, r / (r + z), 1.0)
            s = la * (1 - omega * np.exp((np.log(np.sum(term, -1)) - s * d0) / b))
        pair = np.where(2 * j == b, 1, 2)  # omega_{b/2} = -1 gives a real root, once
        idle = b * (1 - lam * mean / b) * np.exp(-np.sum(pair * np.log(np.abs(s / la)), -1))
        mean_w = (np.sum(pair * np.real(1 / s), -1)
                  + (lam**2 * (1 + service.scv) * mean**2 - b * (b - 1))
                  / (2 * lam * (b - lam * mean)))
        p = np.clip(np.nan_to_num(1 - idle, nan=0.0), 0.0, 1.0)
        mean_w = np.maximum(np.nan_to_num(mean_w, nan=0.0), 0.0)
        x0 = np.where(p > 1e-12, np.maximum(mean_w / p - 1 / eta, 0.0), 0.0)
    return np.minimum(p, eta * mean_w), np.nan_to_num(x0, nan=0.0, posinf=0.0), s


def _free_time(service: ServiceTime, p: np.ndarray, x0: np.ndarray, eta: np.ndarray):
    """X = W + S' as a signed mixture of shifted exponentials (weight, shift, rate), each
    (KX, rows): S' alone with probability 1 - p, else x0 + Exp(eta) + S', whose two
    exponentials split as mu/(mu - eta)·Exp(eta) - eta/(mu - eta)·Exp(mu) (a rate within
    1e-6 of eta is moved off it: the split's weights stay finite, the change is noise)."""
    w, d, mu = service.weight.T, service.shift_ms.T, service.rate_per_ms.T
    e = eta * np.ones_like(mu)
    finite = np.isfinite(mu)
    e = np.where(finite & (np.abs(mu - e) < 1e-6 * mu), mu * (1 - 1e-6), e)
    with np.errstate(divide="ignore", invalid="ignore"):
        slow = np.where(finite, mu / (mu - e), 1.0)
        fast = np.where(finite, -e / (mu - e), 0.0)
    weight, shift, rate = [(1 - p) * w, p * w * slow], [d, d + x0], [mu, e]
    if finite.any():  # deterministic service has no second exponential
        weight, shift, rate = weight + [p * w * fast], shift + [d + x0], rate + [mu]
    return np.concatenate(weight), np.concatenate(shift), np.concatenate(rate)


def _laplace(free, lam: np.ndarray) -> np.ndarray:
    """E[e^{-lambda X}] of the mixture `free`."""
    weight, shift, rate = free
    finite = np.isfinite(rate)
    with np.errstate(over="ignore", invalid="ignore"):
        part = np.where(finite, rate / (lam + np.where(finite, rate, 0.0)), 1.0)
        return np.sum(weight * np.exp(-lam * shift) * part, 0)


def _count_tails(lam: np.ndarray, free, delta, theta, b: int) -> np.ndarray:
    """P(N(delta + (X - theta)^+) >= i) for i = 1 ... b, shape (b, rows, nodes): N the
    Poisson count at rate lam, delta and theta (rows, nodes) or scalars.

    For a component X = c + Exp(nu): with probability pi = e^{-nu(theta - c)^+} the span
    ends in an Exp(nu), whose count is geometric (P(>= j) = r^j, r = lam/(lam + nu)), after
    a Poisson(m) count, m = lam·(delta + (c - theta)^+). So P(N >= i) = P(Pois(m) >= i) +
    pi·G_i, G_i = sum_{j<i} P(Pois(m) = j)·r^(i-j) = r·(G_{i-1} + P(Pois(m) = i - 1))."""
    weight, shift, rate = (a[..., None] for a in free)  # (KX, rows, 1)
    finite = np.isfinite(rate)
    nu, la = np.where(finite, rate, 0.0), lam[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        m = la * (delta + np.maximum(shift - theta, 0.0))  # (KX, rows, nodes)
        pi = np.where(finite, np.exp(-nu * np.maximum(theta - shift, 0.0)), 0.0) * weight
        r = np.where(finite, la / (la + nu), 0.0)
    pmf = np.exp(-m)
    tail, g = 1.0 - pmf, r * pmf
    out = np.empty((b,) + m.shape[1:])
    for i in range(1, b + 1):  # in place: this loop is most of the model's time
        np.sum(weight * tail + pi * g, 0, out=out[i - 1])
        pmf *= m
        pmf *= 1.0 / i
        tail -= pmf
        g += pmf
        g *= r
    return out


def _poisson_pmfs(m: np.ndarray, n: int) -> np.ndarray:
    """P(Pois(m) = j) for j = 0 ... n - 1 along a new first axis."""
    out = np.empty((n,) + np.shape(m))
    out[0] = np.exp(-m)
    for j in range(1, n):
        np.multiply(out[j - 1], m / j, out=out[j])
    return out


def _poisson_tails(m: np.ndarray, b: int) -> np.ndarray:
    """P(Pois(m) >= j) for j = 0 ... b along a new first axis."""
    out = np.empty((b + 1,) + np.shape(m))
    out[0] = 1.0
    out[1:] = 1.0 - np.cumsum(_poisson_pmfs(m, b), 0)
    return np.maximum(out, 0.0)


def _own_service_nodes(service: ServiceTime, t: np.ndarray, window: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(tau, weight), each (rows, nodes): E[f(t - S); S <= t] ~ sum weight·f(tau). An atom of
    S is one node; an exponential tail u = S - shift on [0, t - shift] gets Gauss-Legendre
    panels split where its density has fallen (_TAIL_PANEL mean tails) and where tau = w
    (the window's kink), so both the density's bulk and the steep end near tau = 0 count."""
    x, wq = np.polynomial.legendre.leggauss(_GL_NODES)
    x, wq = (x + 1) / 2, wq / 2
    t, w = t[:, None], window[:, None]
    taus, weights = [], []
    for k in range(service.weight.shape[-1]):
        wk, dk, rk = (a[:, k:k + 1] for a in
                      (service.weight, service.shift_ms, service.rate_per_ms))
        span, atom = np.maximum(t - dk, 0.0), np.isinf(rk)
        if atom.any():
            taus.append(span)
            weights.append(np.where(atom & (t >= dk), wk, 0.0))
        if atom.all():
            continue
        mu = np.where(atom, 1.0, rk)
        edges = np.sort(np.concatenate([np.zeros_like(span), np.minimum(span, _TAIL_PANEL / mu),
                                        np.clip(span - w, 0.0, span), span], -1), -1)
        for lo, hi in zip(edges.T[:-1], edges.T[1:]):
            u = lo[:, None] + (hi - lo)[:, None] * x
            with np.errstate(over="ignore"):
                dens = mu * np.exp(-mu * u)
            taus.append(span - u)
            weights.append(np.where(atom, 0.0, wk * (hi - lo)[:, None] * wq * dens))
    return np.concatenate(taus, -1), np.concatenate(weights, -1)
