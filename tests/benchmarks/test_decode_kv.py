"""Benchmark: what the shipped ONNX artifact pays per generated token, with the KV-cache graph
(models/decode_export.py) against the plain forward graph recomputed for every token, and torch
eager with its cache beside them (issue 16: cost the decode path the artifact has).

Run:  .venv/bin/python -m pytest tests/benchmarks/test_decode_kv.py -s -p no:cacheprovider

The default teacher and the 10x student, batch 1, a 128-token prompt, 32 new tokens, 1 thread
(ROI_BENCH_THREADS to change), each way measured by bench.measure.measure (one warm-up run, then
DECODE_RUNS runs; medians), interleaved round by round over ROUNDS rounds; the figure is the
median over rounds of TTFT, TPOT and the service time of the real-time-api request (128 in, 8
out) as roi/service.py costs it from the row.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import pytest

from bench.export import prepare
from bench.measure import BenchConfig, MeasureSettings, measure
from bench.timing import TimingSettings
from models.zoo import parse_spec

from .figures import record

MODELS = ("builtin:teacher", "builtin:student-10x")
SEQ, NEW, DECODE_RUNS, ROUNDS = 128, 32, 5, 3
THREADS = int(os.environ.get("ROI_BENCH_THREADS", "1"))
WAYS = {"ort-int8 kv-cache": ("ort-int8", True), "ort-int8 recompute": ("ort-int8", False),
        "ort-fp32 kv-cache": ("ort-fp32", True), "ort-fp32 recompute": ("ort-fp32", False),
        "torch-eager kv-cache": ("torch-eager", True)}


def _request_ms(tpot: float, fwd: float, mode: str, tokens_in=128, tokens_out=8):
    """roi/service.py's request time from one row (no overhead term: the upper bound)."""
    per_token = fwd / SEQ
    if mode == "recompute":
        return per_token * tokens_in + per_token * (tokens_out * tokens_in
                                                    + tokens_out * (tokens_out + 1) / 2)
    return per_token * tokens_in + tokens_out * tpot


@pytest.mark.parametrize("model", MODELS)
def test_kv_cache_graph_against_recompute(model):
    settings = MeasureSettings(timing=TimingSettings.quick(), decode_tokens=NEW,
                               decode_runs=DECODE_RUNS)
    with tempfile.TemporaryDirectory() as root:
        info = prepare(parse_spec(model), [SEQ], root=Path(root))
        no_cache = {**info, "decode": {"mode": "recompute", "reason": "benchmark"}}
        rows: dict[str, list[dict]] = {w: [] for w in WAYS}
        for _ in range(ROUNDS):
            for way, (variant, kv) in WAYS.items():
                cfg = BenchConfig(model, "student", variant, "cpu", 1, SEQ, THREADS)
                rows[way].append(measure(cfg, settings, info if kv else no_cache).row)
    out = {}
    for way, rs in rows.items():
        med = {k: statistics.median(r[k] for r in rs)
               for k in ("ttft_ms", "tpot_ms", "latency_ms_mean")}
        mode = rs[0]["decode_mode"]
        out[way] = {**{k: round(v, 3) for k, v in med.items()}, "decode_mode": mode,
                    "request_ms": round(_request_ms(med["tpot_ms"], med["latency_ms_mean"],
                                                    mode), 3)}
    ratio = {v: out[f"{v} recompute"]["tpot_ms"] / out[f"{v} kv-cache"]["tpot_ms"]
             for v in ("ort-int8", "ort-fp32")}
    record("decode_kv_cache", model=model, seq=SEQ, new_tokens=NEW, threads=THREADS,
           rounds=ROUNDS, ways=out, tpot_recompute_over_kv={k: round(v, 2)
                                                            for k, v in ratio.items()})
    for variant, r in ratio.items():  # one new token against the whole window again
        assert r > 1.5, (variant, out)
