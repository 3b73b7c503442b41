"""Benchmark: local generation throughput of the default teacher, batched with a KV cache against
one prompt at a time without a cache (issue 9's figure: >= 5x), measured side by side.

Run:  .venv/bin/python -m pytest tests/benchmarks/test_generate_speed.py -s -p no:cacheprovider

Teacher `builtin:teacher` (14.4 M), fp32, 2 threads (ROI_BENCH_THREADS=1 on a busy machine);
prompts: the first corpus prompts of `roi generate` (64 bytes of the stdlib's training split
each), 128 new tokens (the defaults), temperature 1, top-p 1. Three ways, interleaved round by
round (ROUNDS rounds, medians of new tokens per second):
    batched + KV cache   BATCH prompts per call, the prompt run once, one token per step after
    one at a time + cache
    one at a time, no cache (every step runs the whole sequence again): the reference
The one-at-a-time runs use fewer prompts (a rate does not depend on how many). The end-to-end
`distill.generate.generate` of the same batch (JSONL writes, fsync) is timed once beside them.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch

from models.zoo import load_torch, parse_spec
from distill.generate import corpus_prompts, generate, make_generate_config
from distill.generate_types import sample_seed
from distill.local_teacher import generate_ids

from .figures import record

BATCH, SINGLE_PROMPTS, NEW_TOKENS, ROUNDS = 32, 2, 128, 3
THREADS = int(os.environ.get("ROI_BENCH_THREADS", "2"))  # 1 on a busy shared machine


def _run(model, prompts, batch: int, use_cache: bool) -> float:
    """New tokens per second over `prompts`, in batches of `batch`."""
    tokens, t0 = 0, time.perf_counter()
    for i in range(0, len(prompts), batch):
        chunk = prompts[i : i + batch]
        ids = torch.tensor([list(p.text.encode()) for p in chunk], dtype=torch.long)
        u = torch.tensor(np.stack([np.random.default_rng(sample_seed(0, p.id)).random(NEW_TOKENS)
                                   for p in chunk]))
        tokens += generate_ids(model, ids, NEW_TOKENS, 1.0, 1.0, u, use_cache=use_cache).numel()
    return tokens / (time.perf_counter() - t0)


def test_batched_kv_cache_generation_speedup(tmp_path):
    torch.set_num_threads(THREADS)
    cfg = make_generate_config({"num_prompts": BATCH, "max_new_tokens": NEW_TOKENS,
                                "batch_size": BATCH, "threads": THREADS})
    prompts = [p for p in corpus_prompts(cfg) if len(p.text.encode()) == cfg.prompt_chars]
    assert len(prompts) >= BATCH // 2
    model = load_torch(parse_spec("builtin:teacher")).module.eval()
    _run(model, prompts[:2], 2, True)  # warm-up
    rates: dict[str, list[float]] = {"batched_cache": [], "single_cache": [], "single_nocache": []}
    load = []
    for _ in range(ROUNDS):
        load.append(os.getloadavg()[0])
        rates["batched_cache"].append(_run(model, prompts, len(prompts), True))
        rates["single_cache"].append(_run(model, prompts[:SINGLE_PROMPTS], 1, True))
        rates["single_nocache"].append(_run(model, prompts[:SINGLE_PROMPTS], 1, False))
    med = {k: statistics.median(v) for k, v in rates.items()}
    end_to_end = generate(cfg, tmp_path / "gen").manifest["invocations"][-1]["tokens_per_s"]
    speedup = med["batched_cache"] / med["single_nocache"]
    record("generate_speed", teacher="builtin:teacher", batch=len(prompts),
           prompt_tokens=cfg.prompt_chars, new_tokens=NEW_TOKENS, threads=THREADS,
           tokens_per_s_batched_cache=round(med["batched_cache"]),
           tokens_per_s_single_cache=round(med["single_cache"], 1),
           tokens_per_s_single_nocache=round(med["single_nocache"], 1),
           speedup_vs_single_nocache=round(speedup, 2),
           cache_alone_speedup=round(med["single_cache"] / med["single_nocache"], 2),
           tokens_per_s_end_to_end=round(end_to_end), load_avg_1min=load,
           runs={k: [round(x, 1) for x in v] for k, v in rates.items()})
    assert speedup >= 5, med
