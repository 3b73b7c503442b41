"""Sanity warnings on a results table: measurements whose spread says the machine was busy; and
on a distillation's metrics: a teacher that teaches nothing (see distill_warnings).

A latency measured while other work shares the machine spreads out: its coefficient of variation
(std / mean) climbs, and calls timed after idle gaps stop agreeing with calls timed back to back.
The planner's figures are only as good as those measurements, so the plan names such rows,
plainly and once per model and backend, and says what to do: measure again on an idle machine.

Thresholds (documented; see roi.measurements.DEFAULT_CV for the range this project measured):

- CV_LIMIT = 0.5: latency CVs on quiet CPU machines ran 0.05-0.5 in this project's sweeps; a CV
  above the top of that range means the spread came from outside the model.
- AFTER_IDLE_RANGE = (0.5, 4.0): a call after an idle gap pays cold caches, so its median is
  somewhat above the back-to-back median (the sizing's two-state service time uses it); a
  median under half of it, or over 4x, means one of the two was measured under other load.

Pure: pandas in, strings out (no torch, no I/O).
"""

from __future__ import annotations

import math

import pandas as pd

CV_LIMIT = 0.5
AFTER_IDLE_RANGE = (0.5, 4.0)
ADVICE = "the machine was likely busy; rerun on an idle machine"


def _number(value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def measurement_warnings(df: pd.DataFrame, cv_limit: float = CV_LIMIT,
                         after_idle_range: tuple[float, float] = AFTER_IDLE_RANGE) -> list[str]:
    """One warning per (model, backend) whose measured CV exceeds `cv_limit` or whose
    after-idle median falls outside `after_idle_range` times its back-to-back median; the
    worst row of each speaks for it. CVs a table did not measure (roi.measurements fills an
    assumed one, cv_source 'assumed ...') are not judged."""
    if df is None or df.empty or not {"model", "backend"} <= set(df.columns):
        return []
    model, backend = df["model"].astype(str), df["backend"].astype(str)
    found = []
    for key in dict.fromkeys(zip(model, backend)):  # in table order, each once
        text = _warning(df[(model == key[0]) & (backend == key[1])], key, cv_limit,
                        after_idle_range)
        if text:
            found.append(text)
    return found


def _warning(same: pd.DataFrame, key: tuple, cv_limit: float,
             after_idle_range: tuple[float, float]) -> str | None:
    measured = same
    if "cv_source" in same.columns:
        measured = same[same["cv_source"].fillna("measured").astype(str) == "measured"]
    where = f"measurements on {key[0]} {key[1]}"
    if "latency_ms_cv" in measured.columns and len(measured):
        cvs = measured["latency_ms_cv"].map(_number)
        worst = cvs.max(skipna=True)
        if isinstance(worst, float) and worst > cv_limit:
            n = int((cvs > cv_limit).sum())
            return (f"{where} spread CV {worst:.2f} > {cv_limit:g} ({n} of {len(cvs)} "
                    f"row{'s' if len(cvs) != 1 else ''}): {ADVICE}")
    if {"after_idle_ms_p50", "latency_ms_p50"} <= set(same.columns):
        ratio = (same["after_idle_ms_p50"].map(_number) / same["latency_ms_p50"].map(_number))
        lo, hi = after_idle_range
        off = ratio[(ratio < lo) | (ratio > hi)]
        if len(off):
            r = float(off.iloc[(off.map(lambda x: abs(math.log(x)))).argmax()])
            return (f"{where} drift after idle: median {r:.2f}x the back-to-back median "
                    f"(expected {lo:g}-{hi:g}x): {ADVICE}")
    return None


def distill_warnings(metrics: dict) -> list[str]:
    """What a distillation's metrics.json says about its teacher, each warning once: a teacher
    no more accurate than the student trained without it (untrained, or too small to teach),
    retention above 100% (the student beats its teacher), and a teacher with fewer parameters
    than its student. Retention then says little."""
    def accuracy(key: str) -> float:
        part = metrics.get(key)
        return _number(part.get("accuracy")) if isinstance(part, dict) else math.nan

    teacher, baseline = accuracy("teacher"), accuracy("baseline")
    retention = _number(metrics.get("retention_accuracy"))
    found = []
    if teacher <= baseline:  # NaN (a figure missing) compares False: no warning
        found.append(f"the teacher is no more accurate ({teacher:.1%}) than the student trained "
                     f"without it ({baseline:.1%}): it is likely untrained or too small to "
                     "teach, so retention and the KD gain say little; distill from a trained "
                     "teacher")
    if retention > 1:
        found.append(f"retention {retention:.1%} is above 100%: the student beats its teacher, "
                     "so the teacher is likely undertrained and retention overstates what "
                     "distillation kept")
    t_params, s_params = (_number(metrics.get(k)) for k in ("teacher_params", "student_params"))
    if t_params < s_params:  # records before issue 18 hold no teacher_params: NaN, no warning
        found.append(f"the teacher ({t_params:,.0f} parameters) is smaller than its student "
                     f"({s_params:,.0f}): distillation compresses nothing, and retention "
                     "compares the student with a weaker model; distill from a larger teacher")
    return found
