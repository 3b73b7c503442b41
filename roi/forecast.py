"""Quality you can forecast: a student's retention (accuracy / the teacher's), accuracy and
held-out loss as a function of its training budget, fitted from pilot distillations
(contracts.curves; the laws in roi.curvefit).

    pilot rows (final points of whole wsd runs) ──► odds law per (student, mode):
        logit(retention) = c + beta·ln D on the curve's later budgets, with a P10–P90 band
        ──► tokens to reach a retention threshold
    beside it: loss law L(D) = E + A·D^(-alpha) per curve, accuracy from loss (one map per mode,
    the teacher as an anchor): the loss forecast, and retention where the odds law cannot be
    fitted (a student already at its teacher)

Why the odds law carries retention: on the project's long runs (BENCHMARKS.md, "Retention
forecast") the gap to the teacher in odds falls as a power of the budget once a student cut out
of its teacher has recovered from the cut, while the loss law misses the same curves even when
fitted to every point (their log-loss bends twice). The bands are calibrated, not assumed: the
forecast backtests itself on the pilots (fit on a curve's first points, predict its later ones)
and widens with the log of the extrapolation distance at the rate those backtests show, never
below a floor measured on the project's own long runs. Curves that cannot be fitted (too few
points, NaN, flat or noisy) are reported with the reason and leave the planner on its prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from contracts.errors import InputError

from .curvefit import (
    MIN_POINTS,
    AccuracyMap,
    Calibration,
    CannotFit,
    OddsLaw,
    PowerLaw,
    backtest_errors,
    calibrate,
    checked_law,
    fit_accuracy_map,
    fit_law,
    fit_odds,
    inv_logit,
    logit,
    loss_error,
    odds_error,
    regime,
)

__all__ = ["CannotFit", "Calibration", "CurveForecast", "Forecasts", "build", "record",
           "fit_law", "fit_odds"]

Z90 = 1.2815515655446004  # standard normal 90th percentile: P10/P90 at mean ± Z90·sigma


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


# The floors of kappa per mode, measured on the project's own long runs (BENCHMARKS.md,
# "Retention forecast"; roi.forecastcheck.long_run_kappa): pilots of <= 200 steps of the built-in
# students, predicting 283-3,200 steps, both modes cut out of the teacher (init: teacher-pruned).
# A pilot's own backtests reach no further than 2x, so they alone would miss how a curve bends
# later; they can only widen the band beyond this floor. KAPPA_FLOOR is the loss law's (log
# loss), ODDS_KAPPA_FLOOR the odds law's (logit retention).
KAPPA_FLOOR = {"kd": 0.095, "ce": 0.092}
ODDS_KAPPA_FLOOR = {"kd": 0.256, "ce": 0.247}
KAPPA_FLOOR_SOURCE = "the project's long runs, BENCHMARKS.md"
NOISE_FLOOR = 0.002  # log-loss: the held-out evaluation's own repeatability (65,536 tokens)
ODDS_NOISE_FLOOR = 0.02  # logit retention: the same repeatability near 90% retention


def _retention(points: pd.DataFrame, teacher_accuracy: float) -> np.ndarray:
    return points["accuracy"].to_numpy(float) / teacher_accuracy


def loss_calibration(curves: dict, floor: float = 0.0) -> Calibration:
    """The loss law's band from every curve's backtests and residuals pooled."""
    errs, resid = [], []
    for points in curves.values():
        tokens, loss = points["tokens"].to_numpy(float), points["loss"].to_numpy(float)
        errs += backtest_errors(tokens, loss, fit_law, loss_error)
        try:
            law = fit_law(tokens, loss)
        except CannotFit:
            continue
        resid += list(np.log(loss / law(tokens)))
    return calibrate(errs, resid, floor=floor, floor_source=KAPPA_FLOOR_SOURCE,
                     noise_floor=NOISE_FLOOR, units="log loss")


def odds_calibration(curves: dict, teacher_accuracy: float, floor: float = 0.0) -> Calibration:
    """The odds law's band from every curve's backtests and regime residuals pooled."""
    errs, resid = [], []
    for points in curves.values():
        tokens, ret = points["tokens"].to_numpy(float), _retention(points, teacher_accuracy)
        errs += backtest_errors(tokens, ret, fit_odds, odds_error)
        try:
            law = fit_odds(tokens, ret)
        except CannotFit:
            continue
        idx = regime(tokens)
        resid += list(logit(ret[idx]) - law(tokens[idx]))
    return calibrate(errs, resid, floor=floor, floor_source=KAPPA_FLOOR_SOURCE,
                     noise_floor=ODDS_NOISE_FLOOR, units="logit retention")


# ------------------------------------------------------------------------------ forecasts


@dataclass(frozen=True)
class CurveForecast:
    """A student's forecast in one mode (kd or ce): loss, accuracy and retention at any budget,
    each as P10 / P50 / P90. Retention comes from the odds law where it could be fitted
    (`odds`), else from the loss law through the accuracy map."""

    model: str
    mode: str
    params: Optional[int]
    law: PowerLaw
    accuracy_map: AccuracyMap
    calibration: Calibration  # the loss law's band
    teacher_accuracy: float
    fitted_tokens: float  # the longest budget behind the fit
    batch_tokens: Optional[float]
    points: pd.DataFrame = field(repr=False)
    odds: Optional[OddsLaw] = None
    odds_calibration: Optional[Calibration] = None
    odds_failed: str = ""  # why the odds law could not be fitted (the loss law stands in)

    @property
    def retention_law(self) -> str:
        return "odds" if self.odds is not None else "loss"

    @property
    def retention_calibration(self) -> Calibration:
        return self.odds_calibration if self.odds is not None else self.calibration

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
        """(P10, P50, P90) of the accuracy."""
        if self.odds is not None:
            return tuple(r * self.teacher_accuracy for r in self.retention(tokens))
        lo, mid, hi = self.loss(tokens)  # low loss is high accuracy; the map's spread adds in
        m = self.accuracy_map
        s_loss = (np.log(hi) - np.log(lo)) / (2 * Z90)
        s = np.sqrt((m.c1 * mid * s_loss) ** 2 + m.sigma ** 2)  # in logit space
        centre = m.c0 + m.c1 * mid
        return tuple(inv_logit(centre + k * Z90 * s) for k in (-1, 0, 1))

    def retention(self, tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P10, P50, P90) of accuracy / the teacher's."""
        if self.odds is None:
            return tuple(a / self.teacher_accuracy for a in self.accuracy(tokens))
        centre = self.odds(tokens)
        s = self.odds_calibration.sigma(np.asarray(tokens, float) / self.fitted_tokens)
        return tuple(inv_logit(centre + k * Z90 * s) for k in (-1, 0, 1))

    def asymptote(self) -> Optional[float]:
        """Retention P50 as the budget grows without bound: the loss law's E through the
        accuracy map; None under the odds law, which sees no ceiling below the teacher."""
        if self.odds is not None:
            return None
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
    calibration: dict[str, Calibration]  # per mode: the loss law's band
    accuracy_map: dict[str, AccuracyMap]  # per mode
    teacher: str
    teacher_accuracy: float
    recipe: str
    batch_tokens: float
    longest_steps: int
    ignored: tuple[str, ...] = ()  # rows left out, and why
    settings: dict = field(default_factory=dict)  # the pilots' recipe (contracts.curves.RECIPE_KEYS)
    pilot_flops: float = math.nan  # compute every pilot curve spent, summed
    teacher_params: Optional[int] = None
    odds_calibration: dict[str, Calibration] = field(default_factory=dict)  # per mode

    def get(self, model: str, mode: str = "kd") -> Optional[CurveForecast]:
        return self.curves.get((model, mode))

    def why_not(self, model: str, mode: str = "kd") -> str:
        return self.failed.get((model, mode), "no pilot curve for this student")


def build(table: pd.DataFrame, kappa_floor: Optional[dict[str, float]] = None,
          odds_floor: Optional[dict[str, float]] = None) -> Forecasts:
    """Forecasts from a pilot table (contracts.curves): the final points of the most common recipe
    among the pilots; every (model, mode) fitted, or its failure recorded. The floors of the
    bands' kappa per mode default to KAPPA_FLOOR (loss law) and ODDS_KAPPA_FLOOR."""
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
    floors = (KAPPA_FLOOR if kappa_floor is None else kappa_floor,
              ODDS_KAPPA_FLOOR if odds_floor is None else odds_floor)
    return _fit_groups(same, groups, failed, recipe, ignored, floors)


def _fit_groups(same: pd.DataFrame, groups: dict, failed: dict, recipe: str,
                ignored: tuple[str, ...], floors: tuple[dict, dict]) -> Forecasts:
    t_acc = float(same["teacher_accuracy"].median())
    t_loss = float(same["teacher_loss"].median()) if "teacher_loss" in same else math.nan
    laws = {}
    for key, points in groups.items():
        try:
            laws[key] = checked_law(points["step"].to_numpy(), points["tokens"], points["loss"])
        except CannotFit as e:
            failed[key] = str(e)
    batch = float(same["batch_tokens"].median()) if "batch_tokens" in same else math.nan
    curves, maps, cals, odds_cals = {}, {}, {}, {}
    for mode in sorted({k[1] for k in laws}):
        keys = [k for k in laws if k[1] == mode]
        try:  # one map and one calibration per mode: KD and baseline students differ
            maps[mode] = _mode_map([groups[k] for k in keys], t_loss, t_acc)
        except CannotFit as e:
            failed.update({k: str(e) for k in keys})
            continue
        mine = {k: groups[k] for k in keys}
        cals[mode] = loss_calibration(mine, floors[0].get(mode, 0.0))
        odds_cals[mode] = odds_calibration(mine, t_acc, floors[1].get(mode, 0.0))
        for k in keys:
            odds, why = _odds(groups[k], t_acc)
            curves[k] = CurveForecast(k[0], k[1], _int(groups[k]["params"].iloc[-1]), laws[k],
                                      maps[mode], cals[mode], t_acc,
                                      float(groups[k]["tokens"].max()), batch, groups[k],
                                      odds, odds_cals[mode] if odds else None, why)
    longest = int(same["step"].max()) if len(same) else 0
    return Forecasts(curves, failed, cals, maps, str(same["teacher"].iloc[0]), t_acc, recipe,
                     batch, longest, ignored, _settings(same), _pilot_flops(same),
                     _int(same["teacher_params"].max()) if "teacher_params" in same else None,
                     odds_cals)


def _odds(points: pd.DataFrame, t_acc: float) -> tuple[Optional[OddsLaw], str]:
    try:
        return fit_odds(points["tokens"].to_numpy(float), _retention(points, t_acc)), ""
    except CannotFit as e:
        return None, str(e)


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

METHOD = ("retention by the odds law, logit(retention) = c + beta·ln D, per student and mode, "
          "fitted to the upper half (in log budget) of the pilots' final points (whole wsd runs "
          "of each budget); where a student is already at its teacher, held-out loss L(D) = E + "
          "A·D^-alpha mapped to accuracy by a logit-linear map per mode; P10-P90 widening with "
          "the log of the extrapolation distance at the rate the pilots' own backtests show, "
          "never below the rate measured on the project's long runs")


def _cal_record(c: Calibration) -> dict:
    return {"kappa": c.kappa, "noise": c.noise, "backtests": c.backtests, "source": c.source,
            "units": c.units}


def record(fc: Forecasts, threshold: float, max_steps: int,
           extra_steps: tuple[int, ...] = ()) -> dict:
    """The forecast as plain data for the plan: method, calibration (of the retention band:
    `calibration`; of the loss law: `loss_calibration`), each curve's laws and points, steps
    to the threshold, and retention at the budgets asked for."""
    odds_modes = {c.mode for c in fc.curves.values() if c.odds is not None}
    retention_cal = {mode: fc.odds_calibration.get(mode, c) if mode in odds_modes else c
                     for mode, c in fc.calibration.items()}
    return {
        "source": "pilot curves", "method": METHOD, "teacher": fc.teacher,
        "teacher_accuracy": fc.teacher_accuracy, "recipe": fc.recipe,
        "batch_tokens": fc.batch_tokens, "longest_pilot_steps": fc.longest_steps,
        "max_steps": max_steps, "threshold": threshold,
        "calibration": {mode: _cal_record(c) for mode, c in retention_cal.items()},
        "loss_calibration": {mode: _cal_record(c) for mode, c in fc.calibration.items()},
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
            "retention_law": c.retention_law, "odds_failed": c.odds_failed or None,
            "odds": None if c.odds is None else {"c": c.odds.c, "beta": c.odds.beta,
                                                 "d_ref": c.odds.d_ref},
            "fitted_steps": int(round(c.fitted_tokens / c.batch_tokens)),
            "points": [{"steps": int(r["step"]), "tokens": float(r["tokens"]),
                        "loss": float(r["loss"]), "accuracy": float(r["accuracy"]),
                        "retention": float(r["accuracy"]) / c.teacher_accuracy,
                        "source": str(r.get("source", "pilot"))} for _, r in pts.iterrows()],
            "steps_to_threshold_p10": _steps(steps[10], c.batch_tokens),
            "steps_to_threshold_p50": _steps(steps[50], c.batch_tokens),
            "asymptote": c.asymptote(), "at_steps": at,
            "p50_at_max_steps": float(c.retention(max_tokens)[1])}


def _steps(tokens: Optional[float], batch_tokens: float) -> Optional[int]:
    return None if tokens is None else int(math.ceil(tokens / batch_tokens))
