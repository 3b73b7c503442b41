"""LLM serving at scale, projected from an architecture and a hardware row: no weights, no GPU.

One replica is `tp` accelerators of one instance (tensor parallelism) running continuous
batching with `B` sequences in flight. Per replica, with W weight bytes, kv bytes of KV cache
per token of context (per GPU: ceil(K / tp) heads), P prompt and O output tokens:

- decode step (every sequence of the batch gains one token), memory- or compute-bound:
      t_step(B) = max((W/tp + B·kv·c̄) / (BW·e_bw), B·F_dec(c̄) / (tp·peak·e_dc)) + comm(B)
  with c̄ = P + O/2 the mean context while decoding;
- prefill of one prompt, compute-bound (or weight-read-bound for tiny prompts):
      t_pf = max(F_pre(P) / (tp·peak·e_pc), W/tp / (BW·e_bw)) + comm(P)
- tensor-parallel communication: two all-reduces per layer of n tokens' activations (bf16):
      comm(n) = 2·L·(latency + 2·(tp-1)/tp · n·d·2 bytes / (link·e_link)), 0 when tp = 1;
- continuous batching: B requests pass through in B·t_pf + O·t_step(B) (prefills interleave
  with decode steps), so requests/s = B / (B·t_pf + O·t_step); a sequence waits for the other
  B-1 prefills while it decodes: TPOT = ((B-1)·t_pf + O·t_step) / O; TTFT = t_pf + t_step
  (the step in flight when it arrives); end to end = TTFT + (O-1)·TPOT;
- memory: B at most (memory·utilization − W/tp) / (kv·(P + O)), every sequence at full length.

The efficiencies e are bands (roi/data/llm_serving.yaml, each with its source) and every figure
is projected at the pessimistic end, the middle and the optimistic end. Queueing is not
modelled beyond a target utilization per arrival type (headroom for Poisson traffic); the SLA
percentile is read as the steady-state value. Measured TTFT / TPOT calibrate the bands
(`implied_efficiency`, `Assumptions.calibrated`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from contracts.config import read_yaml, validate
from contracts.errors import InputError
from contracts.llm_arch import LLMSpec, bytes_per_param

from .cost import HOURS_PER_MONTH
from .hardware import Hardware

CASES = ("pessimistic", "mid", "optimistic")
ACT_BYTES = 2  # activations exchanged by the all-reduce are bf16/fp16
DEFAULT_DTYPES = ("bf16", "fp8", "int4")
BATCH_GRID = tuple(2**i for i in range(13))  # 1 ... 4096, plus the memory limit itself
BAND_NAMES = ("prefill_compute", "decode_compute", "decode_bandwidth", "allreduce_latency_us",
              "link_efficiency")


# --------------------------------------------------------------------------- assumptions


class _BandSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    band: tuple[float, float] = Field(description="[pessimistic, optimistic].")
    what: str = ""
    source: str = Field(min_length=1)


class _Sourced(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(gt=0)
    source: str = Field(min_length=1)


class _SLASpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_ms: float = Field(gt=0)
    tpot_ms: float = Field(gt=0)
    source: str = ""


class _AssumptionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    efficiency: dict[str, _BandSpec]
    memory_utilization: float = Field(gt=0, le=1)
    target_utilization: dict[str, float]
    interconnect_gb_s: dict[str, _Sourced]
    default_interconnect_gb_s: _Sourced
    fp8_hardware: list[str]
    sla_presets: dict[str, _SLASpec]


@dataclass(frozen=True)
class Band:
    """[pessimistic, optimistic] ends of an assumed figure; `source` says where it comes from."""

    pessimistic: float
    optimistic: float
    source: str = ""

    def values(self) -> np.ndarray:
        """Values for CASES, shape (3, 1) so they broadcast against a batch axis."""
        mid = (self.pessimistic + self.optimistic) / 2
        return np.array([[self.pessimistic], [mid], [self.optimistic]])


@dataclass(frozen=True)
class LLMSLA:
    """Latency bounds of one request; None leaves a bound out."""

    ttft_ms: Optional[float] = None
    tpot_ms: Optional[float] = None
    e2e_ms: Optional[float] = None
    name: str = ""

    def met(self, ttft, tpot, e2e) -> np.ndarray:
        ok = np.ones(np.shape(ttft), bool)
        for bound, value in ((self.ttft_ms, ttft), (self.tpot_ms, tpot), (self.e2e_ms, e2e)):
            if bound is not None:
                ok &= np.nan_to_num(value, nan=0.0) <= bound
        return ok

    def label(self) -> str:
        parts = [f"{k} <= {v:g} ms" for k, v in (("TTFT", self.ttft_ms), ("TPOT", self.tpot_ms),
                                                ("end-to-end", self.e2e_ms)) if v is not None]
        return (f"{self.name}: " if self.name else "") + (", ".join(parts) or "no bound")


@dataclass(frozen=True)
class Assumptions:
    prefill_compute: Band
    decode_compute: Band
    decode_bandwidth: Band
    allreduce_latency_us: Band
    link_efficiency: Band
    memory_utilization: float
    target_utilization: dict
    interconnect_gb_s: dict
    default_interconnect_gb_s: float
    fp8_hardware: tuple
    sla_presets: dict

    def calibrated(self, spread: float = 0.1, **measured: float) -> "Assumptions":
        """These assumptions with the named efficiency bands replaced by measured values
        ± `spread` (relative), e.g. calibrated(decode_bandwidth=0.62)."""
        changes = {}
        for name, value in measured.items():
            if name not in BAND_NAMES:
                raise InputError(f"calibrated: unknown band {name!r}; allowed: "
                                 f"{', '.join(BAND_NAMES)}")
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"calibrated: {name} must be a positive number; got {value!r}")
            lo, hi = value * (1 - spread), value * (1 + spread)
            if name == "allreduce_latency_us":
                lo, hi = hi, lo  # a longer latency is the pessimistic end
            else:
                hi = min(hi, 1.0)
            changes[name] = Band(lo, hi, f"measured {value:.3g} ± {spread:.0%}")
        return replace(self, **changes)

    def link_gb_s(self, hardware: str) -> float:
        return self.interconnect_gb_s.get(hardware, self.default_interconnect_gb_s)


def load_assumptions(path: str | None = None) -> Assumptions:
    """The shipped roi/data/llm_serving.yaml, or a user file of the same schema."""
    if path is None:
        res = resources.files("roi") / "data" / "llm_serving.yaml"
        with resources.as_file(res) as p:
            data, where = read_yaml(p, "LLM serving assumptions"), str(p)
    else:
        data, where = read_yaml(path, "LLM serving assumptions"), str(path)
    f = validate(_AssumptionsFile, data, f"{where}: ")
    missing = [n for n in BAND_NAMES if n not in f.efficiency]
    if missing:
        raise InputError(f"{where}: efficiency: missing band(s) {', '.join(missing)}")
    bands = {n: Band(*f.efficiency[n].band, f.efficiency[n].source) for n in BAND_NAMES}
    presets = {k: LLMSLA(v.ttft_ms, v.tpot_ms, None, k) for k, v in f.sla_presets.items()}
    return Assumptions(
        **bands, memory_utilization=f.memory_utilization,
        target_utilization=dict(f.target_utilization),
        interconnect_gb_s={k: v.value for k, v in f.interconnect_gb_s.items()},
        default_interconnect_gb_s=f.default_interconnect_gb_s.value,
        fp8_hardware=tuple(f.fp8_hardware), sla_presets=presets)


# --------------------------------------------------------------------------- hardware figures


def peak_flop_s(hw: Hardware, dtype: str, assumptions: Assumptions) -> tuple[float | None, str]:
    """Dense peak for `dtype` on `hw`, or (None, why not). int4 is weight-only: its matmuls run
    in 16-bit (or 8-bit where the device has no 16-bit figure, as NPUs)."""
    if dtype == "fp8" and hw.name not in assumptions.fp8_hardware:
        return None, f"{hw.name} has no FP8 tensor cores (use int8)"
    key = {"fp32": "peak_fp32_tflops", "bf16": "peak_bf16_tflops", "fp16": "peak_bf16_tflops",
           "fp8": "peak_int8_tops", "int8": "peak_int8_tops", "int4": "peak_bf16_tflops"}[dtype]
    value = hw.figure(key)
    if value is None and dtype == "int4":
        value = hw.figure("peak_int8_tops")
    if value is None:
        return None, f"{hw.name} has no published {key} (measure it with roi bench)"
    return value * 1e12, ""


def default_kv_dtype(dtype: str) -> str:
    """8-bit weights run with an 8-bit KV cache (as the published FP8 runs); others bf16."""
    return dtype if dtype in ("fp8", "int8") else "bf16"


# --------------------------------------------------------------------------- one replica


@dataclass(frozen=True)
class Replica:
    """What one replica can do: arrays of shape (3 cases, batches)."""

    batch: np.ndarray
    max_batch: int
    ttft_ms: np.ndarray
    tpot_ms: np.ndarray
    e2e_ms: np.ndarray
    step_ms: np.ndarray
    requests_s: np.ndarray
    output_tokens_s: np.ndarray
    weight_gib_per_gpu: float


def replica(spec: LLMSpec, hw: Hardware, dtype: str, tp: int, prompt_tokens: int,
            output_tokens: int, assumptions: Assumptions, batch: Sequence[int] | None = None,
            kv_dtype: str | None = None, memory_gib: float | None = None) -> Replica | str:
    """Projected latency and throughput of one `tp`-GPU replica at each batch size (default:
    BATCH_GRID up to the KV-cache limit, and the limit itself); a string says why it cannot
    run (no peak figure, does not fit)."""
    peak, why = peak_flop_s(hw, dtype, assumptions)
    bw, mem = hw.figure("memory_bandwidth_gb_s"), memory_gib or hw.figure("memory_gib")
    if peak is None:
        return why
    if bw is None or mem is None:
        return f"{hw.name} has no published memory bandwidth or memory size"
    kv_dtype = kv_dtype or default_kv_dtype(dtype)
    w_gpu = spec.weight_bytes(dtype) / tp
    kv_tok = spec.kv_bytes_per_token_per_gpu(tp, kv_dtype)
    free = mem * 2**30 * assumptions.memory_utilization - w_gpu
    max_batch = int(free // (kv_tok * (prompt_tokens + output_tokens))) if free > 0 else 0
    if max_batch < 1:
        return (f"does not fit: {w_gpu / 2**30:.1f} GiB of {dtype} weights per GPU + the KV "
                f"cache of one sequence exceed {mem:g} GiB × {assumptions.memory_utilization:g}")
    grid = [b for b in (batch or BATCH_GRID) if b <= max_batch]
    b = np.array(sorted(set(grid) | ({max_batch} if batch is None else set())), float)
    return _timings(spec, hw, tp, prompt_tokens, output_tokens, assumptions, b, max_batch,
                    w_gpu, kv_tok, peak, bw * 1e9)


def prefill_s(spec: LLMSpec, prompt_tokens: int, tp: int, peak: float, bw: float, w_gpu: float,
              e_pc, e_bw, batch: int = 1):
    """Seconds to prefill `batch` prompts at once (the communication term aside): compute-bound
    at e_pc of the peak, but never faster than one read of the weights at e_bw of the bandwidth;
    the LM head runs for the last position only."""
    return np.maximum(batch * spec.prefill_flops(prompt_tokens, 1) / (tp * peak * e_pc),
                      w_gpu / (bw * e_bw))


def _timings(spec: LLMSpec, hw: Hardware, tp: int, p: int, o: int, a: Assumptions,
             b: np.ndarray, max_batch: int, w_gpu: float, kv_tok: float, peak: float,
             bw: float) -> Replica:
    e_pc, e_dc, e_bw = a.prefill_compute.values(), a.decode_compute.values(), \
        a.decode_bandwidth.values()
    c_mean = p + o / 2
    comm = _comm_s(spec, hw, tp, a)
    step = np.maximum((w_gpu + b * kv_tok * c_mean) / (bw * e_bw),
                      b * spec.decode_flops_per_token(c_mean) / (tp * peak * e_dc)) + comm(b)
    prefill = prefill_s(spec, p, tp, peak, bw, w_gpu, e_pc, e_bw) + comm(p)
    cycle = b * prefill + o * step  # (3, nB): B requests through prefill and O decode steps
    ttft = prefill + step
    tpot = ((b - 1) * prefill + o * step) / o if o > 0 else np.full_like(cycle, np.nan)
    e2e = ttft + (max(o - 1, 0) * np.nan_to_num(tpot))
    req_s = b / cycle
    return Replica(np.broadcast_to(b, cycle.shape), max_batch, ttft * 1e3, tpot * 1e3, e2e * 1e3,
                   step * 1e3, req_s, req_s * o, w_gpu / 2**30)


def _comm_s(spec: LLMSpec, hw: Hardware, tp: int, a: Assumptions):
    if tp == 1:
        return lambda n: 0.0
    lat, link = a.allreduce_latency_us.values() * 1e-6, a.link_efficiency.values()
    link_bw = a.link_gb_s(hw.name) * 1e9 * link
    layers, d = spec.arch.num_layers, spec.arch.hidden_size

    def comm(n_tokens):
        volume = 2 * (tp - 1) / tp * np.asarray(n_tokens, float) * d * ACT_BYTES
        return 2 * layers * (lat + volume / link_bw)

    return comm


# --------------------------------------------------------------------------- best configuration


def tp_degrees(hw: Hardware) -> list[int]:
    """Powers of two up to the GPUs of one instance (devices: 1)."""
    n = hw.accelerators_per_instance if hw.kind == "cloud" else 1
    return [2**i for i in range(int(math.log2(n)) + 1)]


def best_point(r: Replica, sla: LLMSLA) -> dict[str, np.ndarray]:
    """Per case, the batch with the most requests/s that meets the SLA (NaN where none does)."""
    ok = sla.met(r.ttft_ms, r.tpot_ms, r.e2e_ms)
    score = np.where(ok, r.requests_s, -np.inf)
    idx = np.argmax(score, axis=1)
    rows = np.arange(score.shape[0])
    feasible = ok[rows, idx]
    out = {"meets_sla": feasible}
    for name in ("batch", "ttft_ms", "tpot_ms", "e2e_ms", "requests_s", "output_tokens_s"):
        out[name] = np.where(feasible, getattr(r, name)[rows, idx], np.nan)
    # the fastest this replica gets (batch 1), for a report of what the SLA would need
    out["e2e_ms_batch1"] = r.e2e_ms[:, 0]
    return out


@dataclass(frozen=True)
class Workload:
    """What an LLM fleet must serve (from a scenario, or given directly)."""

    prompt_tokens: int
    output_tokens: int
    design_qps: float
    mean_qps: float
    arrival: str = "poisson"
    models: int = 1

    @classmethod
    def from_scenario(cls, scenario) -> "Workload":
        w = scenario.workload
        return cls(w.tokens_in_per_request, w.tokens_out_per_request, w.design_qps, w.mean_qps,
                   w.arrival, w.models)


def sla_for(scenario=None, preset: str | None = None, assumptions: Assumptions | None = None,
            **bounds: float) -> LLMSLA:
    """The SLA to project against: a preset (mlperf, mlperf-interactive), explicit bounds, and
    the scenario's end-to-end latency bound, all that are given."""
    a = assumptions or load_assumptions()
    base = LLMSLA()
    if preset is not None:
        if preset not in a.sla_presets:
            raise InputError(f"unknown LLM SLA preset {preset!r}; allowed: "
                             f"{', '.join(a.sla_presets)}")
        base = a.sla_presets[preset]
    e2e = scenario.sla.latency_ms if scenario is not None else None
    name = "+".join(filter(None, [preset, scenario.name if scenario is not None else None]))
    return LLMSLA(bounds.get("ttft_ms", base.ttft_ms), bounds.get("tpot_ms", base.tpot_ms),
                  bounds.get("e2e_ms", e2e), name)


def serving_grid(models: Iterable[tuple[str, LLMSpec]], hardware: Iterable[Hardware],
                 workload: Workload, sla: LLMSLA, dtypes: Sequence[str] = DEFAULT_DTYPES,
                 assumptions: Assumptions | None = None,
                 memory_limit_gib: float | None = None) -> pd.DataFrame:
    """One row per (model, hardware, dtype, tp): the best batch under the SLA per case, the
    fleet it takes and its cost. Rows that cannot run say why in `reason`."""
    a = assumptions or load_assumptions()
    rows = []
    for label, spec in models:
        for hw in hardware:
            for dtype in dtypes:
                bytes_per_param(dtype)
                for tp in tp_degrees(hw):
                    rows.append(_grid_row(label, spec, hw, dtype, tp, workload, sla, a,
                                          memory_limit_gib))
    return pd.DataFrame(rows)


def _grid_row(label: str, spec: LLMSpec, hw: Hardware, dtype: str, tp: int, w: Workload,
              sla: LLMSLA, a: Assumptions, memory_limit_gib: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {"model": label, "params": spec.params, "hardware": hw.name,
                           "dtype": dtype, "tp": tp, "source": "projected"}
    r = replica(spec, hw, dtype, tp, w.prompt_tokens, w.output_tokens, a,
                memory_gib=memory_limit_gib)
    if isinstance(r, str):
        return {**row, "reason": r, "meets_sla": False}
    best = best_point(r, sla)
    fleet = _fleet(best["requests_s"], tp, hw, w, a)
    row.update(max_batch=r.max_batch, weight_gib_per_gpu=r.weight_gib_per_gpu, reason="")
    for name, values in {**best, **fleet}.items():
        for case, v in zip(CASES, values):
            key = name if case == "mid" else f"{name}_{case}"
            row[key] = bool(v) if values.dtype == bool else float(v)
    if not row["meets_sla"]:
        row["reason"] = (f"misses {sla.label()} at every batch (batch 1: "
                         f"{row['e2e_ms_batch1']:.0f} ms end to end)")
    return row


def _fleet(requests_s: np.ndarray, tp: int, hw: Hardware, w: Workload,
           a: Assumptions) -> dict[str, np.ndarray]:
    """GPUs for the design rate (per model, times the models served) and what they cost."""
    util = a.target_utilization.get(w.arrival, 1.0)
    per_gpu_h = hw.usd_per_hour if hw.usd_per_hour is not None else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        replicas = np.ceil(np.round(w.design_qps / w.models / (requests_s * util), 9))
        gpus = replicas * tp * w.models
        month = gpus * per_gpu_h * HOURS_PER_MONTH
        tokens_month = w.mean_qps * (w.prompt_tokens + w.output_tokens) * 3600 * HOURS_PER_MONTH
        out_tok_s_gpu = requests_s * w.output_tokens / tp
        return {
            "tokens_s_per_gpu": requests_s * (w.prompt_tokens + w.output_tokens) / tp,
            "output_tokens_s_per_gpu": out_tok_s_gpu,
            # the unit price of a token at the design load (no fleet rounding)
            "usd_per_1m_output_tokens": per_gpu_h / (out_tok_s_gpu * util * 3600) * 1e6,
            "gpus": gpus,
            "usd_per_month": month,
            "usd_per_1m_tokens": month / tokens_month * 1e6,
        }


def cheapest(grid: pd.DataFrame) -> pd.DataFrame:
    """Per model, the row meeting the SLA (middle case) with the lowest monthly cost (or, on
    devices without a price, the lowest end-to-end latency); models with none keep their row
    closest to it, marked meets_sla False."""
    out = []
    for _, g in grid.groupby("model", sort=False):
        ok = g[g["meets_sla"].eq(True)]
        if not ok.empty:
            out.append(ok.sort_values(["usd_per_month", "e2e_ms"], na_position="last").iloc[0])
            continue
        # closest: a row that runs (fastest first), else one that is too big, else any
        rank = np.where(g["max_batch"].notna() if "max_batch" in g else False, 0,
                        np.where(g["reason"].astype(str).str.startswith("does not fit"), 1, 2))
        key = g["e2e_ms_batch1"] if "e2e_ms_batch1" in g else pd.Series(0.0, index=g.index)
        order = np.lexsort((key.fillna(np.inf).to_numpy(), rank))
        out.append(g.iloc[order[0]])
    return pd.DataFrame(out).reset_index(drop=True)


def fastest(grid: pd.DataFrame) -> pd.DataFrame:
    """Per model, the lowest batch-1 end-to-end latency over every configuration that runs
    (per case), and where (hardware, dtype, tp, middle case): latency as a user alone sees it."""
    rows = []
    for model, g in grid.groupby("model", sort=False):
        row: dict[str, Any] = {"model": model}
        for case in CASES:
            col = "e2e_ms_batch1" if case == "mid" else f"e2e_ms_batch1_{case}"
            vals = g[col] if col in g else pd.Series(dtype=float)
            row[col.replace("e2e_ms_batch1", "fastest_e2e_ms")] = (
                float(vals.min()) if vals.notna().any() else np.nan)
            if case == "mid" and vals.notna().any():
                at = g.loc[vals.idxmin()]
                row["fastest_on"] = f"{at['hardware']} {at['dtype']} tp{int(at['tp'])}"
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- calibration


def implied_efficiency(spec: LLMSpec, hw: Hardware, dtype: str, tp: int, *,
                       prompt_tokens: int, ttft_ms: float | None = None,
                       tpot_ms: float | None = None, batch: int = 1, context: float | None = None,
                       kv_dtype: str | None = None) -> dict[str, float]:
    """Efficiencies a measurement implies: prefill_compute from a batch-1 TTFT (comm and the
    step in flight ignored), decode_bandwidth from a TPOT measured at `batch` (memory-bound
    step assumed). Feed them to Assumptions.calibrated."""
    out: dict[str, float] = {}
    peak, why = peak_flop_s(hw, dtype, load_assumptions())
    if ttft_ms is not None:
        if peak is None:
            raise InputError(why)
        out["prefill_compute"] = spec.prefill_flops(prompt_tokens, 1) / tp / (
            peak * ttft_ms / 1e3)
    if tpot_ms is not None:
        bw = hw.figure("memory_bandwidth_gb_s") * 1e9
        ctx = prompt_tokens if context is None else context
        kv = spec.kv_bytes_per_token_per_gpu(tp, kv_dtype or default_kv_dtype(dtype))
        read = spec.weight_bytes(dtype) / tp + batch * kv * ctx
        out["decode_bandwidth"] = read / (bw * tpot_ms / 1e3)
    return out
