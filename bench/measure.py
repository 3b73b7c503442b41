"""Measure one configuration (model × backend × dtype × device × batch × seq × threads).

`measure` runs in whatever process calls it; the sweep calls it in a fresh subprocess per
configuration (bench.worker) so memory peaks do not mix and a crash costs one row.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from contracts import defaults
from contracts.errors import InputError
from contracts.results import KEY_COLUMNS
from models.decode_export import KV_CACHE, RECOMPUTE, session_runner
from models.runtime import ort_session

from . import env
from .stats import summarize_ns, throughput
from .timing import TimingSettings, time_calls, time_idle_calls, time_once_ms

# What a user names with --backends, and the sets of them: defined in contracts.defaults (plain
# values the command line's completion reads without importing this module).
VARIANTS, DEPLOY_VARIANTS = defaults.VARIANTS, defaults.DEPLOY_VARIANTS
DEFAULT_VARIANTS = defaults.BACKENDS


def is_ort(variant: str) -> bool:
    return VARIANTS[variant][0].startswith("ort")


def variant_of(backend: str, dtype: str) -> str:
    """The variant name of a (backend, dtype) pair of the results table."""
    return next((v for v, bd in VARIANTS.items() if bd == (backend, dtype)), f"{backend}-{dtype}")


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
    if not is_ort(cfg.variant):
        m = _measure_torch(cfg, settings)
    else:
        if info is None:
            raise ValueError("the ORT backends need the prepared export info")
        m = _measure_ort(cfg, settings, info)
    m.row.update(
        status="ok", error="", rss_start_mb=rss_start, peak_rss_mb=env.peak_rss_mb(), rounds=1,
        variant=cfg.variant,
    )
    return m


# --------------------------------------------------------------------------- torch


def _torch_dtype(dtype: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]


def _measure_torch(cfg: BenchConfig, settings: MeasureSettings) -> Measurement:
    import torch

    from .flops import count_flops
    from models.zoo import load_torch, parse_spec

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
    row.update(_after_idle(call, settings, row, cfg.device, extra))
    if tm.is_causal_lm:
        ttft, tpot = _measure_decode(tm, module, cfg, settings)
        _decode_columns(row, extra, ttft, tpot, KV_CACHE)
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
    row.update(_torch_gate(cfg, tm, module))
    return Measurement(row, samples, extra)


def _torch_gate(cfg: BenchConfig, tm, module) -> dict:
    """torch fp32 is a reference; bf16 is judged against fp32 weights on held-out windows."""
    import torch

    from . import gate

    if cfg.dtype == "fp32":
        return gate.reference_row(cfg.variant)
    if tm.input_names != ("idx",):  # HF models: not judged, so never recommended
        return {"gate": "none", "gate_reason": "the gate judges built-in and trainer models only"}
    test, label = gate.windows("test", cfg.seq_len, gate.GATE_WINDOWS, tm.vocab_size, tm.family)
    targets, x = gate.targets_of(cfg.model, test, label), test[:, :-1]
    fp32 = load_fp32_module(cfg)

    def run(m):
        def call(ids):
            with torch.inference_mode():
                return m(torch.from_numpy(ids).to(cfg.device)).float().cpu().numpy()
        return call

    ref = gate.logits_of(run(fp32), x)
    got = gate.logits_of(run(module), x)
    return gate.judge(cfg.variant, ref, got, targets, label)


def load_fp32_module(cfg: BenchConfig):
    from models.zoo import load_torch, parse_spec

    return load_torch(parse_spec(cfg.model)).module.to(cfg.device)


def _check_seq(cfg: BenchConfig, max_seq_len: int | None) -> None:
    if max_seq_len and cfg.seq_len > max_seq_len:
        raise InputError(
            f"seq_len {cfg.seq_len} exceeds {cfg.model}'s maximum context of {max_seq_len}"
        )


def _decode_columns(row: dict, extra: dict, ttft: np.ndarray, tpot: np.ndarray,
                    mode: str) -> None:
    """ttft_ms / tpot_ms (medians), the raw samples, and how the artifact decodes."""
    row["decode_mode"] = mode
    if ttft.size:
        extra.update(ttft_ns=ttft, tpot_ns=tpot)
        row.update(ttft_ms=float(np.median(ttft)) / 1e6, tpot_ms=float(np.median(tpot)) / 1e6)


def _new_tokens(cfg: BenchConfig, settings: MeasureSettings, max_seq_len: int | None) -> int:
    return max(0, min(settings.decode_tokens, (max_seq_len or 1 << 30) - cfg.seq_len))


def _decode_loop(prefill, step, settings: MeasureSettings, n_new: int, sync=lambda: None):
    """Time prefill (TTFT) and n_new steps (TPOT) over decode_runs runs after one warm-up;
    prefill() -> state, step(state) -> state."""
    ttft, tpot = [], []
    for run in range(settings.decode_runs + 1):  # run 0 warms up
        sync()
        t0 = time.perf_counter_ns()
        state = prefill()
        sync()
        t1 = time.perf_counter_ns()
        steps = []
        for _ in range(n_new):
            s0 = time.perf_counter_ns()
            state = step(state)
            sync()
            steps.append(time.perf_counter_ns() - s0)
        if run:
            ttft.append(t1 - t0)
            tpot.extend(steps)
    return np.asarray(ttft, dtype=np.int64), np.asarray(tpot, dtype=np.int64)


def _measure_decode(tm, module, cfg: BenchConfig, settings: MeasureSettings):
    """Prefill latency (time to first token) and per-token decode latency with a KV cache."""
    import torch

    n_new = _new_tokens(cfg, settings, tm.max_seq_len)
    if n_new < 1:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    prefill, step = _decode_fns(tm, module)
    prompt = tm.make_inputs(cfg.batch_size, cfg.seq_len, cfg.device)
    sync = torch.cuda.synchronize if cfg.device == "cuda" else (lambda: None)
    with torch.inference_mode():
        return _decode_loop(lambda: prefill(prompt), lambda state: step(*state), settings,
                            n_new, sync)


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

    from models.zoo import forward_params

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
    path = ort_path(cfg.variant, info)
    t0 = time.perf_counter()
    sess = ort_session(path, cfg.threads, cfg.device)
    load_s = time.perf_counter() - t0
    test, label = _gate_inputs(cfg, info)
    feeds = ort_inputs(sess, cfg.batch_size, cfg.seq_len, info.get("vocab_size"))
    if test is not None:  # time the variant on the real windows the gate judges it on
        feeds[sess.get_inputs()[0].name] = _batch_of(test[:, :-1], cfg.batch_size)

    def call():
        return sess.run(None, feeds)

    cold_ms = time_once_ms(call)
    samples = time_calls(call, settings.timing, "cpu")  # ORT returns host arrays: wall time
    row = _timing_columns(cfg, samples)
    extra: dict[str, np.ndarray] = {}
    row.update(_after_idle(call, settings, row, "cpu", extra))
    flops = info["flops_per_sample"].get(str(cfg.seq_len))
    row.update(
        params=info["params"],
        weight_bytes=_ort_weight_bytes(cfg.variant, info),
        flops_per_sample=flops if flops is not None else float("nan"),
        load_s=load_s,
        cold_ms=cold_ms,
        export_method=info.get("export_method", ""),
        export_rel_err=info.get("export_rel_err"),
        variant_recipe=(info.get("variants", {}).get(cfg.variant) or {}).get("recipe", ""),
    )
    row.update(_ort_gate(cfg, info, sess, test, label))
    if info.get("is_causal_lm"):
        _decode_columns(row, extra, *_measure_ort_decode(cfg, settings, info, sess, feeds))
    return Measurement(row, samples, extra)


def _measure_ort_decode(cfg: BenchConfig, settings: MeasureSettings, info: dict, sess,
                        feeds: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """TTFT and TPOT of what this variant ships: its KV-cache graph where bench/export.py built
    one (ort-fp32, ort-int8 of the project's own GPT), else the forward graph run over the
    whole sequence again for every new token (decode_mode recompute)."""
    n_new = _new_tokens(cfg, settings, info.get("max_seq_len"))
    decode = info.get("decode") or {}
    key = {"ort-fp32": "file_path", "ort-int8": "int8_file_path"}.get(cfg.variant)
    if decode.get("mode") == KV_CACHE and key in decode:
        run = session_runner(ort_session(decode[key], cfg.threads, cfg.device), decode["layout"])
        prompt = next(iter(feeds.values())).astype(np.int64)

        def next_token(logits_past):
            return logits_past[0][:, -1:].argmax(-1).astype(np.int64), logits_past[1]

        ttft, tpot = _decode_loop(lambda: next_token(run(prompt, None)),
                                  lambda state: next_token(run(*state)), settings, n_new)
        return ttft, tpot, KV_CACHE
    # recompute: token i of the answer is a forward over the prompt and the i tokens before it
    grown = [ort_inputs(sess, cfg.batch_size, cfg.seq_len + i + 1, info.get("vocab_size"))
             for i in range(n_new)]
    ttft, tpot = _decode_loop(lambda: (sess.run(None, feeds), 0)[1],
                              lambda i: (sess.run(None, grown[i]), i + 1)[1], settings, n_new)
    return ttft, tpot, RECOMPUTE


def ort_path(variant: str, info: dict) -> str:
    """The ONNX file a variant runs; InputError (a skipped row) when it could not be built."""
    if variant in ("ort-fp32", "ort-int8"):
        return info["int8_path" if variant == "ort-int8" else "fp32_path"]
    path = info.get("variant_paths", {}).get(variant)
    if path is None:
        why = (info.get("variants", {}).get(variant) or {}).get("error", "not prepared")
        raise InputError(f"{variant}: {why}")
    return path


def _ort_weight_bytes(variant: str, info: dict) -> int:
    if variant in ("ort-fp32", "ort-int8"):
        return info["weight_bytes_int8" if variant == "ort-int8" else "weight_bytes"]
    return info["variants"][variant]["weight_bytes"]


def _gate_inputs(cfg: BenchConfig, info: dict) -> tuple[np.ndarray | None, str]:
    from .gate import load_windows

    path = info.get("gate_paths", {}).get(str(cfg.seq_len))
    if path is None or info.get("input_names") != ["idx"]:
        return None, ""
    test, _, label = load_windows(path)
    return test, label


def _batch_of(windows: np.ndarray, batch: int) -> np.ndarray:
    reps = -(-batch // len(windows))
    return np.ascontiguousarray(np.tile(windows, (reps, 1))[:batch])


def _ort_gate(cfg: BenchConfig, info: dict, sess, test: np.ndarray | None, label: str) -> dict:
    """ort-fp32 is the reference; every other ORT variant is judged against it on the same
    held-out windows it was timed on."""
    from . import gate

    if cfg.variant == "ort-fp32":
        return gate.reference_row(cfg.variant)
    if test is None and gate.is_embedding_model(cfg.model, info, sess):
        return _embedding_gate(cfg, info, sess)
    if test is None:  # a classifier or cross-encoder: judged on its head (bench/head_gate.py)
        from functools import partial

        from .head_gate import head_gate

        ref = partial(ort_session, info["fp32_path"], cfg.threads, cfg.device)
        return head_gate(cfg.model, cfg.variant, info, sess, ref, cfg.seq_len) or {
            "gate": "none", "gate_reason": "no held-out windows for this model's inputs"}
    ref_sess = ort_session(info["fp32_path"], cfg.threads, cfg.device)
    name = sess.get_inputs()[0].name
    x = test[:, :-1]
    ref = gate.logits_of(lambda ids: ref_sess.run(None, {name: ids})[0], x)
    got = gate.logits_of(lambda ids: sess.run(None, {name: ids})[0], x)
    return gate.judge(cfg.variant, ref, got, gate.targets_of(cfg.model, test, label), label)


def _embedding_gate(cfg: BenchConfig, info: dict, sess) -> dict:
    """An embedding model's variant against ort-fp32 on the pooled embeddings of held-out
    text (bench.gate.judge_embeddings)."""
    from pathlib import Path

    from models.encoder import read_pooling
    from models.zoo import parse_spec

    from . import gate

    inputs = gate.embedding_inputs(cfg.model, Path(info["fp32_path"]).parent, cfg.seq_len)
    if inputs is None:
        return {"gate": "none", "gate_reason": "no tokenizer in the model's directory: the "
                "embedding gate reads real text"}
    feeds, label = inputs
    pooling = read_pooling(parse_spec(cfg.model).path)
    ref_sess = ort_session(info["fp32_path"], cfg.threads, cfg.device)
    ref = gate.embeddings_of(ref_sess, feeds, pooling)
    got = gate.embeddings_of(sess, feeds, pooling)
    return gate.judge_embeddings(cfg.variant, ref, got, label)


def _timing_columns(cfg: BenchConfig, samples: np.ndarray) -> dict:
    row = summarize_ns(samples)
    row.update(throughput(cfg.batch_size, cfg.seq_len, row["latency_ms_mean"]))
    return row


def _after_idle(call, settings: MeasureSettings, row: dict, device: str,
                extra: dict[str, np.ndarray]) -> dict:
    """Calls timed after idle gaps (bench.timing.time_idle_calls): what a request that finds
    the server idle pays. roi's sizing serves those requests with the extra time (its
    two-state service time); back-to-back timing alone misses it."""
    if settings.timing.idle_calls < 1:
        return {}
    ns, gap = time_idle_calls(call, settings.timing, row["latency_ms_p50"], device)
    if not ns.size:
        return {}
    extra["after_idle_ns"] = ns
    return after_idle_columns(ns, gap)


def after_idle_columns(ns: np.ndarray, gap_ms: float) -> dict:
    ms = np.asarray(ns, float) / 1e6
    return {"after_idle_ms_p50": float(np.median(ms)), "after_idle_ms_mean": float(ms.mean()),
            "after_idle_n": int(ms.size), "after_idle_gap_ms": float(gap_ms)}
