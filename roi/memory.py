"""Memory fit, device cost and multi-model packing.

Memory a deployed model needs = weights + activations + KV cache + runtime overhead:

- weights: the results' weight_bytes (the dtype's own size: int8 rows are ~1/4 of fp32);
- activations: the hidden states of every layer of a batch at once (an upper estimate; runtimes
  free them layer by layer), b · T · (layers · width) · 4 bytes;
- KV cache: keys and values of every layer for tokens_in + tokens_out, 2 · b · T · (layers ·
  width) · bytes;
- runtime: what else the measured process held at its peak (interpreter, libraries, allocator
  arenas: peak RSS − weights − activations) where the results have peak_rss_mb, else a stated
  DEFAULT_RUNTIME_MIB.

layers · width is not in the results table; a GPT's forward FLOPs reveal it, since attention
adds 4 · layers · width · T² FLOPs per sequence on top of 2 · params · T:
(layers · width) ≈ (flops_per_sample − 2 · params · T) / (4 · T²), floored at sqrt(params / 12)
(params ≈ 12 · layers · width², so layers · width >= sqrt(params / 12) for one layer or more).
It is an estimate, and says so.

A device is bought, not rented: its cost per month is the unit price spread over
DEVICE_AMORTIZATION_MONTHS (a stated assumption); phones the user already owns (no unit price in
the catalog) cost nothing to the deployment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from contracts.errors import InputError

from .cost import HOURS_PER_MONTH

MIB = 2**20
GIB = 2**30
DEFAULT_RUNTIME_MIB = 200.0  # a lean inference runtime plus its host process, when not measured
DEVICE_AMORTIZATION_MONTHS = 36  # a device bought for a three-year service life
ACT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 4}  # int8 rows keep float activations


def layer_width(flops_per_sample, params, seq_len) -> np.ndarray:
    """Estimated layers · width from FLOPs (see the module docstring)."""
    f, p, t = (np.asarray(x, float) for x in (flops_per_sample, params, seq_len))
    from_attention = (f - 2 * p * t) / (4 * t * t)
    return np.maximum(from_attention, np.sqrt(p / 12))


def memory_need(frame: pd.DataFrame, tokens_in: int, tokens_out: int,
                runtime_mib: float | None = None) -> pd.DataFrame:
    """weights_mib, activations_mib, kv_cache_mib, runtime_mib, total_mib (+ runtime_source)
    for each row (columns: batch_size, seq_len, params, flops_per_sample, weight_bytes, dtype,
    and optionally peak_rss_mb)."""
    b = frame["batch_size"].to_numpy(float)
    lw = layer_width(frame["flops_per_sample"], frame["params"], frame["seq_len"])
    act_bytes = frame["dtype"].map(ACT_BYTES).to_numpy(float)
    weights = frame["weight_bytes"].to_numpy(float) / MIB
    activations = b * frame["seq_len"].to_numpy(float) * lw * 4 / MIB
    kv = 2 * b * (tokens_in + tokens_out) * lw * act_bytes / MIB
    # bench's peak_rss_mb is the kernel's VmHWM in MiB (kB / 1024)
    peak = (frame["peak_rss_mb"].to_numpy(float) if "peak_rss_mb" in frame
            else np.full(len(frame), np.nan))
    measured = np.isfinite(peak) & (runtime_mib is None)
    default = DEFAULT_RUNTIME_MIB if runtime_mib is None else runtime_mib
    runtime = np.where(measured, np.maximum(peak - weights - activations, 0), default)  # MiB
    return pd.DataFrame({
        "weights_mib": weights, "activations_mib": activations, "kv_cache_mib": kv,
        "runtime_mib": runtime,
        "runtime_source": np.where(measured, "measured (peak RSS - weights - activations)",
                                   f"assumed {default:g} MiB"),
        "total_mib": weights + activations + kv + runtime,
    }, index=frame.index)


def memory_limit_mib(limit_gib: float | None, hardware_gib: float | None) -> float:
    """The scenario's limit where it sets one, else the hardware's memory; inf when neither."""
    for gib in (limit_gib, hardware_gib):
        if gib is not None and math.isfinite(gib):
            return gib * GIB / MIB
    return math.inf


def fit_verdict(total_mib: float, limit_mib: float) -> str:
    """Plain words: 'fits (...)' or 'does not fit: needs X, limit Y'."""
    if math.isinf(limit_mib):
        return "fits (no memory figure to check against)"
    if total_mib <= limit_mib:
        return f"fits: needs {_size(total_mib)} of {_size(limit_mib)}"
    return f"does not fit: needs {_size(total_mib)}, limit {_size(limit_mib)}"


def _size(mib: float) -> str:
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def device_usd_per_hour(unit_usd: float | None,
                        amortization_months: float = DEVICE_AMORTIZATION_MONTHS) -> float:
    """A bought device as an hourly figure, so devices and rented instances cost alike:
    unit price / (months × 730 h). 0 for a device without a unit price (the user's own)."""
    if amortization_months <= 0:
        raise InputError(f"amortization_months must be > 0; got {amortization_months}")
    if unit_usd is None or not math.isfinite(unit_usd):
        return 0.0
    if unit_usd < 0:
        raise InputError(f"unit_usd must be >= 0; got {unit_usd}")
    return unit_usd / (amortization_months * HOURS_PER_MONTH)


# ------------------------------------------------------------------------------ packing


@dataclass(frozen=True)
class Item:
    """One model replica to place: its memory and the share of one accelerator's SLA-feasible
    rate it takes (load 0.4 = 40% of what one replica may carry within the SLA)."""

    name: str
    memory_mib: float
    load: float


def first_fit_decreasing(items: list[Item], memory_mib: float, load: float = 1.0
                         ) -> list[list[Item]]:
    """Bins (accelerators) holding the items: each bin within `memory_mib` and `load`. Items are
    taken largest first (by the larger of their two shares) into the first bin they fit."""
    for it in items:
        if it.memory_mib > memory_mib or it.load > load + 1e-12:
            raise InputError(f"packing: {it.name} needs {it.memory_mib:.0f} MiB and load "
                             f"{it.load:.3g}; a bin holds {memory_mib:.0f} MiB and load {load:g}")
    order = sorted(items, key=lambda i: max(i.memory_mib / memory_mib, i.load / load),
                   reverse=True)
    bins: list[list[Item]] = []
    used: list[tuple[float, float]] = []
    for it in order:
        for k, (m, l) in enumerate(used):
            if m + it.memory_mib <= memory_mib and l + it.load <= load + 1e-12:
                bins[k].append(it)
                used[k] = (m + it.memory_mib, l + it.load)
                break
        else:
            bins.append([it])
            used.append((it.memory_mib, it.load))
    return bins


def replica_items(name: str, memory_mib: float, load: float) -> list[Item]:
    """A model whose traffic needs `load` replicas' worth of capacity, as items of load <= 1."""
    if not (load >= 0 and math.isfinite(load)):
        raise InputError(f"packing: {name}: load must be finite and >= 0; got {load}")
    full, rest = int(math.floor(load + 1e-9)), load - math.floor(load + 1e-9)
    items = [Item(f"{name}#{i}", memory_mib, 1.0) for i in range(full)]
    if rest > 1e-9 or not items:
        items.append(Item(f"{name}#{full}", memory_mib, max(rest, 0.0)))
    return items


def packed_bins(n_models: int, memory_mib: float, load_per_model: float,
                bin_memory_mib: float) -> int:
    """Accelerators for n identical models, each carrying `load_per_model` replicas' worth of
    traffic: replicas with a full load take a bin each, the remainders are packed."""
    if not math.isfinite(load_per_model) or memory_mib > bin_memory_mib:
        return math.inf
    full = int(math.floor(load_per_model + 1e-9))
    rest = load_per_model - full
    items = [Item(f"model{i}", memory_mib, rest) for i in range(n_models) if rest > 1e-9]
    if not items and full == 0:  # no traffic at all: each model still has to be loaded
        items = [Item(f"model{i}", memory_mib, 0.0) for i in range(n_models)]
    return n_models * full + len(first_fit_decreasing(items, bin_memory_mib))
