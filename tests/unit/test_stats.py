import math

import numpy as np
import pytest

from bench.stats import speedup_ci, summarize_ns, throughput


def test_summary_matches_hand_computed_values():
    s = summarize_ns([1_000_000, 2_000_000, 3_000_000, 4_000_000, 10_000_000])  # 1,2,3,4,10 ms
    assert s["n_calls"] == 5
    assert s["latency_ms_mean"] == pytest.approx(4.0)
    assert s["latency_ms_std"] == pytest.approx(math.sqrt(50 / 4))  # sample std, ddof=1
    assert s["latency_ms_min"] == 1.0 and s["latency_ms_max"] == 10.0
    assert s["latency_ms_p50"] == pytest.approx(3.0)
    # linear interpolation between order statistics: rank = p/100 * (n-1)
    assert s["latency_ms_p90"] == pytest.approx(4 + 0.6 * 6)
    assert s["latency_ms_p95"] == pytest.approx(4 + 0.8 * 6)
    assert s["latency_ms_p99"] == pytest.approx(4 + 0.96 * 6)
    assert s["latency_ms_cv"] == pytest.approx(math.sqrt(12.5) / 4.0)


def test_single_sample_has_zero_std_and_empty_is_refused():
    s = summarize_ns([5_000_000])
    assert s["latency_ms_std"] == 0.0 and s["latency_ms_p99"] == 5.0
    with pytest.raises(ValueError):
        summarize_ns([])


def test_throughput_from_mean_latency():
    t = throughput(batch_size=8, seq_len=128, mean_ms=4.0)
    assert t["throughput_samples_s"] == pytest.approx(2000.0)
    assert t["throughput_tokens_s"] == pytest.approx(256_000.0)


def test_speedup_of_constant_samples_is_exact():
    ratio, lo, hi = speedup_ci(np.full(50, 10_000_000), np.full(40, 2_000_000))
    assert (ratio, lo, hi) == (5.0, 5.0, 5.0)


def test_speedup_ci_brackets_the_ratio_and_narrows_with_more_samples():
    rng = np.random.default_rng(1)
    a_small, b_small = rng.normal(10, 1, 20), rng.normal(5, 0.5, 20)
    a_big, b_big = rng.normal(10, 1, 2000), rng.normal(5, 0.5, 2000)
    r1, lo1, hi1 = speedup_ci(a_small, b_small)
    r2, lo2, hi2 = speedup_ci(a_big, b_big)
    assert lo1 <= r1 <= hi1 and lo2 <= r2 <= hi2
    assert (hi2 - lo2) < (hi1 - lo1)
    assert lo2 < 2.0 < hi2 or abs(r2 - 2.0) < 0.05


def test_speedup_ci_does_not_depend_on_how_the_rounds_are_batched(monkeypatch):
    from bench import stats

    rng = np.random.default_rng(2)
    a, b = rng.lognormal(2.3, 0.3, 300), rng.lognormal(1.6, 0.3, 250)
    whole = speedup_ci(a, b, n_boot=400)
    monkeypatch.setattr(stats, "BOOT_BATCH_BYTES", 8 * 300 * 7)  # 7 rounds a batch
    assert speedup_ci(a, b, n_boot=400) == whole


def test_speedup_ci_memory_stays_bounded_at_100k_samples():
    """Peak traced memory (numpy's buffers included) under 50 MB at 100k samples a side; all
    rounds at once would hold n_boot x n values (1.6 GB a side at the default 2,000)."""
    import tracemalloc

    rng = np.random.default_rng(3)
    a, b = rng.lognormal(16, 0.3, 100_000), rng.lognormal(14.4, 0.3, 100_000)
    tracemalloc.start()
    try:
        ratio, lo, hi = speedup_ci(a, b, n_boot=40)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20 and lo <= ratio <= hi
