"""Issue 8's sanity checks: the LLM serving projection beside the seed's ranges and published
serving results for open models (figures go to BENCHMARKS.md, section "LLM scale").

Run:  .venv/bin/python -m pytest tests/benchmarks/test_llm_sanity.py -s

Nothing here runs a model: every "ours" is projected from the shipped architecture configs
(contracts/data/llm/) and the hardware catalog, with the serving bands of roi/data/llm_serving.yaml.
"""

from __future__ import annotations

import math

import pytest

from contracts.llm_arch import shipped
from roi.hardware import load_catalog
from roi.llm_plan import llm_comparison
from roi.llm_serving import CASES, load_assumptions, replica

from .figures import record

CAT = load_catalog()
A = load_assumptions()
TRT = ("NVIDIA TensorRT-LLM docs/source/performance.md (v0.6.1 throughput, v0.5 first-token "
       "tables; commit 138f96d4)")
TRT_H200 = "NVIDIA TensorRT-LLM docs/source/blogs/H200launch.md (v0.5, preliminary)"

# (label, model, hardware, dtype, tp, batch, prompt, output, metric, published, source)
PUBLISHED = [
    ("Llama-2-70B, H100 FP8, TP2, batch 1024, 128/128", "llama-2-70b", "h100", "fp8", 2, 1024,
     128, 128, "out tok/s/GPU", 2657, TRT),
    ("Llama-2-70B, H100 FP8, TP2, batch 96, 2048/128", "llama-2-70b", "h100", "fp8", 2, 96,
     2048, 128, "out tok/s/GPU", 306, TRT),
    ("Llama-2-7B, H100 FP8, TP1, batch 768, 128/128", "llama-2-7b", "h100", "fp8", 1, 768, 128,
     128, "out tok/s/GPU", 19694, TRT),
    ("Llama-2-7B, A100 FP16, TP1, batch 384, 128/128", "llama-2-7b", "a100-80gb", "bf16", 1,
     384, 128, 128, "out tok/s/GPU", 5586, TRT),
    ("Llama-2-70B, H200 FP8, TP1, batch 512, 128/128", "llama-2-70b", "h200", "fp8", 1, 512,
     128, 128, "out tok/s/GPU", 3014, TRT_H200),
    ("Llama-2-70B, H100 FP8, TP4, batch 1, 2048-token prompt", "llama-2-70b", "h100", "fp8", 4,
     1, 2048, 1, "TTFT ms", 109, TRT),
    ("Llama-2-70B, A100 FP16, TP4, batch 1, 2048-token prompt", "llama-2-70b", "a100-80gb",
     "bf16", 4, 1, 2048, 1, "TTFT ms", 377, TRT),
]


def _project(model, hw, dtype, tp, batch, prompt, output, metric):
    r = replica(shipped(model), CAT.get(hw), dtype, tp, prompt, output, A, batch=[batch])
    if isinstance(r, str):  # the published batch exceeds our KV limit: take our limit
        r = replica(shipped(model), CAT.get(hw), dtype, tp, prompt, output, A)
        assert not isinstance(r, str), r
        r = replica(shipped(model), CAT.get(hw), dtype, tp, prompt, output, A,
                    batch=[r.max_batch])
    values = r.output_tokens_s[:, 0] / tp if metric.startswith("out") else r.ttft_ms[:, 0]
    return dict(zip(CASES, map(float, values))), int(r.batch[0, 0]), r.max_batch


def test_published_serving_results():
    rows = []
    for label, model, hw, dtype, tp, batch, p, o, metric, pub, source in PUBLISHED:
        ours, used_batch, max_batch = _project(model, hw, dtype, tp, batch, p, o, metric)
        lo, hi = sorted((ours["pessimistic"], ours["optimistic"]))
        rows.append(dict(check=label, metric=metric, ours=ours["mid"], ours_low=lo,
                         ours_high=hi, published=pub, ratio=ours["mid"] / pub,
                         within_band=lo <= pub <= hi, batch_used=used_batch,
                         our_max_batch=max_batch, source=source))
    for row in rows:
        record("llm-sanity-published", **row)
    ratios = [r["ratio"] for r in rows]
    # the model is a roofline with bands: it must land within a factor of 2 of every result
    assert all(0.5 <= x <= 2.0 for x in ratios), ratios


def _fastest_e2e(model, prompt, output, hw="h100"):
    best = math.inf
    for dtype in ("bf16", "fp8"):
        for tp in (1, 2, 4, 8):
            r = replica(shipped(model), CAT.get(hw), dtype, tp, prompt, output, A, batch=[1])
            if not isinstance(r, str):
                best = min(best, float(r.e2e_ms[1, 0]))
    return best


def _unit_cost(model, dtype, tp, batch, prompt, output, hw="h100"):
    """USD per 1M output tokens of one replica kept busy at `batch` (middle case)."""
    r = replica(shipped(model), CAT.get(hw), dtype, tp, prompt, output, A, batch=[batch])
    tok_s = float(r.output_tokens_s[1, 0])
    return CAT.get(hw).usd_per_hour * tp / (tok_s * 3600) * 1e6


def test_seed_ranges():
    rows = []
    for label, model, lo, hi in (("70B on GPU, per response", "llama-2-70b", 500, 2000),
                                 ("3B on GPU, per response", "llama-3.2-3b", 10, 50)):
        for prompt, output in ((128, 8), (512, 128)):
            ours = _fastest_e2e(model, prompt, output)
            rows.append(dict(check=f"{label} ({prompt} in / {output} out, H100, batch 1)",
                             ours=ours, seed_low=lo, seed_high=hi, within=lo <= ours <= hi,
                             ratio=ours / math.sqrt(lo * hi)))
    for model in ("llama-2-70b", "gpt-3-175b"):
        tp = 8
        for batch, what in ((1, "one user"), (64, "batch 64")):
            ours = _unit_cost(model, "bf16", tp, batch, 512, 128)
            rows.append(dict(check=f"{model}, USD per 1M output tokens, H100 bf16 TP{tp}, {what}",
                             ours=ours, seed_low=10, seed_high=50, within=10 <= ours <= 50,
                             ratio=ours / math.sqrt(10 * 50)))
    cmp = llm_comparison("config:llama-3-70b", ["config:llama-3.2-3b", "config:llama-3-8b"],
                         scenario="cloud-batch")
    for _, s in cmp.summary[cmp.summary["role"] == "student"].iterrows():
        rows.append(dict(check=f"{s['model']} vs llama-3-70b, cost reduction (cloud-batch)",
                         ours=s["cost_reduction"], ours_low=s["cost_reduction_optimistic"],
                         ours_high=s["cost_reduction_pessimistic"], seed_low=0.80,
                         seed_high=0.90, within=0.80 <= s["cost_reduction"] <= 0.90,
                         ratio=(1 - s["cost_reduction"]) / (1 - 0.85)))
    for row in rows:
        record("llm-sanity-seed", **{k: (v if isinstance(v, (bool, str)) else float(v))
                                     for k, v in row.items()})
    assert rows


@pytest.mark.parametrize("scenario", ["cloud-batch", "real-time-api", "multi-model"])
def test_distill_our_70b(scenario):
    cmp = llm_comparison("config:llama-3-70b", scenario=scenario)
    for _, s in cmp.summary.iterrows():
        record("llm-decision", scenario=scenario, model=s["model"], hardware=s["hardware"],
               dtype=s["dtype"], tp=int(s["tp"]), batch=s["batch"], e2e_ms=s["e2e_ms"],
               gpus=s["gpus"], usd_per_month=s["usd_per_month"],
               usd_per_month_band=[s["usd_per_month_optimistic"],
                                   s["usd_per_month_pessimistic"]],
               cost_reduction=s["cost_reduction"], fastest_e2e_ms=s["fastest_e2e_ms"],
               latency_reduction=s["latency_reduction"],
               retention=[s["retention_low"], s["retention_high"]])
    assert cmp.summary["meets_sla"].all()
