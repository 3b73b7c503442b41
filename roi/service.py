"""From results rows to service times for sizing: one row per (hardware, model, backend, dtype,
batch size), measured where that hardware was measured and projected otherwise.

A forward pass over the measured sequence (the results' seq_len) is the unit the tables hold. A
request of a scenario is a prefill of tokens_in plus tokens_out decode steps:

    service = overhead + (forward - overhead) · tokens_in / seq_len + tokens_out · step

(compute grows with tokens; attention's quadratic share is left out, which flatters long
prompts), where a decode step is the measured time per output token (tpot_ms) where the row has
one, else the roofline of a one-token forward that still reads all the weights. That holds for
an artifact that decodes with a KV cache (decode_mode kv-cache: torch, and the ONNX decoding
graph models/decode_export.py builds). An artifact without one (decode_mode recompute: ONNX files
of models exported without a cache, tables written before it existed) is costed as what it does:
output token i is a whole forward over tokens_in + i tokens,

    decode = Σ_{i=1..tokens_out} [overhead + (forward - overhead) · (tokens_in + i) / seq_len]

Projected rows keep the latency CV and the decode mode that the same configuration showed on the
machine they were projected from.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from .hardware import Hardware, Runtime
from .measurements import KV_CACHE, RECOMPUTE
from .projection import (
    MEMORY_EFFICIENCY,
    Fit,
    TargetRates,
    own_rates,
    pick_reference,
    target_rates,
)
from .sizing import ServiceTime

log = logging.getLogger(__name__)

CONFIG_COLUMNS = ["model", "role", "backend", "dtype", "batch_size", "seq_len"]
BANDS = ("p10", "p50", "p90")
RECOMPUTE_NOTE = ("decode recomputes the whole forward for every new token (the artifact has "
                  "no KV cache)")
NOT_APPLICABLE = "not applicable"  # source of a row whose hardware does not run its runtime


def model_configs(results: pd.DataFrame) -> pd.DataFrame:
    """Every measured (model, backend, dtype, batch, seq) once, with its size figures."""
    cols = CONFIG_COLUMNS + ["params", "flops_per_sample", "weight_bytes"]
    if "n_layers" in results.columns:
        cols.append("n_layers")
    return results[cols].drop_duplicates(CONFIG_COLUMNS).reset_index(drop=True)


def machine_kinds(results: pd.DataFrame) -> dict[str, str]:
    kinds = results.assign(k=np.where(results["device"].astype(str).str.startswith("cuda"),
                                      "gpu", "cpu"))
    return dict(zip(kinds["machine"], kinds["k"]))


def forward_times(results: pd.DataFrame, fits: list[Fit], hardware: list[Hardware],
                  memory_efficiency: float = MEMORY_EFFICIENCY) -> pd.DataFrame:
    """Forward and decode-step times (P10/P50/P90 of the mean, ms) per hardware × config.

    Columns: hardware, CONFIG_COLUMNS, size figures, fwd_ms_{p10,p50,p90}, step_ms_{...},
    overhead_ms, service_cv, source (measured / projected / not applicable), note,
    deploy_runtime, and the measured memory figures of the row the latency shape comes from.

    A configuration the hardware's catalog `runtimes` do not cover (ORT's dynamic int8 on a GPU
    or on Inferentia2) is not costed there: its times are NaN ("latency unknown" downstream) and
    its note says why. One they cover through a proxy (torch-eager/bf16 for AWS Neuron) is
    projected from the proxy and named after the deployed runtime. Measured rows, and rows the
    hardware's own calibration predicts, are kept whatever the catalog says: it ran there."""
    configs = model_configs(results).to_dict("records")
    kinds = machine_kinds(results)
    # the row a projection keeps its CV and memory from: the same configuration on the machine
    # with the lowest mean (the least disturbed run)
    shapes: dict[tuple, dict] = {}
    for rec in results.sort_values("latency_ms_mean").to_dict("records"):
        shapes.setdefault(_key(rec), rec)
    measured: dict[tuple, dict] = {}
    for rec in results[results["hardware"].notna()].to_dict("records"):
        measured.setdefault((rec["hardware"], *_key(rec)), rec)
    rows = [_one(hw, c, measured, shapes, fits, kinds, memory_efficiency)
            for hw in hardware for c in configs]
    return pd.DataFrame(rows)


def _key(rec: dict) -> tuple:
    return tuple(rec[c] for c in CONFIG_COLUMNS)


def _one(hw, c, measured, shapes, fits, kinds, memory_efficiency) -> dict:
    row = measured.get((hw.name, *_key(c)))
    machines = {r["machine"] for k, r in measured.items() if k[0] == hw.name}
    own = {(f.backend, f.dtype): f for f in fits if f.machine in machines}
    pair = f"{c['backend']}/{c['dtype']}"
    if row is not None:
        return {**_measured(hw, c, row, own.get((c["backend"], c["dtype"]))),
                "deploy_runtime": pair}
    mine = (c["backend"], c["dtype"]) in own  # it ran here: its own calibration predicts it
    runtime = None if mine else hw.runtime_for(c["backend"], c["dtype"])
    if runtime is None and not mine:
        why = (f"not applicable: {hw.name} does not run {pair} (its catalog runtimes: "
               f"{hw.runtimes_text()}; a row's runtimes can be set with --hardware FILE)")
        return {**_projected(hw, c, why, shapes[_key(c)]), "source": NOT_APPLICABLE,
                "deploy_runtime": None}
    rates = _rates(hw, c, own, fits, kinds, memory_efficiency)
    out = _projected(hw, c, rates, shapes[_key(c)], runtime)
    shape = shapes[_key(c)]
    if hw.vcpus and kinds.get(shape["machine"]) == "cpu" and runtime is not None \
            and runtime.proxy_for is None and np.isfinite(out["fwd_ms_p50"]):
        # CPU to CPU instance, same runtime: the wake-up after idle scales with the forward
        share = wake_ms(shape) / float(shape["latency_ms_p50"])
        out["wake_ms"] = share * out["fwd_ms_p50"]
        _scaled_tpot(out, shape)
    return out


def _scaled_tpot(out: dict, shape: dict) -> None:
    """CPU to CPU instance, same runtime: the decode step is the measured time per output token
    scaled as the forward scales, not the roofline of a one-token forward, whose per-call
    overhead comes from whole-window calls (ONNX Runtime's fit puts it at several times the
    step it measured)."""
    tpot = shape.get("tpot_ms", np.nan)
    if _recomputes(shape) or not (np.isfinite(tpot) and tpot > 0):
        return
    scale = 1.0 / float(shape["latency_ms_mean"])
    for b in BANDS:
        out[f"step_ms_{b}"] = float(tpot) * out[f"fwd_ms_{b}"] * scale
    out["note"] += "; decode step: its measured tpot scaled as the forward"


def _rates(hw, c, own, fits, kinds, memory_efficiency) -> TargetRates | str:
    if (c["backend"], c["dtype"]) in own:
        return own_rates(own[(c["backend"], c["dtype"])])
    gpu = not hw.vcpus  # accelerators: GPUs, NPUs, Inferentia; CPU rows (instances, CPU-only
    # boards such as a Raspberry Pi) name their vCPUs or cores
    ref = pick_reference(fits, c["backend"], c["dtype"], gpu, kinds)
    if ref is None:
        return f"no calibration for {c['backend']}/{c['dtype']} (fewer than 2 measured sizes)"
    return target_rates(ref, hw, memory_efficiency,
                        cross_kind=gpu and kinds.get(ref.machine) != "gpu")


def _base(hw: Hardware, c: dict) -> dict:
    return {"hardware": hw.name, "hardware_kind": hw.kind,
            **{k: c[k] for k in CONFIG_COLUMNS},
            "params": int(c["params"]), "flops_per_sample": float(c["flops_per_sample"]),
            "weight_bytes": float(c["weight_bytes"]), "n_layers": _layers(c)}


def _layers(c: dict) -> float:
    value = c.get("n_layers")
    return float(value) if value is not None and np.isfinite(value) else np.nan


def _memory(row: dict) -> dict:
    return {"peak_rss_mb": row.get("peak_rss_mb", np.nan),
            "rss_start_mb": row.get("rss_start_mb", np.nan)}


def _measured(hw: Hardware, c: dict, row: dict, fit: Fit | None) -> dict:
    mean = float(row["latency_ms_mean"])
    overhead = float(fit.overhead_at(_layers(c))) if fit is not None else 0.0
    if _recomputes(row):
        step, step_note = mean, RECOMPUTE_NOTE
    elif math.isfinite(row.get("tpot_ms", np.nan)) and row["tpot_ms"] > 0:
        step, step_note = float(row["tpot_ms"]), "measured tpot"
    elif fit is not None:
        step = float(own_rates(fit).predict_ms(_step_flops(c), c["weight_bytes"], c["params"],
                                               _layers(c)))
        step_note = "decode step from this hardware's calibration"
    else:
        step, step_note = mean / float(c["seq_len"]), "decode step = forward / seq_len"
    return {**_base(hw, c), **{f"fwd_ms_{b}": mean for b in BANDS},
            **{f"step_ms_{b}": step for b in BANDS},
            "overhead_ms": min(overhead, mean), "service_cv": float(row["latency_ms_cv"]),
            "wake_ms": wake_ms(row), "source": "measured", "measured_on": row["machine"],
            "note": f"measured on {row['machine']}; {step_note}", **_memory(row),
            "decode_mode": _decode_mode(row)}


def _decode_mode(row: dict) -> str:
    return str(row.get("decode_mode") or KV_CACHE)


def _recomputes(row: dict) -> bool:
    return _decode_mode(row) == RECOMPUTE


def wake_ms(row: dict) -> float:
    """What a call that finds the server idle pays over one back to back: the median of the
    calls bench timed after idle gaps minus the median of its back-to-back calls (>= 0), where
    bench measured both; 0 otherwise. Projections to a cloud CPU instance of the same runtime
    carry it as the same share of the forward time (sleeping worker threads and caches refilled
    work alike there); projections to accelerators carry none (another runtime, another
    wake-up, and nothing measured of it)."""
    idle, busy = row.get("after_idle_ms_p50"), row.get("latency_ms_p50")
    try:
        extra = float(idle) - float(busy)
    except (TypeError, ValueError):
        return 0.0
    return max(extra, 0.0) if math.isfinite(extra) else 0.0


def _projected(hw: Hardware, c: dict, rates: TargetRates | str, shape: dict,
               runtime: Runtime | None = None) -> dict:
    """runtime: the catalog entry that costs this configuration here (None: as measured)."""
    proxy = runtime.proxy_for if runtime is not None else None
    out = {**_base(hw, c), "service_cv": float(shape["latency_ms_cv"]), "source": "projected",
           "measured_on": None, **_memory(shape), "decode_mode": _decode_mode(shape),
           "deploy_runtime": proxy or f"{c['backend']}/{c['dtype']}"}
    as_proxy = f" as a proxy for {proxy}" if proxy else ""
    if isinstance(rates, str):
        nan = {f"{k}_ms_{b}": np.nan for k in ("fwd", "step") for b in BANDS}
        return {**out, **nan, "overhead_ms": np.nan,
                "note": rates + (f" ({as_proxy.strip()})" if proxy else "")}
    layers = _layers(c)
    fwd = float(rates.predict_ms(c["flops_per_sample"] * c["batch_size"], c["weight_bytes"],
                                 c["params"], layers))
    step = fwd if _recomputes(shape) else float(
        rates.predict_ms(_step_flops(c), c["weight_bytes"], c["params"], layers))
    lo, hi = rates.band
    note = f"projected from {rates.fit.machine} {rates.fit.backend}/{rates.fit.dtype}{as_proxy}"
    if _recomputes(shape):
        note += f"; {RECOMPUTE_NOTE}"
    return {**out, "fwd_ms_p10": fwd * lo, "fwd_ms_p50": fwd, "fwd_ms_p90": fwd * hi,
            "step_ms_p10": step * lo, "step_ms_p50": step, "step_ms_p90": step * hi,
            "overhead_ms": min(float(rates.overhead_at(layers)), fwd * lo),
            "note": note + (f"; {rates.note}" if rates.note else "")}


def _step_flops(c: dict) -> float:
    """One decode step: one new token per sequence of the batch."""
    return float(c["flops_per_sample"]) / float(c["seq_len"]) * float(c["batch_size"])


def request_service_ms(fwd: pd.DataFrame, tokens_in: int, tokens_out: int) -> pd.DataFrame:
    """Service time of one batch of requests (prefill tokens_in + tokens_out decode steps) as
    service_ms_{p10,p50,p90} columns beside `fwd`'s."""
    out = fwd.copy()
    out["wake_ms"] = (out["wake_ms"].astype(float).fillna(0.0) if "wake_ms" in out.columns
                      else 0.0)  # once per batch, not per token
    seq = out["seq_len"].astype(float)
    recompute = (out["decode_mode"] == RECOMPUTE if "decode_mode" in out.columns
                 else pd.Series(False, index=out.index))
    # recompute: output token i (1..tokens_out) is a forward over tokens_in + i tokens
    grown = tokens_out * tokens_in + tokens_out * (tokens_out + 1) / 2
    for b in BANDS:
        over = np.minimum(out["overhead_ms"], out[f"fwd_ms_{b}"])
        per_token = (out[f"fwd_ms_{b}"] - over) / seq
        prefill = over + per_token * tokens_in
        cached = tokens_out * out[f"step_ms_{b}"]
        recomputed = tokens_out * over + per_token * grown
        out[f"service_ms_{b}"] = prefill + np.where(recompute, recomputed, cached)
    return out


def service_time(row: pd.Series, band: str = "p50", raw_ms: np.ndarray | None = None
                 ) -> ServiceTime:
    """The service-time distribution of one row for roi.sizing: the raw per-call samples where
    bench stored them (scaled to the request), else a mean and CV."""
    mean = float(row[f"service_ms_{band}"])
    if raw_ms is not None and len(raw_ms):
        return ServiceTime.from_samples(np.asarray(raw_ms, float) * mean / np.mean(raw_ms))
    return ServiceTime.from_mean_cv(mean, float(row["service_cv"]))
