"""Quality you can forecast: a student's held-out loss, accuracy and retention as a function of
its training budget, fitted from pilot distillations (contracts.curves).

    pilot rows (final points of whole wsd runs) ──► loss law per (student, mode)
        ──► accuracy from loss (one map for every curve, the teacher as an anchor)
        ──► retention = accuracy / the teacher's, with a P10–P90 band
        ──► tokens to reach a retention threshold

The loss law is a saturating power law in training tokens, L(D) = E + A·D^(-alpha), fitted by
variable projection (E and A by non-negative least squares for each alpha on a grid). Its band
is calibrated, not assumed: the forecast backtests itself on the pilots (fit on a curve's first
points, predict its later ones) and widens with the log of the extrapolation distance at the
rate those backtests show, never below a floor measured on the project's own long runs
(BENCHMARKS.md). Curves that cannot be fitted (too few points, NaN, flat or noisy) are reported
with the reason and leave the planner on its prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from contracts.errors import InputError

Z90 = 1.2815515655446004  # standard normal 90th percentile: P10/P90 at mean ± Z90·sigma
ALPHAS = np.linspace(0.02, 2.0, 199)  # the exponent grid of the variable projection
MIN_POINTS = 3  # budgets a curve needs (three parameters)


class CannotFit(ValueError):
    """A curve the forecast cannot fit; the message says why (shown beside the prior)."""


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


def fit_law(tokens: np.ndarray, loss: np.ndarray) -> PowerLaw:
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


NOISE_SHARE = 0.3  # residual scatter over the curve's own fall beyond which it is noise


def checked_law(points: pd.DataFrame) -> PowerLaw:
    """fit_law, refused (CannotFit) when the loss does not fall from the first budget to the
    last, or when the points scatter around the law by more than NOISE_SHARE of that fall."""
    loss = points["loss"].to_numpy(float)
    fall = float(np.log(loss[0] / loss[-1]))
    if fall <= 0:
        raise CannotFit(f"flat: the loss does not fall from {int(points['step'].iloc[0])} to "
                        f"{int(points['step'].iloc[-1])} steps ({loss[0]:.3f} -> {loss[-1]:.3f})")
    law = fit_law(points["tokens"], loss)
    scatter = float(np.sqrt(np.mean(np.log(loss / law(points["tokens"])) ** 2)))
    if scatter > NOISE_SHARE * fall:
        raise CannotFit(f"noisy: the points scatter by {scatter:.1%} around the fitted law, "
                        f"against a fall of {fall:.1%} over the pilot")
    return law


def _usable(points: pd.DataFrame) -> pd.DataFrame:
    """A curve's final points with finite loss and accuracy, one row per budget (the latest
    wins), in budget order; CannotFit when fewer than MIN_POINTS remain."""
    ok = points[np.isfinite(points["loss"]) & np.isfinite(points["accuracy"])
                & np.isfinite(points["tokens"]) & (points["tokens"] > 0)]
    dropped = len(points) - len(ok)
    ok = ok.drop_duplicates("tokens", keep="last").sort_values("tokens")
    if len(ok) < MIN_POINTS:
        more = f" ({dropped} dropped: NaN or missing)" if dropped else ""
        raise CannotFit(f"too short: {len(ok)} budget(s) with a result{more}; the fit needs "
                        f"at least {MIN_POINTS}")
    return ok


# ------------------------------------------------------------------------------ accuracy map


@dataclass(frozen=True)
class AccuracyMap:
    """Accuracy from loss, logit(acc) = c0 + c1·loss: one map for every curve of a teacher and
    data (KD and baseline alike), the teacher's own (loss, accuracy) among its points."""

    c0: float
    c1: float
    sigma: float  # residual standard deviation of logit(acc)

    def __call__(self, loss) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.c0 + self.c1 * np.asarray(loss, float))))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_accuracy_map(loss: np.ndarray, accuracy: np.ndarray) -> AccuracyMap:
    loss, y = np.asarray(loss, float), _logit(accuracy)
    design = np.stack([np.ones_like(loss), loss], 1)
    (c0, c1), *_ = np.linalg.lstsq(design, y, rcond=None)
    if not c1 < 0:
        raise CannotFit("accuracy does not rise as the loss falls across the pilot points")
    resid = y - design @ np.array([c0, c1])
    sigma = float(np.sqrt(np.sum(resid ** 2) / max(len(y) - 2, 1)))
    return AccuracyMap(float(c0), float(c1), sigma)


# ------------------------------------------------------------------------------ the band


def backtest_errors(points: pd.DataFrame) -> list[tuple[float, float]]:
    """(extrapolation ratio r, log(observed / predicted loss)) from fitting a curve's first k
    budgets (k >= MIN_POINTS) and predicting each later one: how this curve's own law errs as
    it reaches further."""
    tokens, loss = points["tokens"].to_numpy(float), points["loss"].to_numpy(float)
    out = []
    for k in range(MIN_POINTS, len(tokens)):
        try:
            law = fit_law(tokens[:k], loss[:k])
        except CannotFit:
            continue
        for j in range(k, len(tokens)):
            out.append((tokens[j] / tokens[k - 1], float(np.log(loss[j] / law(tokens[j])))))
    return out


@dataclass(frozen=True)
class Calibration:
    """How far the law's log-loss errs: sigma(r) = sqrt(noise² + (kappa·ln r)²) at r = the
    budget over the longest fitted budget (r <= 1: noise alone)."""

    kappa: float
    noise: float
    backtests: int  # (r, error) pairs behind kappa
    source: str

    def sigma(self, r) -> np.ndarray:
        lr = np.log(np.maximum(np.asarray(r, float), 1.0))
        return np.sqrt(self.noise ** 2 + (self.kappa * lr) ** 2)


# The floor of kappa per mode, measured on the project's own long runs (BENCHMARKS.md, "Retention
# forecast"; roi.forecastcheck.long_run_kappa): pilots of <= 200 steps of the built-in students,
# predicting 283-3,200 steps, both modes cut out of the teacher (init: teacher-pruned; the no-KD
# baseline from random init needed 0.19). A pilot's own backtests reach no further than 2x, so
# they alone would miss how a curve bends later; they can only widen the band beyond this floor.
KAPPA_FLOOR = {"kd": 0.095, "ce": 0.092}
KAPPA_FLOOR_SOURCE = "the project's long runs, BENCHMARKS.md"
NOISE_FLOOR = 0.002  # log-loss: the held-out evaluation's own repeatability (65,536 tokens)


def calibrate(curves: dict[tuple[str, str], pd.DataFrame], floor: float = 0.0,
              floor_source: str = "") -> Calibration:
    """kappa from every curve's backtests pooled (root mean square of error / ln r), never
    under `floor` (what the project's own long runs showed: KAPPA_FLOOR); noise from the
    fits' residuals, never under NOISE_FLOOR."""
    errs, resid = [], []
    for points in curves.values():
        errs += backtest_errors(points)
        try:
            law = fit_law(points["tokens"], points["loss"])
        except CannotFit:
            continue
        resid += list(np.log(points["loss"].to_numpy(float) / law(points["tokens"])))
    z = [e / math.log(r) for r, e in errs if r > 1.05]
    kappa = float(np.sqrt(np.mean(np.square(z)))) if z else 0.0
    noise = float(np.sqrt(np.mean(np.square(resid)))) if resid else 0.0
    source = (f"backtests on the pilots ({len(z)} predictions of a later budget): kappa "
              f"{kappa:.3f}" if z else "no backtest possible on the pilots (too few budgets)")
    if kappa < floor:
        kappa, source = floor, f"{source}; raised to the floor {floor:.3f} ({floor_source})"
    return Calibration(kappa, max(noise, NOISE_FLOOR), len(z), source)


# ------------------------------------------------------------------------------ forecasts


@dataclass(frozen=True)
class CurveForecast:
    """A student's forecast in one mode (kd or ce): loss, accuracy and retention at any budget,
    each as P10 / P50 / P90."""

    model: str
    mode: str
    params: Optional[int]
    law: PowerLaw
    accuracy_map: AccuracyMap
    calibration: Calibration
    teacher_accuracy: float
    fitted_tokens: float  # the longest budget behind the fit
    batch_tokens: Optional[float]
    points: pd.DataFrame = field(repr=False)

    @property
    def tokens_per_s(self) -> Optional[float]:
        """The pilot's measured training speed on the machine it ran on."""
        speed = self.points.get("tokens_per_s", pd.Series(dtype=float)).dropna()
        return float(speed.median()) if len(speed) else None

    def loss(self, tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P10, P50, P90) of the held-out loss; P10 is the low (good) end."""
        mid = self.law(tokens)
        s = self.calibration.sigma(np.asarray(tokens, float) / self.fitted_tokens)
        return mid * np.exp(-Z90 * s), mid, mid * np.exp(Z90 * s)

    def accuracy(self, tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P10, P50, P90): low loss is high accuracy, and the map's own spread adds in."""
        lo, mid, hi = self.loss(tokens)
        m = self.accuracy_map
        s_loss = (np.log(hi) - np.log(lo)) / (2 * Z90)
        s = np.sqrt((m.c1 * mid * s_loss) ** 2 + m.sigma ** 2)  # in logit space
        centre = m.c0 + m.c1 * mid
        return tuple(1 / (1 + np.exp(-(centre + k * Z90 * s))) for k in (-1, 0, 1))

    def retention(self, tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(a / self.teacher_accuracy for a in self.accuracy(tokens))

    def asymptote(self) -> float:
        """Retention P50 as the budget grows without bound (the law's E)."""
        return float(self.accuracy_map(self.law.e) / self.teacher_accuracy)

    def tokens_to(self, threshold: float, quantile: int = 10,
                  max_tokens: float = math.inf) -> Optional[float]:
        """The fewest training tokens whose retention P10 (or P50) reaches `threshold`; None
        when no budget up to `max_tokens` does."""
        hi = min(max_tokens, self.fitted_tokens * 2.0 ** 20)
        grid = np.exp(np.linspace(np.log(self.points["tokens"].min()), np.log(hi), 400))
        lo, mid, _ = self.retention(grid)
        ok = np.nonzero((lo if quantile == 10 else mid) >= threshold)[0]
        return float(grid[ok[0]]) if ok.size else None


@dataclass(frozen=True)
class Forecasts:
    """Every curve's forecast from one table of pilot curves (one teacher, data and recipe),
    and why any curve could not be forecast."""

    curves: dict[tuple[str, str], CurveForecast]
    failed: dict[tuple[str, str], str]
    calibration: dict[str, Calibration]  # per mode
    accuracy_map: dict[str, AccuracyMap]  # per mode
    teacher: str
    teacher_accuracy: float
    recipe: str
    batch_tokens: float
    longest_steps: int
    ignored: tuple[str, ...] = ()  # rows left out, and why
    # the pilots' recipe (contracts.curves.RECIPE_KEYS)
    settings: dict = field(default_factory=dict)
    pilot_flops: float = math.nan  # compute every pilot curve spent, summed
    teacher_params: Optional[int] = None

    def get(self, model: str, mode: str = "kd") -> Optional[CurveForecast]:
        return self.curves.get((model, mode))

    def why_not(self, model: str, mode: str = "kd") -> str:
        return self.failed.get((model, mode), "no pilot curve for this student")


def build(table: pd.DataFrame, kappa_floor: Optional[dict[str, float]] = None) -> Forecasts:
    """Forecasts from a pilot table (contracts.curves): the final points of the most common recipe
    among the pilots; every (model, mode) fitted, or its failure recorded."""
    final = table[table["phase"] == "final"]
    if final.empty:
        raise InputError("pilot curves: no final points (phase final) to forecast from")
    origins = {(str(a), str(b)) for a, b in zip(final["teacher_hash"], final["data_fingerprint"])}
    if len(origins) > 1:
        raise InputError(f"pilot curves: {len(origins)} teacher/data fingerprints in one table; "
                         "a forecast needs curves of one teacher on one data set")
    pilots = final[final.get("source", "pilot") != "run"] if "source" in final else final
    recipe = (pilots if len(pilots) else final)["recipe"].astype(str).mode().iloc[0]
    same = final[final["recipe"].astype(str) == recipe]
    ignored = tuple(f"{r['model']} {r['mode']} at {int(r['step'])} steps: another recipe "
                    f"({r['recipe']})" for _, r in final[final["recipe"].astype(str)
                                                         != recipe].iterrows())
    groups, failed = {}, {}
    for key, points in same.groupby(["model", "mode"], sort=True):
        try:
            groups[key] = _usable(points)
        except CannotFit as e:
            failed[key] = str(e)
    return _fit_groups(same, groups, failed, recipe, ignored,
                       KAPPA_FLOOR if kappa_floor is None else kappa_floor)


def _fit_groups(same: pd.DataFrame, groups: dict, failed: dict, recipe: str,
                ignored: tuple[str, ...], floor: dict[str, float]) -> Forecasts:
    t_acc = float(same["teacher_accuracy"].median())
    t_loss = float(same["teacher_loss"].median()) if "teacher_loss" in same else math.nan
    laws = {}
    for key, points in groups.items():
        try:
            laws[key] = checked_law(points)
        except CannotFit as e:
            failed[key] = str(e)
    batch = float(same["batch_tokens"].median()) if "batch_tokens" in same else math.nan
    curves, maps, cals = {}, {}, {}
    for mode in sorted({k[1] for k in laws}):
        keys = [k for k in laws if k[1] == mode]
        try:  # one map and one calibration per mode: KD and baseline students differ
            maps[mode] = _mode_map([groups[k] for k in keys], t_loss, t_acc)
        except CannotFit as e:
            failed.update({k: str(e) for k in keys})
            continue
        cals[mode] = calibrate({k: groups[k] for k in keys}, floor.get(mode, 0.0),
                               KAPPA_FLOOR_SOURCE)
        for k in keys:
            curves[k] = CurveForecast(k[0], k[1], _int(groups[k]["params"].iloc[-1]), laws[k],
                                      maps[mode], cals[mode], t_acc,
                                      float(groups[k]["tokens"].max()), batch, groups[k])
    longest = int(same["step"].max()) if len(same) else 0
    return Forecasts(curves, failed, cals, maps, str(same["teacher"].iloc[0]), t_acc, recipe,
                     batch, longest, ignored, _settings(same), _pilot_flops(same),
                     _int(same["teacher_params"].max()) if "teacher_params" in same else None)


def _mode_map(points: list[pd.DataFrame], t_loss: float, t_acc: float) -> AccuracyMap:
    pts = pd.concat(points)
    loss, acc = pts["loss"].to_numpy(float), pts["accuracy"].to_numpy(float)
    if math.isfinite(t_loss):  # the teacher's own (loss, accuracy) anchors the low end
        loss, acc = np.append(loss, t_loss), np.append(acc, t_acc)
    return fit_accuracy_map(loss, acc)


def _pilot_flops(rows: pd.DataFrame) -> float:
    """The compute of every pilot curve (the last row of each holds its total). With the
    teacher-logit cache (the recipe's default) the KD curves share the teacher's labels of the
    same windows: its forward is counted once, over the longest KD curve's tokens."""
    if "pilot_flops" not in rows or rows["pilot_flops"].isna().all():
        return math.nan
    pilots = rows[rows["source"] != "run"] if "source" in rows else rows
    pilots = pilots[pilots["pilot_flops"].notna()]
    if pilots.empty:
        return math.nan
    last = pilots.loc[pilots.groupby(["model", "mode"])["pilot_flops"].idxmax()]
    if not _settings(rows).get("teacher_cache", True):
        return float(last["pilot_flops"].sum())
    teacher = 2 * last["teacher_params"].astype(float)
    share = np.where(last["mode"] == "kd",
                     teacher / (6 * last["params"].astype(float) + teacher), 0.0)
    teacher_flops = last["pilot_flops"].to_numpy(float) * share
    return float(last["pilot_flops"].sum() - teacher_flops.sum()
                 + (teacher_flops.max() if len(teacher_flops) else 0.0))


def _settings(rows: pd.DataFrame) -> dict:
    """The recipe the curves were measured with (the `settings` JSON column), if recorded."""
    import json

    for text in rows.get("settings", pd.Series(dtype=object)).dropna():
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def _int(x) -> Optional[int]:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------ the plan's record

METHOD = ("held-out loss L(D) = E + A·D^-alpha per student and mode, fitted to the pilots' final "
          "points (whole wsd runs of each budget); accuracy from loss by a logit-linear map per "
          "mode through its pilot points and the teacher; retention = accuracy / the teacher's; "
          "P10-P90 widening with the log of the extrapolation distance at the rate the pilots' "
          "own backtests show, never below the rate measured on the project's long runs")


def record(fc: Forecasts, threshold: float, max_steps: int,
           extra_steps: tuple[int, ...] = ()) -> dict:
    """The forecast as plain data for the plan: method, calibration, each curve's law and
    points, steps to the threshold, and retention at the budgets asked for."""
    return {
        "source": "pilot curves", "method": METHOD, "teacher": fc.teacher,
        "teacher_accuracy": fc.teacher_accuracy, "recipe": fc.recipe,
        "batch_tokens": fc.batch_tokens, "longest_pilot_steps": fc.longest_steps,
        "max_steps": max_steps, "threshold": threshold,
        "calibration": {mode: {"kappa": c.kappa, "noise": c.noise, "backtests": c.backtests,
                               "source": c.source} for mode, c in fc.calibration.items()},
        "accuracy_map": {mode: {"c0": m.c0, "c1": m.c1, "sigma_logit": m.sigma}
                         for mode, m in fc.accuracy_map.items()},
        "curves": [_curve_record(c, threshold, max_steps, extra_steps)
                   for c in fc.curves.values()],
        "failed": [{"model": m, "mode": mode, "reason": why}
                   for (m, mode), why in sorted(fc.failed.items())],
        "ignored": list(fc.ignored),
    }


def _curve_record(c: CurveForecast, threshold: float, max_steps: int,
                  extra_steps: tuple[int, ...]) -> dict:
    max_tokens = max_steps * c.batch_tokens
    steps = {q: c.tokens_to(threshold, q, max_tokens) for q in (10, 50)}
    at = {}
    for s in extra_steps:
        lo, mid, hi = c.retention(s * c.batch_tokens)
        at[str(s)] = [float(lo), float(mid), float(hi)]
    pts = c.points
    return {"model": c.model, "mode": c.mode, "params": c.params,
            "law": {"e": c.law.e, "a": c.law.a, "alpha": c.law.alpha, "d_ref": c.law.d_ref},
            "fitted_steps": int(round(c.fitted_tokens / c.batch_tokens)),
            "points": [{"steps": int(r["step"]), "tokens": float(r["tokens"]),
                        "loss": float(r["loss"]), "accuracy": float(r["accuracy"]),
                        "retention": float(r["accuracy"]) / c.teacher_accuracy,
                        "source": str(r.get("source", "pilot"))} for _, r in pts.iterrows()],
            "steps_to_threshold_p10": _steps(steps[10], c.batch_tokens),
            "steps_to_threshold_p50": _steps(steps[50], c.batch_tokens),
            "asymptote": c.asymptote(), "at_steps": at}


def _steps(tokens: Optional[float], batch_tokens: float) -> Optional[int]:
    return None if tokens is None else int(math.ceil(tokens / batch_tokens))
