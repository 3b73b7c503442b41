"""Measure one configuration (model × backend × dtype × device × batch × seq × threads).

`measure` runs in whatever process calls it; the sweep calls it in a fresh subprocess per
configuration (bench.worker) so memory peaks do not mix and a crash costs one row.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from roi.errors import InputError

from . import env
from .results import KEY_COLUMNS
from .stats import summarize_ns, throughput
from .timing import TimingSettings, time_calls, time_once_ms

# What a user names with --backends -> (backend column, dtype column).
VARIANTS: dict[str, tuple[str, str]] = {
    "torch-eager": ("torch-eager", "fp32"),
    "torch-eager-bf16": ("torch-eager", "bf16"),
    "ort-fp32": ("ort", "fp32"),
    "ort-int8": ("ort", "int8"),
}
DEFAULT_VARIANTS = ("torch-eager", "ort-fp32", "ort-int8")


@dataclass(frozen=True)
class BenchConfig:
    model: str  # the model spec as written
    role: str  # teacher / student
    variant: str  # a key of VARIANTS
    device: str  # cpu / cuda
    batch_size: int
    seq_len: int
    threads: int

    @property
    def backend(self) -> str:
        return VARIANTS[self.variant][0]

    @property
    def dtype(self) -> str:
        return VARIANTS[self.variant][1]

    def key(self) -> tuple:
        return (self.model, self.role, self.backend, self.device, self.dtype,
                self.batch_size, self.seq_len, self.threads)

    def key_columns(self) -> dict:
        return dict(zip(KEY_COLUMNS, self.key()))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Measurement:
    row: dict
    samples_ns: np.ndarray | None = None
    extra_samples: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class MeasureSettings:
    timing: TimingSettings = TimingSettings()
    decode_tokens: int = 32  # new tokens per decode run for TPOT (causal LMs, torch backends)
    decode_runs: int = 5  # prefill + decode repetitions for TTFT / TPOT

    @classmethod
    def quick(cls) -> "MeasureSettings":
        return cls(timing=TimingSettings.quick(), decode_tokens=8, decode_runs=2)


def measure(cfg: BenchConfig, settings: MeasureSettings, info: dict | None = None) -> Measurement:
    """Measure one configuration; `info` is the export cache entry for the ORT backends."""
    rss_start = env.current_rss_mb()
    if cfg.backend == "torch-eager":
        m = _measure_torch(cfg, settings)
    else:
        if info is None:
            raise ValueError("the ORT backends need the prepared export info")
        m = _measure_ort(cfg, settings, info)
    m.row.update(
        status="ok", error="", rss_start_mb=rss_start, peak_rss_mb=env.peak_rss_mb(), rounds=1,
    )
    return m


# --------------------------------------------------------------------------- torch


def _torch_dtype(dtype: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]


def _measure_torch(cfg: BenchConfig, settings: MeasureSettings) -> Measurement:
    import torch

    from .flops import count_flops
    from .zoo import load_torch, parse_spec

    torch.set_num_threads(cfg.threads)
    if cfg.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    tm = load_torch(parse_spec(cfg.model))
    module = tm.module.to(device=cfg.device, dtype=_torch_dtype(cfg.dtype))
    if cfg.device == "cuda":
        torch.cuda.synchronize()
    load_s = time.perf_counter() - t0
    _check_seq(cfg, tm.max_seq_len)
    inputs = tm.make_inputs(cfg.batch_size, cfg.seq_len, cfg.device)
    call_kwargs = {**inputs, **tm.forward_kwargs}  # a plain forward; decode is measured apart

    def call():
        with torch.inference_mode():
            return module(**call_kwargs)

    cold_ms = time_once_ms(call, cfg.device)
    samples = time_calls(call, settings.timing, cfg.device)
    extra: dict[str, np.ndarray] = {}
    row = _timing_columns(cfg, samples)
    if tm.is_causal_lm:
        ttft, tpot = _measure_decode(tm, module, cfg, settings)
        if ttft.size:
            extra.update(ttft_ns=ttft, tpot_ns=tpot)
            row.update(ttft_ms=float(np.median(ttft)) / 1e6, tpot_ms=float(np.median(tpot)) / 1e6)
    one = tm.make_inputs(1, cfg.seq_len, cfg.device)
    params = sum(p.numel() for p in module.parameters())
    row.update(
        params=int(params),
        weight_bytes=int(sum(p.numel() * p.element_size() for p in module.parameters())),
        flops_per_sample=count_flops(lambda: module(**one, **tm.forward_kwargs)),
        load_s=load_s,
        cold_ms=cold_ms,
        model_family=tm.family,
    )
    if cfg.device == "cuda":
        row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / (1024.0 * 1024.0)
    return Measurement(row, samples, extra)


def _check_seq(cfg: BenchConfig, max_seq_len: int | None) -> None:
    if max_seq_len and cfg.seq_len > max_seq_len:
        raise InputError(
            f"seq_len {cfg.seq_len} exceeds {cfg.model}'s maximum context of {max_seq_len}"
        )


def _measure_decode(tm, module, cfg: BenchConfig, settings: MeasureSettings):
    """Prefill latency (time to first token) and per-token decode latency with a KV cache."""
    import torch

    room = (tm.max_seq_len or 1 << 30) - cfg.seq_len
    n_new = min(settings.decode_tokens, room)
    if n_new < 1:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    prefill, step = _decode_fns(tm, module)
    prompt = tm.make_inputs(cfg.batch_size, cfg.seq_len, cfg.device)
    sync = torch.cuda.synchronize if cfg.device == "cuda" else (lambda: None)
    ttft, tpot = [], []
    with torch.inference_mode():
        for run in range(settings.decode_runs + 1):  # run 0 warms up
            sync()
            t0 = time.perf_counter_ns()
            token, cache = prefill(prompt)
            sync()
            t1 = time.perf_counter_ns()
            steps = []
            for _ in range(n_new):
                s0 = time.perf_counter_ns()
                token, cache = step(token, cache)
                sync()
                steps.append(time.perf_counter_ns() - s0)
            if run:
                ttft.append(t1 - t0)
                tpot.extend(steps)
    return np.asarray(ttft, dtype=np.int64), np.asarray(tpot, dtype=np.int64)


def _decode_fns(tm, module):
    """(prefill, step) closures for greedy decoding with a KV cache."""
    if tm.family in ("builtin", "ckpt"):

        def prefill(prompt):
            logits, cache = module.forward_with_cache(prompt["idx"], None)
            return logits[:, -1:].argmax(-1), cache

        def step(token, cache):
            logits, cache = module.forward_with_cache(token, cache)
            return logits[:, -1:].argmax(-1), cache

        return prefill, step

    from .zoo import forward_params

    # transformers 5 renamed the cache argument and output from past_key_values to cache (the
    # old name still works there, with a deprecation warning); use whichever forward declares.
    cache_arg = "cache" if "cache" in forward_params(module) else "past_key_values"

    def hf_prefill(prompt):
        logits, cache = _logits_and_cache(module(**prompt, use_cache=True))
        return logits[:, -1:].argmax(-1), cache

    def hf_step(token, cache):
        logits, cache = _logits_and_cache(module(input_ids=token, use_cache=True,
                                                   **{cache_arg: cache}))
        return logits[:, -1:].argmax(-1), cache

    return hf_prefill, hf_step


def _logits_and_cache(out) -> tuple:
    """(logits, KV cache) of a causal LM's output: a ModelOutput (a dict whose cache entry is
    `cache` in transformers 5, `past_key_values` before) or a plain (logits, cache, ...) tuple."""
    if not isinstance(out, dict):
        return out[0], out[1]
    cache = next((out[k] for k in ("cache", "past_key_values") if k in out), None)
    if cache is None:
        raise RuntimeError(f"{type(out).__name__} holds no KV cache although use_cache=True")
    return out["logits"], cache


# --------------------------------------------------------------------------- onnxruntime


def ort_session(path: str, threads: int, device: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InputError("onnxruntime has no CUDA provider here (install onnxruntime-gpu)")
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(path, opts, providers=providers)


def ort_inputs(sess, batch: int, seq: int, vocab: int | None) -> dict[str, np.ndarray]:
    """Inputs for any ONNX model from its declared inputs: dim 0 is batch, dim 1 sequence."""
    rng = np.random.default_rng(1234)
    feeds = {}
    for inp in sess.get_inputs():
        shape = []
        for i, dim in enumerate(inp.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            else:
                shape.append(batch if i == 0 else seq if i == 1 else 1)
        name = inp.name.lower()
        if "int" in inp.type:
            if "mask" in name:
                arr = np.ones(shape)
            elif "type" in name or "position" in name:
                arr = np.zeros(shape)
            else:
                arr = rng.integers(0, vocab or 100, size=shape)
            feeds[inp.name] = arr.astype(np.int32 if "int32" in inp.type else np.int64)
        elif "bool" in inp.type:
            feeds[inp.name] = np.ones(shape, dtype=bool)
        else:
            dtype = np.float16 if "float16" in inp.type else np.float32
            feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def _measure_ort(cfg: BenchConfig, settings: MeasureSettings, info: dict) -> Measurement:
    _check_seq(cfg, info.get("max_seq_len"))  # as the torch row does: skipped, not a crash
    path = info["int8_path"] if cfg.dtype == "int8" else info["fp32_path"]
    t0 = time.perf_counter()
    sess = ort_session(path, cfg.threads, cfg.device)
    load_s = time.perf_counter() - t0
    feeds = ort_inputs(sess, cfg.batch_size, cfg.seq_len, info.get("vocab_size"))

    def call():
        return sess.run(None, feeds)

    cold_ms = time_once_ms(call)
    samples = time_calls(call, settings.timing, "cpu")  # ORT returns host arrays: wall time
    row = _timing_columns(cfg, samples)
    flops = info["flops_per_sample"].get(str(cfg.seq_len))
    row.update(
        params=info["params"],
        weight_bytes=info["weight_bytes_int8" if cfg.dtype == "int8" else "weight_bytes"],
        flops_per_sample=flops if flops is not None else float("nan"),
        load_s=load_s,
        cold_ms=cold_ms,
        export_method=info.get("export_method", ""),
        export_rel_err=info.get("export_rel_err"),
    )
    return Measurement(row, samples)


def _timing_columns(cfg: BenchConfig, samples: np.ndarray) -> dict:
    row = summarize_ns(samples)
    row.update(throughput(cfg.batch_size, cfg.seq_len, row["latency_ms_mean"]))
    return row
