"""ServiceTime: a service-time distribution as a mixture of shifted exponentials (from raw
samples, or a quantile band), which every sizing quantity reads in closed form; and the small
array helpers roi/sizing.py and roi/batching.py share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contracts.errors import InputError


MAX_SAMPLE_ATOMS = 20_000  # raw samples beyond this are summarised by as many quantiles


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
            raise InputError(f"service time mean_ms must be positive; got {worst_value(mean)}")
        if not (np.all(np.isfinite(cv)) and np.all(cv >= 0)):
            raise InputError(f"service time cv must be >= 0; got {worst_value(cv)}")
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
        return np.sum(self.weight * (self.shift_ms + inv_rate(self.rate_per_ms)), -1)

    @property
    def scv(self) -> np.ndarray:
        """Squared coefficient of variation, Var(S) / E[S]²."""
        tail = inv_rate(self.rate_per_ms)
        second = np.sum(self.weight * ((self.shift_ms + tail) ** 2 + tail**2), -1)
        return second / self.mean_ms**2 - 1

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws from a one-row distribution (for simulation)."""
        k = rng.choice(self.weight.shape[-1], size=n, p=self.weight / self.weight.sum())
        tail = rng.exponential(1.0, n) * inv_rate(self.rate_per_ms)[k]
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
        scale = np.max(np.where(self.weight > 0, self.shift_ms + inv_rate(self.rate_per_ms), 0), -1)
        rmin = np.min(np.where(self.weight > 0, self.rate_per_ms, np.inf), -1)
        return np.minimum(rmin * (1 - 1e-9), 40.0 / scale)


def inv_rate(rate: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(np.isinf(rate), 0.0, 1 / rate)


def _col(x) -> np.ndarray:
    return np.asarray(x, float)[..., None]


def worst_value(x: np.ndarray) -> float:
    bad = x[~(np.isfinite(x) & (x > 0))] if x.size else x
    return float(bad.flat[0]) if bad.size else float(np.min(x))
