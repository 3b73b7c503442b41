"""The laws a learning curve is fitted with, and how far each errs as it extrapolates (numbers
only: no tables, no plan; roi.forecast builds the forecasts from them).

Two laws, both fitted to the final points of whole runs of several budgets (D = tokens):

- **Retention odds law** (what the retention forecast uses): the odds of the student's
  accuracy against the teacher's, logit(r) = c + beta·ln(D / d_ref), i.e. the gap to the
  teacher, (1 - r) / r, falls as a power of the budget. Fitted to the curve's *regime points*,
  the upper half of its log-budget range: a student cut out of its teacher first recovers from
  the cut (a transient, slower in logit terms) and then settles on the line. On the project's
  long runs (BENCHMARKS.md "Retention forecast") this line holds from about 200 to 6,400 steps
  for every built-in student, where the loss law below misses even when fitted to every point.
- **Loss law**: held-out loss L(D) = E + A·D^(-alpha) by variable projection (E and A by
  non-negative least squares for each alpha on a grid), with a logit-linear map from loss to
  accuracy. Kept for the loss forecast, and for retention when the odds law cannot be fitted
  (a student already at or above its teacher's accuracy).

Each law's band is sigma(r) = sqrt(noise² + (kappa·ln r)²) at r = the budget over the longest
fitted one; kappa from the curve's own backtests (fit on the first budgets, predict the later
ones), never below a floor measured on long runs (roi.forecast).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

ALPHAS = np.linspace(0.02, 2.0, 199)  # the exponent grid of the variable projection
MIN_POINTS = 3  # budgets a curve needs
NOISE_SHARE = 0.3  # residual scatter over the curve's own fall beyond which it is noise
RETENTION_CAP = 0.995  # the odds law needs every point below the teacher's accuracy


class CannotFit(ValueError):
    """A curve the forecast cannot fit; the message says why (shown beside the prior)."""


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def inv_logit(x) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(x, float)))


# ------------------------------------------------------------------------------ the loss law


@dataclass(frozen=True)
class PowerLaw:
    """L(D) = E + A·(D / d_ref)^(-alpha): held-out loss (nats per token) after D tokens."""

    e: float
    a: float
    alpha: float
    d_ref: float

    def __call__(self, tokens) -> np.ndarray:
        d = np.asarray(tokens, dtype=float) / self.d_ref
        return self.e + self.a * d ** -self.alpha


def _nnls2(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """min ||E + A·x - y||² over E >= 0, A >= 0 (two unknowns: the vertices suffice)."""
    fits = []
    design = np.stack([np.ones_like(x), x], 1)
    (e, a), *_ = np.linalg.lstsq(design, y, rcond=None)
    if e >= 0 and a >= 0:
        fits.append((e, a))
    fits.append((0.0, max(float(x @ y / (x @ x)), 0.0)))  # E = 0
    fits.append((max(float(y.mean()), 0.0), 0.0))  # A = 0 (flat)
    return min(((float(e), float(a), float(np.sum((e + a * x - y) ** 2))) for e, a in fits),
               key=lambda t: t[2])


def fit_law(tokens, loss) -> PowerLaw:
    """The least-squares power law through (tokens, loss); CannotFit if it is not a falling
    curve."""
    tokens, loss = np.asarray(tokens, float), np.asarray(loss, float)
    d_ref = float(np.exp(np.mean(np.log(tokens))))
    x_all = (tokens / d_ref)[None, :] ** -ALPHAS[:, None]
    best = min((_nnls2(x, loss) + (alpha,) for x, alpha in zip(x_all, ALPHAS)),
               key=lambda t: t[2])
    e, a, _, alpha = best
    if a <= 0:
        raise CannotFit("flat: the loss does not fall with the budget")
    return PowerLaw(e, a, float(alpha), d_ref)


def checked_law(steps, tokens, loss) -> PowerLaw:
    """fit_law, refused (CannotFit) when the loss does not fall from the first budget to the
    last, or when the points scatter around the law by more than NOISE_SHARE of that fall."""
    loss = np.asarray(loss, float)
    fall = float(np.log(loss[0] / loss[-1]))
    if fall <= 0:
        raise CannotFit(f"flat: the loss does not fall from {int(steps[0])} to "
                        f"{int(steps[-1])} steps ({loss[0]:.3f} -> {loss[-1]:.3f})")
    law = fit_law(tokens, loss)
    scatter = float(np.sqrt(np.mean(np.log(loss / law(tokens)) ** 2)))
    if scatter > NOISE_SHARE * fall:
        raise CannotFit(f"noisy: the points scatter by {scatter:.1%} around the fitted law, "
                        f"against a fall of {fall:.1%} over the pilot")
    return law


@dataclass(frozen=True)
class AccuracyMap:
    """Accuracy from loss, logit(acc) = c0 + c1·loss: one map for every curve of a teacher and
    data (KD and baseline alike), the teacher's own (loss, accuracy) among its points."""

    c0: float
    c1: float
    sigma: float  # residual standard deviation of logit(acc)

    def __call__(self, loss) -> np.ndarray:
        return inv_logit(self.c0 + self.c1 * np.asarray(loss, float))


def fit_accuracy_map(loss, accuracy) -> AccuracyMap:
    loss, y = np.asarray(loss, float), logit(accuracy)
    design = np.stack([np.ones_like(loss), loss], 1)
    (c0, c1), *_ = np.linalg.lstsq(design, y, rcond=None)
    if not c1 < 0:
        raise CannotFit("accuracy does not rise as the loss falls across the pilot points")
    resid = y - design @ np.array([c0, c1])
    sigma = float(np.sqrt(np.sum(resid ** 2) / max(len(y) - 2, 1)))
    return AccuracyMap(float(c0), float(c1), sigma)


# ------------------------------------------------------------------------------ the odds law


@dataclass(frozen=True)
class OddsLaw:
    """logit(retention) = c + beta·ln(D / d_ref) after D tokens (the gap to the teacher's
    accuracy, in odds, falls as D^-beta)."""

    c: float
    beta: float
    d_ref: float

    def __call__(self, tokens) -> np.ndarray:
        """logit(retention) at `tokens`."""
        return self.c + self.beta * np.log(np.asarray(tokens, float) / self.d_ref)


def regime(tokens) -> np.ndarray:
    """The indices of a curve's regime points: budgets in the upper half of its log-budget
    range, at least MIN_POINTS of them (the last ones) where the curve has that many."""
    lt = np.log(np.asarray(tokens, float))
    upper = np.nonzero(lt >= (lt[0] + lt[-1]) / 2)[0]
    return upper if len(upper) >= MIN_POINTS else np.arange(max(0, len(lt) - MIN_POINTS),
                                                           len(lt))


def fit_odds(tokens, retention) -> OddsLaw:
    """The odds law through a curve's regime points; CannotFit when a point is at or above
    the teacher (RETENTION_CAP) or the retention does not rise with the budget there."""
    tokens, retention = np.asarray(tokens, float), np.asarray(retention, float)
    if np.any(retention >= RETENTION_CAP):
        raise CannotFit(f"at the teacher: retention {retention.max():.1%} at a pilot budget; "
                        "the odds law needs the student below the teacher")
    if np.any(retention <= 0):
        raise CannotFit("no accuracy: a pilot point has zero retention")
    idx = regime(tokens)
    x, y = np.log(tokens[idx]), logit(retention[idx])
    d_ref = float(np.exp(x.mean()))
    beta, c = np.polyfit(x - x.mean(), y, 1)
    if not beta > 0:
        raise CannotFit("flat: the retention does not rise over the pilot's later budgets")
    return OddsLaw(float(c), float(beta), d_ref)


# ------------------------------------------------------------------------------ the band


def backtest_errors(tokens, values, fit: Callable, error: Callable) -> list[tuple[float, float]]:
    """(extrapolation ratio r, error) from fitting a curve's first k budgets (k >= MIN_POINTS)
    with `fit(tokens, values)` and predicting each later one, error(law, tokens, value): how
    the curve's own law errs as it reaches further."""
    tokens, values = np.asarray(tokens, float), np.asarray(values, float)
    out = []
    for k in range(MIN_POINTS, len(tokens)):
        try:
            law = fit(tokens[:k], values[:k])
        except CannotFit:
            continue
        out += [(tokens[j] / tokens[k - 1], float(error(law, tokens[j], values[j])))
                for j in range(k, len(tokens))]
    return out


def loss_error(law: PowerLaw, tokens, loss) -> float:
    """log(observed / predicted loss)."""
    return float(np.log(loss / law(tokens)))


def odds_error(law: OddsLaw, tokens, retention) -> float:
    """observed - predicted logit(retention)."""
    return float(logit(retention) - law(tokens))


@dataclass(frozen=True)
class Calibration:
    """How far a law errs: sigma(r) = sqrt(noise² + (kappa·ln r)²) at r = the budget over the
    longest fitted budget (r <= 1: noise alone), in the law's units (`units`)."""

    kappa: float
    noise: float
    backtests: int  # (r, error) pairs behind kappa
    source: str
    units: str = "log loss"

    def sigma(self, r) -> np.ndarray:
        lr = np.log(np.maximum(np.asarray(r, float), 1.0))
        return np.sqrt(self.noise ** 2 + (self.kappa * lr) ** 2)


def calibrate(errors: Sequence[tuple[float, float]], residuals: Sequence[float], *,
              floor: float, floor_source: str, noise_floor: float, units: str) -> Calibration:
    """kappa from backtest errors pooled (root mean square of error / ln r), never under
    `floor` (what long runs showed); noise from the fits' residuals, never under
    `noise_floor` (the evaluation's own repeatability)."""
    z = [e / math.log(r) for r, e in errors if r > 1.05]
    kappa = float(np.sqrt(np.mean(np.square(z)))) if z else 0.0
    noise = float(np.sqrt(np.mean(np.square(residuals)))) if len(residuals) else 0.0
    source = (f"backtests on the pilots ({len(z)} predictions of a later budget): kappa "
              f"{kappa:.3f}" if z else "no backtest possible on the pilots (too few budgets)")
    if kappa < floor:
        kappa, source = floor, f"{source}; raised to the floor {floor:.3f} ({floor_source})"
    return Calibration(kappa, max(noise, noise_floor), len(z), source, units)
