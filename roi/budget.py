"""The training budget as a decision variable: for each student, the fewest steps whose
forecast retention reaches the threshold at the band's pessimistic end (P10), and what those
steps cost once (training + the teacher's labelling, roi.payback.one_time_cost).

Where a student has no forecast (no pilot curve, or one the forecast could not fit), its band
stays the prior (roi.retention), labelled so, and its budget is the planner's default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .forecast import CurveForecast
from .payback import OneTimeCost
from .retention import RetentionBand

CostFn = Callable[[int, float], OneTimeCost]  # (student params, training tokens) -> one-time cost
GRID_POINTS = 24  # budgets per student the report draws (log-spaced up to the largest)


@dataclass(frozen=True)
class BudgetChoice:
    """A student's budget: steps, the band forecast there, and its one-time cost."""

    steps: int
    tokens: float
    band: RetentionBand
    reaches: bool  # the band's low end reaches the threshold at `steps`
    one_time: OneTimeCost
    source: str  # forecast, or prior (no curve)
    note: str = ""
    grid: tuple[dict, ...] = field(default=())  # retention P10/P50/P90 at doubling budgets
    baseline: tuple[dict, ...] = field(default=())  # the no-KD baseline's forecast, same budgets
    local_hours: Optional[float] = None  # at the pilots' measured speed, where they ran
    steps_p50: Optional[int] = None  # the fewest steps whose forecast P50 reaches the threshold

    def record(self) -> dict:
        return {"steps": self.steps, "tokens": self.tokens, "source": self.source,
                "reaches_threshold": self.reaches, "retention_band": self.band.as_list(),
                "retention_p50": self.band.mid, "one_time_usd": self.one_time.total_usd,
                "training_usd": self.one_time.training_usd,
                "labeling_usd": self.one_time.labeling_usd, "note": self.note,
                "local_hours": self.local_hours, "steps_p50": self.steps_p50,
                "grid": [dict(g) for g in self.grid],
                "baseline_grid": [dict(g) for g in self.baseline]}


def nice_steps(tokens: float, batch_tokens: float) -> int:
    """Steps for `tokens`, rounded up to two significant figures (1,537 -> 1,600)."""
    steps = max(1, math.ceil(tokens / batch_tokens))
    scale = 10 ** max(0, int(math.log10(steps)) - 1)
    return int(math.ceil(steps / scale) * scale)


def forecast_band(fc: CurveForecast, steps: int, ratio: float, note: str) -> RetentionBand:
    lo, mid, hi = (float(x) for x in fc.retention(steps * fc.batch_tokens))
    return RetentionBand(lo, hi, "forecast", ratio, note, mid=mid, steps=steps)


def grid_rows(fc: Optional[CurveForecast], max_steps: int) -> tuple[dict, ...]:
    """Retention P10/P50/P90 at log-spaced budgets from the first pilot point to max_steps
    (what the report draws)."""
    if fc is None:
        return ()
    first = max(1.0, float(fc.points["tokens"].min()) / fc.batch_tokens)
    steps = sorted({int(round(s)) for s in np.geomspace(first, max(max_steps, first),
                                                       GRID_POINTS)})
    lo, mid, hi = fc.retention(np.array(steps, float) * fc.batch_tokens)
    return tuple({"steps": s, "retention_p10": float(a), "retention_p50": float(b),
                  "retention_p90": float(c)} for s, a, b, c in zip(steps, lo, mid, hi))


def choose(fc: Optional[CurveForecast], prior: RetentionBand, params: int, threshold: float,
           *, max_steps: int, default_steps: int, batch_tokens: float, cost: CostFn,
           baseline: Optional[CurveForecast] = None, why_no_forecast: str = "",
           piloted: bool = False) -> BudgetChoice:
    """The fewest steps (up to max_steps) whose retention P10 reaches `threshold`; without a
    forecast, the prior at the default budget (which cannot qualify when other students were
    `piloted`)."""
    if fc is None:
        note = f"no forecast ({why_no_forecast or 'no pilot curve'}): the prior, at the " \
               f"planner's default budget"
        tokens = default_steps * batch_tokens
        reaches = prior.meets(threshold) and not piloted
        if piloted:  # beside students with a measured forecast, a prior is no evidence
            note += "; not a candidate while other students have pilot curves (pilot it too)"
        return BudgetChoice(default_steps, tokens, prior, reaches, cost(params, tokens),
                            "prior", note)
    limit = max_steps * fc.batch_tokens
    found, mid = fc.tokens_to(threshold, 10, limit), fc.tokens_to(threshold, 50, limit)
    steps_p50 = None if mid is None else min(nice_steps(mid, fc.batch_tokens), max_steps)
    if found is not None:
        steps = min(nice_steps(found, fc.batch_tokens), max_steps)
        note = f"the fewest steps whose forecast P10 reaches {threshold * 100:g}%"
    else:  # its budget is where the P50 reaches the threshold, else the largest considered
        steps = steps_p50 or max_steps
        lo, p50, _ = (float(x) for x in fc.retention(max_steps * fc.batch_tokens))
        ceiling = fc.asymptote()
        note = (f"does not reach {threshold * 100:g}% at P10 within the largest budget "
                f"considered ({max_steps:,} steps: P10 {lo:.1%}, P50 {p50:.1%}"
                + ("" if ceiling is None else f"; forecast asymptote {ceiling:.1%}") + ")")
        if steps_p50:
            note += f"; its P50 reaches it at {steps_p50:,} steps: not confirmed"
    band = forecast_band(fc, steps, prior.compression_ratio, note)
    tokens = steps * fc.batch_tokens
    speed = fc.tokens_per_s
    return BudgetChoice(steps, tokens, band, band.meets(threshold), cost(params, tokens),
                        "forecast", note, grid_rows(fc, max_steps), grid_rows(baseline, max_steps),
                        tokens / speed / 3600 if speed else None, steps_p50)
