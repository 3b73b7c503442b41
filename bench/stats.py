"""Statistics from raw per-call samples (nanoseconds in, milliseconds out).

Percentiles use numpy's default linear interpolation (type 7, the same as pandas and R's
default), so they can be checked by hand against a sorted list.
"""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def summarize_ns(samples_ns: np.ndarray | list[int]) -> dict[str, float]:
    """Latency summary of raw samples: mean, std (sample, ddof=1), min, max, percentiles, CV."""
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if ms.size == 0:
        raise ValueError("no samples to summarize")
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    out = {
        "latency_ms_mean": mean,
        "latency_ms_std": std,
        "latency_ms_min": float(ms.min()),
        "latency_ms_max": float(ms.max()),
        "latency_ms_cv": std / mean if mean > 0 else float("nan"),
        "n_calls": int(ms.size),
    }
    for p, value in zip(PERCENTILES, np.percentile(ms, PERCENTILES)):
        out[f"latency_ms_p{p}"] = float(value)
    return out


def throughput(batch_size: int, seq_len: int, mean_ms: float) -> dict[str, float]:
    """Samples and tokens per second from the mean latency: total work over total time."""
    per_s = batch_size / (mean_ms / 1e3)
    return {"throughput_samples_s": per_s, "throughput_tokens_s": per_s * seq_len}


def speedup_ci(
    baseline_ns: np.ndarray,
    candidate_ns: np.ndarray,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Ratio of medians baseline / candidate, with a percentile bootstrap confidence interval.

    Each bootstrap round resamples both sets independently (they are independent runs)."""
    a = np.asarray(baseline_ns, dtype=np.float64)
    b = np.asarray(candidate_ns, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("speedup needs samples on both sides")
    rng = np.random.default_rng(seed)
    ra = np.median(rng.choice(a, size=(n_boot, a.size), replace=True), axis=1)
    rb = np.median(rng.choice(b, size=(n_boot, b.size), replace=True), axis=1)
    ratios = ra / rb
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(ratios, [alpha, 1.0 - alpha])
    return float(np.median(a) / np.median(b)), float(lo), float(hi)
