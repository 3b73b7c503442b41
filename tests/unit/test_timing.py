import numpy as np

from bench.timing import TimingSettings, time_cpu


def test_loop_meets_both_minimum_calls_and_minimum_time():
    calls = []
    s = TimingSettings(warmup_calls=3, min_calls=7, min_time_s=0.0, max_time_s=10.0)
    samples = time_cpu(lambda: calls.append(1), s)
    assert len(samples) == 7 and len(calls) == 10  # warm-up calls are not kept
    s = TimingSettings(warmup_calls=0, min_calls=1, min_time_s=0.05, max_time_s=10.0)
    samples = time_cpu(lambda: None, s)
    assert len(samples) > 1  # kept going until 50 ms of timed work
    assert samples.dtype == np.int64 and (samples >= 0).all()


def test_max_time_caps_slow_calls_but_keeps_the_floor():
    import time

    s = TimingSettings(warmup_calls=0, min_calls=1000, min_time_s=0.0, max_time_s=0.01,
                       floor_calls=4)
    samples = time_cpu(lambda: time.sleep(0.005), s)
    assert 4 <= len(samples) < 1000


def test_after_idle_calls_follow_the_budget_and_keep_a_floor():
    from bench.timing import IDLE_GAP_MS, idle_gap_ms, time_idle_calls

    assert idle_gap_ms(0.01) == IDLE_GAP_MS[0] and idle_gap_ms(1e6) == IDLE_GAP_MS[1]
    assert idle_gap_ms(10.0) == 20.0  # twice the service time in between
    calls = []
    s = TimingSettings(idle_calls=50, idle_max_time_s=0.06)
    samples, gap = time_idle_calls(lambda: calls.append(1), s, service_ms=1.0)
    # gaps of 5 ms: 0.06 s leaves room for 10 calls (gap + service), not the 50 asked for
    assert gap == 5.0 and len(samples) == len(calls) == 10
    samples, _ = time_idle_calls(lambda: None, TimingSettings(idle_max_time_s=0.0), 1.0)
    assert len(samples) == 3  # never fewer than the floor, even past the budget
    samples, _ = time_idle_calls(lambda: None, TimingSettings(idle_calls=0), 1.0)
    assert len(samples) == 0
