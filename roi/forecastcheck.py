"""The forecast against what runs achieved: fit on the pilot part of long curves (budgets up to
`pilot_steps`), predict the longer budgets those curves also measured, and score it.

A curve measured to 3,200 steps under the wsd schedule holds, at each branch point, exactly what
a whole run of that budget ends at (distill.pilot), so "achieved" here is the result of whole
runs; the forecast sees only the rows a pilot of `pilot_steps` would have.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .curvefit import CannotFit, fit_law, fit_odds, loss_error, odds_error
from .forecast import build


def long_run_kappa(table: pd.DataFrame, pilot_steps: int, leave_out: Optional[str] = None,
                   law: str = "loss") -> dict[str, float]:
    """Per mode: how fast a law's error grows with the log of the extrapolation distance on
    long curves, sqrt(mean(z²)) with z = error / ln(r) over every curve fitted on its budgets
    up to `pilot_steps` and every longer budget measured (law: "loss", error in log loss, or
    "odds", in logit retention; leave_out: a model left out, to score a forecast of it
    honestly)."""
    final = table[(table["phase"] == "final") & (table["model"] != leave_out)]
    out = {}
    for mode, rows in final.groupby("mode"):
        z = []
        for _, curve in rows.groupby("model"):
            z += _zs(curve.sort_values("step"), pilot_steps, law)
        if z:
            out[str(mode)] = float(np.sqrt(np.mean(np.square(z))))
    return out


def _zs(curve: pd.DataFrame, pilot_steps: int, law: str) -> list[float]:
    pilot = curve[curve["step"] <= pilot_steps]
    if len(pilot) < 3:
        return []
    values = curve["loss"] if law == "loss" else curve["accuracy"] / curve["teacher_accuracy"]
    fit, error = (fit_law, loss_error) if law == "loss" else (fit_odds, odds_error)
    try:
        fitted = fit(pilot["tokens"].to_numpy(float), values[pilot.index].to_numpy(float))
    except CannotFit:
        return []
    longest = float(pilot["tokens"].max())
    later = curve[curve["step"] > pilot_steps]
    return [error(fitted, r["tokens"], values[i]) / float(np.log(r["tokens"] / longest))
            for i, r in later.iterrows()]


def score(table: pd.DataFrame, pilot_steps: int, targets: Sequence[int],
          threshold: float, loso: bool = True) -> dict:
    """Per (model, mode, target budget): forecast P10/P50/P90 retention beside the achieved one;
    and per curve, forecast vs measured steps to `threshold`. Summary: median and worst
    |achieved - P50| in points of retention, and the share of cases inside P10-P90.

    loso: each student's band floor (KAPPA_FLOOR) is measured on the other students' long
    curves only (leave one student out), so no student's own long run widens its band."""
    final = table[table["phase"] == "final"]
    cases, steps, failed = [], [], {}
    for model in sorted(final["model"].unique()):
        floor = long_run_kappa(final, pilot_steps, leave_out=model) if loso else None
        odds_floor = (long_run_kappa(final, pilot_steps, leave_out=model, law="odds")
                      if loso else None)
        fc = build(final[final["step"] <= pilot_steps], kappa_floor=floor,
                   odds_floor=odds_floor)
        failed.update({f"{m} {mode}": why for (m, mode), why in fc.failed.items()
                       if m == model})
        c_steps, c_cases = _score_model(fc, final[final["model"] == model], targets, threshold)
        cases += c_cases
        steps += c_steps
    return {"cases": cases, "steps_to_threshold": steps, "summary": summarize(cases),
            "failed": failed, "kappa_all_students": long_run_kappa(final, pilot_steps),
            "odds_kappa_all_students": long_run_kappa(final, pilot_steps, law="odds")}


def _score_model(fc, rows: pd.DataFrame, targets, threshold) -> tuple[list, list]:
    cases, steps = [], []
    for (model, mode), curve in rows.groupby(["model", "mode"]):
        c = fc.get(model, mode)
        if c is None:
            continue
        for _, row in curve[curve["step"].isin(targets)].iterrows():
            lo, mid, hi = (float(x) for x in c.retention(row["tokens"]))
            got = float(row["accuracy"]) / c.teacher_accuracy
            cases.append({"model": model, "mode": mode, "steps": int(row["step"]),
                          "achieved": got, "p10": lo, "p50": mid, "p90": hi,
                          "error_points": 100 * (got - mid), "inside": lo <= got <= hi})
        found = _steps_case(c, curve, threshold)
        if found:
            steps.append(found)
    return steps, cases


def summarize(cases: list[dict]) -> dict:
    by_mode = {}
    for mode in sorted({c["mode"] for c in cases}):
        err = np.abs([c["error_points"] for c in cases if c["mode"] == mode])
        inside = [c["inside"] for c in cases if c["mode"] == mode]
        by_mode[mode] = {"cases": len(err), "median_abs_error_points": float(np.median(err)),
                         "worst_abs_error_points": float(err.max()),
                         "coverage_p10_p90": float(np.mean(inside))}
    return by_mode


def measured_steps_to(curve: pd.DataFrame, threshold: float) -> Optional[float]:
    """Where the measured retention first reaches `threshold`, interpolated in log steps between
    the measured budgets (None if it never does)."""
    c = curve.sort_values("step")
    ret = (c["accuracy"] / c["teacher_accuracy"]).to_numpy(float)
    steps = c["step"].to_numpy(float)
    above = np.nonzero(ret >= threshold)[0]
    if not above.size:
        return None
    i = int(above[0])
    if i == 0:
        return float(steps[0])
    f = (threshold - ret[i - 1]) / (ret[i] - ret[i - 1])
    return float(math.exp(math.log(steps[i - 1]) + f * math.log(steps[i] / steps[i - 1])))


def _steps_case(c, curve: pd.DataFrame, threshold: float) -> Optional[dict]:
    measured = measured_steps_to(curve, threshold)
    if measured is None:
        return None
    tokens = c.tokens_to(threshold, 50)
    forecast = None if tokens is None else tokens / c.batch_tokens
    return {"model": c.model, "mode": c.mode, "measured_steps": measured,
            "forecast_steps_p50": forecast,
            "relative_error": None if forecast is None else forecast / measured - 1}
