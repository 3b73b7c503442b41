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
