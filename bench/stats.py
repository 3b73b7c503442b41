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


# Resampled values held at once per side (bounded memory): about 3x this at the peak (indices,
# values, the median's partition), whatever the sample count: ~25 MB at 100k samples.
BOOT_BATCH_BYTES = 8 * 2**20


def speedup_ci(
    baseline_ns: np.ndarray,
    candidate_ns: np.ndarray,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Ratio of medians baseline / candidate, with a percentile bootstrap confidence interval.

    Each bootstrap round resamples both sets independently (they are independent runs). The
    rounds run in batches of at most BOOT_BATCH_BYTES of resampled values per side, so memory
    stays bounded however many samples there are (not n_boot x n at once). Percentile rather
    than BCa: BCa's acceleration comes from a jackknife, which is inconsistent for a median
    and costs 2n medians of n samples (BENCHMARKS.md, "Bootstrap")."""
    a = np.asarray(baseline_ns, dtype=np.float64)
    b = np.asarray(candidate_ns, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("speedup needs samples on both sides")
    rng_a, rng_b = np.random.default_rng(seed).spawn(2)  # one stream per side: the result
    per_batch = max(1, BOOT_BATCH_BYTES // (8 * max(a.size, b.size)))  # ignores the batching
    ratios = np.empty(n_boot)
    for start in range(0, n_boot, per_batch):
        k = min(per_batch, n_boot - start)
        ratios[start:start + k] = _boot_medians(rng_a, a, k) / _boot_medians(rng_b, b, k)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(ratios, [alpha, 1.0 - alpha])
    return float(np.median(a) / np.median(b)), float(lo), float(hi)


def _boot_medians(rng: np.random.Generator, x: np.ndarray, k: int) -> np.ndarray:
    """Medians of k resamples (with replacement) of x."""
    values = x[rng.integers(0, x.size, (k, x.size))]
    return np.median(values, axis=1, overwrite_input=True)
