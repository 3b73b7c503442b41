"""Time a `config:` LLM for real (random weights) and set the timings beside roi's projection.

roi/llm_serving.py projects an architecture's serving latency without running it. Where a GPU is
at hand, this module builds the same architecture as a Hugging Face causal LM (random init, no
download: the weights' values do not change the time), measures it, and compares:

- TTFT: one forward pass over a batch of B prompts of P tokens (the prefill) and the first token
  picked from its last logits (`logits_to_keep=1`, as serving engines compute them);
- TPOT: the median time of one decode step of the whole batch (one new token per sequence, KV
  cache read in full), over the N steps after a few warm-up steps; output tokens/s = B / TPOT.

Two decode modes: `eager`, Hugging Face's own loop (a DynamicCache grown each step, every kernel
launched from Python: what `model.generate` does), and `graph` (CUDA only): a StaticCache and one
decode step captured as a CUDA graph and replayed, the way serving engines (vLLM, TensorRT-LLM)
remove the per-kernel launch cost. On a CPU `static` runs the graph mode's StaticCache step
without capture, to rehearse it. The graph mode's attention reads the whole static cache
(P + N + a few tokens, masked), slightly more than the eager mode's growing context.

Timing: CUDA events around each call (decode: one event between consecutive steps, one
synchronize at the end, so launch gaps count) on CUDA; `time.perf_counter` on a CPU.

The projection (`predict`, `compare`): roi's decode step `step_ms` for the same (B, P, N) on a
catalog row, one replica at TP 1, is what the measured TPOT is compared with; the TTFT of a
static batch is roi's prefill formula for B prompts at once,
max(B·F_pre(P) / (peak·e_pc), W / (BW·e_bw)). roi's own `ttft_ms` / `tpot_ms` describe continuous
batching (a request waits for the others' prefills) and are not what a static batch measures.
Each prediction is a band: pessimistic, middle, optimistic.

The command line, the projection beside the measurement and the outputs: checks/llm_check.py

    roi check llm-timing --model llama-3.2-1b --device cuda --out DIR
    python -m checks.llm_check --model llama-3.2-1b --device cpu --smoke --out DIR
"""

from __future__ import annotations

import inspect
import math
import resource
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from contracts.errors import InputError
from contracts.llm_arch import LLMSpec

from .llm_check_settings import DEFAULT_BATCHES, MODES

DECODE_WARMUP_STEPS = 4  # decode steps run before the timed ones (allocator, kernels, caches)
GRAPH_WARMUP_STEPS = 3  # eager static-cache steps on a side stream before the capture
STATIC_SLACK_TOKENS = 8  # the static cache's room beyond P + N + warm-up steps
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


# --------------------------------------------------------------------------- model from a spec


def shrunk(spec: LLMSpec, num_layers: int = 2, hidden_size: int = 256,
           vocab_size: int = 2048) -> LLMSpec:
    """The same architecture family at a toy size (rehearsals, tests): 64-wide heads, the
    query/key-value head ratio and MLP ratio kept where they divide, biases and tying kept."""
    a = spec.arch
    head = 64
    heads = max(1, hidden_size // head)
    group = max(1, a.num_heads // a.kv_heads)
    kv = max(1, heads // group) if heads % max(1, heads // group) == 0 else 1
    ratio = a.intermediate_size / a.hidden_size
    arch = a.model_copy(update=dict(
        hidden_size=heads * head, num_layers=num_layers, num_heads=heads, num_kv_heads=kv,
        head_dim=head, intermediate_size=int(round(ratio * heads * head / 64)) * 64,
        vocab_size=vocab_size, max_position_embeddings=4096))
    return replace(spec, name=f"{spec.name}-shrunk", arch=arch, published_params=None)


def hf_config(spec: LLMSpec):
    """The Hugging Face config of `spec`: LlamaConfig, Qwen2Config (q/k/v biases) or Qwen3Config
    (per-head q/k norms). Refuses what these types cannot express (GPT-2's learned positions,
    plain MLP, layer norm, biases on every linear layer)."""
    import transformers

    a = spec.arch
    if a.mlp != "gated" or a.norm != "rms" or a.learned_positions or a.linear_bias:
        raise InputError(f"{spec.name}: only Llama-like architectures (gated MLP, RMS norm, "
                         f"rotary positions) can be built for timing")
    common = dict(
        vocab_size=a.vocab_size, hidden_size=a.hidden_size,
        intermediate_size=a.intermediate_size, num_hidden_layers=a.num_layers,
        num_attention_heads=a.num_heads, num_key_value_heads=a.kv_heads, head_dim=a.head_size,
        tie_word_embeddings=a.tie_embeddings,
        max_position_embeddings=a.max_position_embeddings or 4096)
    if a.qk_norm:
        return transformers.Qwen3Config(**common, attention_bias=a.qkv_bias)
    if a.qkv_bias:
        return transformers.Qwen2Config(**common, use_sliding_window=False)
    return transformers.LlamaConfig(**common, attention_bias=False, mlp_bias=False)


def torch_dtype(dtype: str):
    import torch

    if dtype not in TORCH_DTYPES:
        raise InputError(f"dtype {dtype!r}: timing runs in {', '.join(TORCH_DTYPES)}")
    return getattr(torch, TORCH_DTYPES[dtype])


def build_model(spec: LLMSpec, device: str, dtype: str, seed: int = 0):
    """`spec` as a Hugging Face causal LM with random weights, created directly on `device` in
    `dtype` (no CPU copy of a GPU model), in eval mode, SDPA attention."""
    import torch
    from transformers import AutoModelForCausalLM

    cfg = hf_config(spec)
    torch.manual_seed(seed)
    kwargs = {"attn_implementation": "sdpa"}
    # transformers 5 names it `dtype`; 4.x `torch_dtype`
    dtype_key = "dtype" if "dtype" in cfg.to_dict() else "torch_dtype"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, **kwargs, **{dtype_key: torch_dtype(dtype)})
    # a no-op where the device context took (it should); a safeguard where a version ignores it
    model.to(device=device, dtype=torch_dtype(dtype))
    model.eval()
    return model


def param_count(model) -> int:
    """Distinct parameters (a tied LM head counted once, as LLMSpec.params counts it)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# --------------------------------------------------------------------------- version shims


def _forward_params(model) -> set[str]:
    return set(inspect.signature(model.forward).parameters)


def _cache_kw(model, cache) -> dict:
    """The cache keyword: `cache` (transformers ≥ 5.2x) or `past_key_values` (before)."""
    name = "cache" if "cache" in _forward_params(model) else "past_key_values"
    return {name: cache}


def _dynamic_cache(model):
    from transformers import DynamicCache

    if "config" in inspect.signature(DynamicCache.__init__).parameters:
        return DynamicCache(config=model.config)
    return DynamicCache()


def _static_cache(model, batch: int, max_len: int, device, dtype):
    """A StaticCache of `max_len` tokens; passes the arguments this version's signature takes
    (newer versions size batch, device and dtype lazily from the first update)."""
    from transformers import StaticCache

    accepted = set(inspect.signature(StaticCache.__init__).parameters)
    given = {"config": model.config, "max_cache_len": max_len, "max_batch_size": batch,
             "batch_size": batch, "device": device, "dtype": dtype}
    return StaticCache(**{k: v for k, v in given.items() if k in accepted})


# --------------------------------------------------------------------------- clocks


class _Clock:
    """marks() then elapsed_ms(): per-interval times between consecutive marks."""

    def __init__(self, device: str):
        import torch

        self.cuda = device.startswith("cuda")
        self._torch = torch
        self.marks: list[Any] = []

    def mark(self) -> None:
        if self.cuda:
            ev = self._torch.cuda.Event(enable_timing=True)
            ev.record()
            self.marks.append(ev)
        else:
            self.marks.append(time.perf_counter())

    def elapsed_ms(self) -> list[float]:
        if self.cuda:
            self._torch.cuda.synchronize()
            return [a.elapsed_time(b) for a, b in zip(self.marks, self.marks[1:])]
        return [(b - a) * 1e3 for a, b in zip(self.marks, self.marks[1:])]


# --------------------------------------------------------------------------- measurement


@dataclass
class Point:
    """One measured (model, decode mode, batch) point; times in ms, memory in MiB."""

    model: str
    mode: str
    device: str
    dtype: str
    batch: int
    prompt_tokens: int
    output_tokens: int
    params: int
    status: str = "ok"
    ttft_ms: float = math.nan
    ttft_ms_min: float = math.nan
    ttft_ms_max: float = math.nan
    tpot_ms: float = math.nan
    tpot_ms_p10: float = math.nan
    tpot_ms_p90: float = math.nan
    decode_steps_timed: int = 0
    output_tokens_s: float = math.nan
    peak_memory_mib: float = math.nan
    memory_kind: str = ""
    context_tokens_mean: float = math.nan
    notes: str = ""
    ttft_runs_ms: list = field(default_factory=list)


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: str) -> tuple[float, str]:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    return rss_kib / 1024, "process_max_rss"


def _prompt(model, batch: int, prompt_tokens: int, device: str, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt_tokens), generator=g)
    return ids.to(device)


def _prefill(model, ids, cache, extra: dict | None = None):
    """One forward over the prompts into `cache`; returns the first tokens, shape (B, 1)."""
    kw = {"logits_to_keep": 1} if "logits_to_keep" in _forward_params(model) else {}
    out = model(input_ids=ids, use_cache=True, **_cache_kw(model, cache), **kw, **(extra or {}))
    return out.logits[:, -1:].argmax(-1)


def measure_ttft(model, batch: int, prompt_tokens: int, device: str, reps: int = 3,
                 warmup: int = 1) -> tuple[list[float], Any, Any]:
    """Prefill times (ms) of `reps` runs after `warmup`; returns them with the last run's
    cache and first tokens, from which decoding continues."""
    import torch

    times, cache, tok = [], None, None
    with torch.inference_mode():
        for i in range(warmup + reps):
            ids = _prompt(model, batch, prompt_tokens, device, seed=i)
            cache = _dynamic_cache(model)
            clock = _Clock(device)
            clock.mark()
            tok = _prefill(model, ids, cache)
            clock.mark()
            if i >= warmup:
                times.append(clock.elapsed_ms()[0])
            else:
                clock.elapsed_ms()  # synchronize
    return times, cache, tok


def decode_eager(model, cache, tok, steps: int, device: str) -> list[float]:
    """Hugging Face's own decode loop (DynamicCache), greedy: per-step times (ms) of `steps`
    steps after DECODE_WARMUP_STEPS."""
    import torch

    clock = _Clock(device)
    with torch.inference_mode():
        for i in range(DECODE_WARMUP_STEPS + steps):
            if i == DECODE_WARMUP_STEPS:
                clock.mark()
            out = model(input_ids=tok, use_cache=True, **_cache_kw(model, cache))
            tok = out.logits[:, -1:].argmax(-1)
            if i >= DECODE_WARMUP_STEPS:
                clock.mark()
    return clock.elapsed_ms()


def decode_static(model, batch: int, prompt_tokens: int, steps: int, device: str, dtype: str,
                  capture: bool) -> list[float]:
    """Decode with a StaticCache; with `capture` (CUDA) one greedy step, argmax feeding the next
    input included, is captured as a CUDA graph and replayed. Per-step times (ms) of `steps`
    steps after the warm-up ones."""
    import torch

    max_len = prompt_tokens + steps + DECODE_WARMUP_STEPS + GRAPH_WARMUP_STEPS \
        + STATIC_SLACK_TOKENS
    cache = _static_cache(model, batch, max_len, device, torch_dtype(dtype))
    uses_positions = "cache_position" in _forward_params(model)  # transformers before ~5.4
    with torch.inference_mode():
        ids = _prompt(model, batch, prompt_tokens, device, seed=99)
        extra = {"cache_position": torch.arange(prompt_tokens, device=device)} \
            if uses_positions else {}
        tok = _prefill(model, ids, cache, extra).clone()
        position = torch.tensor([prompt_tokens], device=device)

        def step():
            kw = {"cache_position": position} if uses_positions else {}
            out = model(input_ids=tok, use_cache=True, **_cache_kw(model, cache), **kw)
            tok.copy_(out.logits[:, -1:].argmax(-1))
            position.add_(1)

        run: Callable[[], None] = step
        if capture:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(GRAPH_WARMUP_STEPS):
                    step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                step()
            run = graph.replay
        clock = _Clock(device)
        for i in range(DECODE_WARMUP_STEPS + steps):
            if i == DECODE_WARMUP_STEPS:
                clock.mark()
            run()
            if i >= DECODE_WARMUP_STEPS:
                clock.mark()
        times = clock.elapsed_ms()
        if not torch.isfinite(tok.float()).all() or int(position.item()) > max_len:
            raise RuntimeError("static decode went past its cache")
    return times


def default_modes(device: str) -> tuple[str, ...]:
    return ("eager", "graph") if device.startswith("cuda") else ("eager", "static")


def _is_oom(e: BaseException) -> bool:
    return "out of memory" in str(e).lower() or type(e).__name__ == "OutOfMemoryError"


def measure(spec: LLMSpec, device: str = "cpu", dtype: str | None = None,
            batches: Sequence[int] = DEFAULT_BATCHES, prompt_tokens: int = 512,
            output_tokens: int = 128, modes: Sequence[str] | None = None, ttft_reps: int = 3,
            model=None, log: Callable[[str], None] = print) -> list[Point]:
    """Measure `spec` at each batch size and decode mode; a batch that runs out of memory (or
    fails) is recorded with its status, and the larger ones are still tried."""
    import torch

    dtype = dtype or ("bf16" if device.startswith("cuda") else "fp32")
    modes = tuple(modes or default_modes(device))
    bad = [m for m in modes if m not in MODES]
    if bad or ("graph" in modes and not device.startswith("cuda")):
        raise InputError(f"decode modes: eager, static, graph (graph on CUDA only); got {modes}")
    t0 = time.perf_counter()
    model = model if model is not None else build_model(spec, device, dtype)
    n_params = param_count(model)
    log(f"{spec.name}: {n_params / 1e6:.1f} M params on {device} ({dtype}), built in "
        f"{time.perf_counter() - t0:.1f} s")
    points: list[Point] = []
    broken: dict[str, str] = {}  # mode -> why it is skipped (a failed capture can taint CUDA)
    for b in batches:
        base = Point(spec.name, "", device, dtype, int(b), prompt_tokens, output_tokens, n_params,
                     context_tokens_mean=prompt_tokens + output_tokens / 2)
        ttft: list[float] = []
        try:
            _peak_reset(device)
            ttft, cache, tok = measure_ttft(model, b, prompt_tokens, device, reps=ttft_reps)
            base.ttft_ms, base.ttft_ms_min, base.ttft_ms_max = \
                statistics.median(ttft), min(ttft), max(ttft)
            base.ttft_runs_ms = [round(t, 4) for t in ttft]
        except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
            cache = tok = None
            base.status = "oom" if _is_oom(e) else f"error: {type(e).__name__}: {e}"[:300]
        for mode in modes:
            p = replace(base, mode=mode, ttft_runs_ms=list(base.ttft_runs_ms))
            if base.status == "ok" and mode in broken:
                p.status = broken[mode]
            elif base.status == "ok":
                try:
                    if mode == "eager":
                        steps = decode_eager(model, cache, tok, output_tokens, device)
                    else:
                        _peak_reset(device)
                        steps = decode_static(model, b, prompt_tokens, output_tokens, device,
                                              dtype, capture=(mode == "graph"))
                    q = np.percentile(steps, [10, 50, 90])
                    p.tpot_ms_p10, p.tpot_ms, p.tpot_ms_p90 = map(float, q)
                    p.decode_steps_timed = len(steps)
                    p.output_tokens_s = b / (p.tpot_ms / 1e3)
                except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
                    p.status = "oom" if _is_oom(e) else f"error: {type(e).__name__}: {e}"[:300]
                    if mode == "graph" and p.status != "oom":
                        broken[mode] = f"skipped: graph mode failed at batch {b}"
            if mode != "eager":
                p.notes = "TTFT measured with the eager prefill (DynamicCache)"
            p.peak_memory_mib, p.memory_kind = _peak_mib(device)
            points.append(p)
            log(f"  b={b:<4} {mode:<6} {p.status:<4} TTFT {p.ttft_ms:9.3f} ms  TPOT "
                f"{p.tpot_ms:8.3f} ms  {p.output_tokens_s:10.1f} tok/s  peak "
                f"{p.peak_memory_mib:8.0f} MiB")
        cache = tok = None
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return points


# --------------------------------------------------------------------------- projection


# --------------------------------------------------------------------------- command line
