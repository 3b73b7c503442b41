"""The timing loop: every call timed and kept raw.

CPU: `time.perf_counter_ns` around each call. CUDA: a pair of CUDA events around each call and a
synchronize after it, so the sample is device time of that call alone (queued work cannot leak
into the next sample).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class TimingSettings:
    warmup_calls: int = 5  # calls discarded before timing (caches, allocator, lazy init)
    min_calls: int = 30  # at least this many timed calls ...
    min_time_s: float = 2.0  # ... and at least this much timed wall time
    max_time_s: float = 60.0  # stop here even short of min_calls (slow models) ...
    floor_calls: int = 5  # ... but never with fewer than this many samples
    # calls timed after an idle gap (time_after_idle), within a wall-time budget of their own
    idle_calls: int = 20
    idle_max_time_s: float = 3.0

    @classmethod
    def quick(cls) -> "TimingSettings":
        return cls(warmup_calls=2, min_calls=10, min_time_s=0.5, max_time_s=10.0, floor_calls=3,
                   idle_calls=6, idle_max_time_s=0.6)


def time_cpu(fn: Callable[[], object], settings: TimingSettings) -> np.ndarray:
    """Per-call wall times in ns after warm-up, until min_calls and min_time_s are both met."""
    for _ in range(settings.warmup_calls):
        fn()
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    min_ns, max_ns = int(settings.min_time_s * 1e9), int(settings.max_time_s * 1e9)
    start = clock()
    elapsed = 0
    while (len(samples) < settings.min_calls or elapsed < min_ns) and (
        elapsed < max_ns or len(samples) < settings.floor_calls
    ):
        t0 = clock()
        fn()
        t1 = clock()
        append(t1 - t0)
        elapsed = t1 - start
    return np.asarray(samples, dtype=np.int64)


def time_cuda(fn: Callable[[], object], settings: TimingSettings) -> np.ndarray:
    """Per-call device times in ns measured with CUDA events, synchronizing after each call."""
    import torch

    for _ in range(settings.warmup_calls):
        fn()
    torch.cuda.synchronize()
    samples: list[int] = []
    min_s, max_s = settings.min_time_s, settings.max_time_s
    start = time.perf_counter()
    elapsed = 0.0
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    while (len(samples) < settings.min_calls or elapsed < min_s) and (
        elapsed < max_s or len(samples) < settings.floor_calls
    ):
        begin.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(int(begin.elapsed_time(end) * 1e6))  # ms -> ns
        elapsed = time.perf_counter() - start
    return np.asarray(samples, dtype=np.int64)


def time_calls(fn: Callable[[], object], settings: TimingSettings, device: str) -> np.ndarray:
    return time_cuda(fn, settings) if device == "cuda" else time_cpu(fn, settings)


def time_once_ms(fn: Callable[[], object], device: str = "cpu") -> float:
    """One call's latency in ms (used for the cold first call)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    t0 = time.perf_counter_ns()
    fn()
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    return (time.perf_counter_ns() - t0) / 1e6


def time_after_idle(fn: Callable[[], object], calls: int, gap_ms_mean: float,
                    seed: int = 0) -> np.ndarray:
    """Per-call wall times in ns of calls that each follow an idle gap (exponential, mean
    gap_ms_mean: what a request arriving at an idle server under Poisson arrivals finds). Back-
    to-back timing (time_cpu) never idles, so it misses what waking up costs: re-spinning
    thread pools, refilling caches evicted meanwhile (roi.loadcheck's two-state service)."""
    if calls < 1 or not gap_ms_mean > 0:
        raise ValueError("time_after_idle needs calls >= 1 and gap_ms_mean > 0")
    gaps_s = np.random.default_rng(seed).exponential(gap_ms_mean / 1e3, calls)
    clock = time.perf_counter_ns
    samples = np.empty(calls, dtype=np.int64)
    for i, gap in enumerate(gaps_s):
        time.sleep(float(gap))
        t0 = clock()
        fn()
        samples[i] = clock() - t0
    return samples


IDLE_GAP_PER_SERVICE = 2.0  # idle gap = 2 x the service time: what utilization ~1/3 leaves
IDLE_GAP_MS = (5.0, 100.0)  # ... kept within these bounds
IDLE_FLOOR_CALLS = 3


def idle_gap_ms(service_ms: float) -> float:
    """The mean idle gap bench times after-idle calls with. Under Poisson arrivals a request
    that finds the server idle follows an exponential gap; the wake-up it pays depends little on
    the gap's length once the runtime's worker threads have gone to sleep (measured under
    LoadGen at 15-113 QPS: the same 4-29% over back to back, BENCHMARKS.md, issue 5)."""
    low, high = IDLE_GAP_MS
    return float(min(max(IDLE_GAP_PER_SERVICE * service_ms, low), high))


def time_idle_calls(fn: Callable[[], object], settings: TimingSettings, service_ms: float,
                    device: str = "cpu", seed: int = 0) -> tuple[np.ndarray, float]:
    """(after-idle samples in ns, the mean gap in ms) for one configuration: as many calls as
    settings.idle_calls and settings.idle_max_time_s allow (at least IDLE_FLOOR_CALLS), each
    after an exponential idle gap (idle_gap_ms). CUDA calls are synchronized so the sample holds
    the device work."""
    gap = idle_gap_ms(service_ms)
    fit = int(settings.idle_max_time_s * 1000 / (gap + max(service_ms, 1e-3)))
    calls = max(min(settings.idle_calls, fit), min(IDLE_FLOOR_CALLS, settings.idle_calls))
    if calls < 1:
        return np.empty(0, dtype=np.int64), gap
    if device == "cuda":
        import torch

        def timed():
            fn()
            torch.cuda.synchronize()
    else:
        timed = fn
    return time_after_idle(timed, calls, gap, seed), gap
