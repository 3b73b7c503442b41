"""The figures a report shows that are computed, not read, from the results tables and a
distillation's metrics: where an achieved figure lies against its predicted band, predicted
latency beside achieved, the measured rows of a results table. (What the planner chooses, the
cheapest configuration per scenario and model, the seed's ranges beside our figures, each
candidate's headline cost and KD's gain, is stored in the plan: roi/choices.py.)

Pure pandas (no torch): reports/ renders what these return and computes nothing itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from contracts.numbers import number


def reduction(student: Any, teacher: Any) -> float | None:
    """1 - student / teacher; None where either is missing or the teacher's is not positive."""
    s, t = number(student), number(teacher)
    return None if s is None or t is None or t <= 0 else 1 - s / t


def ok_results(df: pd.DataFrame | None) -> pd.DataFrame:
    """ok rows with a `latency` (p50, else mean) and `latency_hi` (p90, else latency)."""
    if df is None or df.empty or "model" not in df:
        return pd.DataFrame(columns=["model", "backend", "dtype", "batch_size", "seq_len",
                                     "latency", "latency_hi", "params"])
    ok = df[df["status"].fillna("ok") == "ok"].copy() if "status" in df else df.copy()
    p50 = ok["latency_ms_p50"] if "latency_ms_p50" in ok else pd.Series(np.nan, ok.index)
    mean = ok["latency_ms_mean"] if "latency_ms_mean" in ok else pd.Series(np.nan, ok.index)
    ok["latency"] = pd.to_numeric(p50, errors="coerce").fillna(pd.to_numeric(mean,
                                                                               errors="coerce"))
    p90 = ok["latency_ms_p90"] if "latency_ms_p90" in ok else pd.Series(np.nan, ok.index)
    ok["latency_hi"] = pd.to_numeric(p90, errors="coerce").fillna(ok["latency"])
    if "params" not in ok:
        ok["params"] = 0
    return ok[np.isfinite(ok["latency"].astype(float))]


def band_verdict(value: float | None, band: Any) -> str | None:
    """Where an achieved figure lies against a predicted [low, high] band; None without both."""
    if value is None or not isinstance(band, (list, tuple)) or len(band) != 2 \
            or number(band[0]) is None:
        return None
    return "inside the band" if band[0] <= value <= band[1] else \
        ("below the band" if value < band[0] else "above the band")


def latency_pairs(results: pd.DataFrame | None, student_results: pd.DataFrame | None,
                   teacher: str, trained: str) -> pd.DataFrame:
    """Predicted (the student's architecture measured before training) beside achieved (the
    distilled student benchmarked again), on the configurations both measured."""
    cols = ["config", "predicted_ms", "achieved_ms"]
    before = ok_results(results)
    after = ok_results(student_results)
    if before.empty or after.empty:
        return pd.DataFrame(columns=cols)
    before = before[before["model"] == trained]
    if "role" in after and (after["role"] == "student").any():
        after = after[after["role"] == "student"]
    after = after[after["model"] != teacher]
    keys = ["backend", "dtype", "batch_size", "seq_len"]
    both = before.merge(after, on=keys, suffixes=("_b", "_a"))
    if both.empty:
        return pd.DataFrame(columns=cols)
    both = both.drop_duplicates(keys).sort_values(keys)
    return pd.DataFrame({
        "config": [f"{r.backend}/{r.dtype} b{int(r.batch_size)}" for r in both.itertuples()],
        "predicted_ms": both["latency_b"].to_numpy(float),
        "achieved_ms": both["latency_a"].to_numpy(float)})
