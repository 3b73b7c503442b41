import math

import pandas as pd
import pytest

from contracts.errors import InputError
from roi.memory import (
    DEFAULT_RUNTIME_MIB, GIB, MIB, Item, device_usd_per_hour, first_fit_decreasing, fit_verdict,
    layer_width, memory_limit_mib, memory_need, packed_bins, replica_items,
)


def _row(**kw):
    row = dict(batch_size=1, seq_len=128, params=1_000_000, dtype="fp32",
               weight_bytes=4_000_000, flops_per_sample=2 * 1_000_000 * 128 + 4 * 500 * 128**2)
    row.update(kw)
    return pd.DataFrame([row])


def test_layer_width_from_flops_and_its_floor():
    # 4·(layers·width)·T² of attention on top of 2·params·T: 500 recovered exactly
    assert layer_width(2e6 * 128 + 4 * 500 * 128**2, 1e6, 128) == pytest.approx(500)
    assert layer_width(2e6 * 128, 1e6, 128) == pytest.approx((1e6 / 12) ** 0.5)  # the floor


def test_memory_need_by_hand():
    need = memory_need(_row(batch_size=2), tokens_in=100, tokens_out=28).iloc[0]
    assert need["weights_mib"] == pytest.approx(4e6 / MIB)
    assert need["activations_mib"] == pytest.approx(2 * 128 * 500 * 4 / MIB)
    assert need["kv_cache_mib"] == pytest.approx(2 * 2 * 128 * 500 * 4 / MIB)
    assert need["runtime_mib"] == DEFAULT_RUNTIME_MIB
    assert need["runtime_source"].startswith("assumed")
    assert need["total_mib"] == pytest.approx(need[["weights_mib", "activations_mib",
                                                    "kv_cache_mib", "runtime_mib"]].sum())


def test_runtime_is_measured_where_peak_rss_is_known():
    need = memory_need(_row(peak_rss_mb=100.0), 128, 0).iloc[0]
    assert need["runtime_mib"] == pytest.approx(100 - need["weights_mib"] - need["activations_mib"])
    # peak RSS already holds weights and activations: only the request's KV cache adds
    assert need["total_mib"] == pytest.approx(100.0 + need["kv_cache_mib"])
    forced = memory_need(_row(peak_rss_mb=100.0), 128, 0, runtime_mib=10).iloc[0]
    assert forced["runtime_mib"] == 10


def test_fit_verdicts_in_plain_words():
    assert memory_limit_mib(1, 8) == 1024 and memory_limit_mib(None, 8) == 8 * 1024
    assert math.isinf(memory_limit_mib(None, None))
    assert fit_verdict(900, 1024) == "fits: needs 900 MiB of 1.00 GiB"
    assert fit_verdict(4 * 1024, 1024) == "does not fit: needs 4.00 GiB, limit 1.00 GiB"
    assert fit_verdict(1, math.inf).startswith("fits (no memory figure")
    # a 1 B-parameter fp32 model on the seed's 1 GB IoT device
    big = memory_need(_row(params=10**9, weight_bytes=4 * 10**9), 32, 8).iloc[0]
    assert fit_verdict(big["total_mib"], memory_limit_mib(1, 1)).startswith("does not fit")
    assert GIB == 1024 * MIB


def test_device_amortization():
    # $249 Jetson over 36 months of 730 h: $6.92 a month
    per_hour = device_usd_per_hour(249)
    assert per_hour * 730 == pytest.approx(249 / 36)
    assert device_usd_per_hour(None) == 0.0 and device_usd_per_hour(120, 12) * 730 == 10
    with pytest.raises(InputError, match="amortization_months"):
        device_usd_per_hour(100, 0)


def test_first_fit_decreasing_by_load():
    items = [Item(n, 1.0, load) for n, load in zip("abcde", (0.3, 0.6, 0.2, 0.6, 0.3))]
    bins = first_fit_decreasing(items, memory_mib=100)
    # sorted .6 .6 .3 .3 .2: [.6 .3] [.6 .3] [.2]
    assert [[i.name for i in b] for b in bins] == [["b", "a"], ["d", "e"], ["c"]]


def test_first_fit_decreasing_by_memory():
    items = [Item(f"m{i}", 30 * 1024, 0.1) for i in range(5)]
    bins = first_fit_decreasing(items, memory_mib=80 * 1024)
    assert [len(b) for b in bins] == [2, 2, 1]
    with pytest.raises(InputError, match="a bin holds"):
        first_fit_decreasing([Item("huge", 100 * 1024, 0.1)], memory_mib=80 * 1024)


def test_replicas_and_packed_bins():
    assert [i.load for i in replica_items("x", 1.0, 2.3)] == pytest.approx([1, 1, 0.3])
    assert [i.load for i in replica_items("x", 1.0, 0.0)] == [0.0]
    # two models each needing 2.3 replicas: 4 full + the two 0.3 remainders share one
    assert packed_bins(2, 1.0, 2.3, 1024) == 5
    # five light models of 30 GiB: memory decides, 2 per 80 GiB accelerator
    assert packed_bins(5, 30 * 1024, 0.1, 80 * 1024) == 3
    assert packed_bins(5, 1.0, 0.1, 1024) == 1
    assert packed_bins(5, 1.0, 0.0, 1024) == 1  # no traffic: still loaded somewhere
    assert math.isinf(packed_bins(2, 2048, 0.1, 1024))  # does not fit at all
    assert math.isinf(packed_bins(2, 1.0, math.inf, 1024))
