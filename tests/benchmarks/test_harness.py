"""Benchmark suite for the bench harness itself (figures go to BENCHMARKS.md).

Run:  .venv/bin/python -m pytest tests/benchmarks -s -p no:randomly

Not part of the default test run (pyproject's testpaths): these are measurements of a shared,
noisy machine. Each test compares quantities measured side by side in one run (ratios), prints
its figures, appends them to tests/benchmarks/figures.jsonl, and asserts the issue's goal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.timing import TimingSettings, time_cpu
from models.zoo import load_torch, parse_spec

from .figures import record

ROOT = Path(__file__).resolve().parents[2]

def _forward(spec: str, batch: int = 1, seq: int = 128):
    tm = load_torch(parse_spec(spec))
    x = tm.make_inputs(batch, seq, "cpu")

    def call():
        with torch.inference_mode():
            tm.module(**x)

    return call


@pytest.mark.parametrize("spec", ["builtin:teacher", "builtin:student-10x", "builtin:student-50x"])
def test_fidelity_against_torch_utils_benchmark(benchmark, spec):
    """The harness's median within ±3% of Timer.blocked_autorange()'s median, same threads."""
    from torch.utils.benchmark import Timer

    threads = torch.get_num_threads()
    call = _forward(spec)
    settings = TimingSettings(warmup_calls=5, min_calls=30, min_time_s=1.0)
    ours, theirs = [], []
    for _ in range(5):  # interleave A/B so drift falls on both
        ours.append(float(np.median(time_cpu(call, settings))) / 1e6)
        m = Timer("call()", globals={"call": call}, num_threads=threads).blocked_autorange(
            min_run_time=1.0)
        theirs.append(m.median * 1e3)
    ratio = float(np.median(ours) / np.median(theirs))
    benchmark.extra_info.update(ours_ms=ours, timer_ms=theirs, ratio=ratio)
    benchmark.pedantic(call, rounds=3, iterations=1)
    record("fidelity", torch=torch.__version__, model=spec, threads=threads, harness_p50_ms=float(np.median(ours)),
           timer_median_ms=float(np.median(theirs)), ratio=ratio)
    assert abs(ratio - 1) <= 0.03


def test_timing_loop_overhead_per_call(benchmark):
    """Cost of the loop's own bookkeeping per call, on a no-op callable: ≤ 2 µs."""
    def noop():
        return None

    n = 200_000
    settings = TimingSettings(warmup_calls=0, min_calls=n, min_time_s=0.0, max_time_s=1e9)
    harness, bare = [], []
    for _ in range(5):
        t0 = time.perf_counter_ns()
        time_cpu(noop, settings)
        harness.append((time.perf_counter_ns() - t0) / n)
        t0 = time.perf_counter_ns()
        for _ in range(n):
            noop()
        bare.append((time.perf_counter_ns() - t0) / n)
    overhead_ns = float(np.median(harness) - np.median(bare))
    sample_ns = float(np.median(time_cpu(noop, TimingSettings(0, 10_000, 0.0))))
    benchmark.pedantic(lambda: time_cpu(noop, TimingSettings(0, 1000, 0.0)), rounds=5)
    record("loop-overhead", loop_ns_per_call=float(np.median(harness)),
           bare_loop_ns_per_call=float(np.median(bare)), overhead_ns_per_call=overhead_ns,
           noop_sample_median_ns=sample_ns)
    assert overhead_ns <= 2000


def _bench_cli(out: Path, *args: str, cache: Path | None = None) -> float:
    env = {**os.environ}
    if cache is not None:
        env["ROI_CACHE_DIR"] = str(cache)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "app.cli", "bench", "--out", str(out), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.perf_counter() - t0


def test_repeatability_of_one_configuration(tmp_path):
    """Two back-to-back runs (fresh subprocess each) of one configuration: p50 within 3%.
    A comparison of two runs' own figures, not a timing: no benchmark fixture."""
    args = ("--teacher", "builtin:teacher", "--students", "builtin:student-10x",
            "--backends", "torch-eager,ort-fp32", "--batch-sizes", "1", "--device", "cpu")
    _bench_cli(tmp_path / "a", *args)
    _bench_cli(tmp_path / "b", *args)
    import pandas as pd

    a = pd.read_csv(tmp_path / "a" / "results.csv").set_index(["model", "backend"])
    b = pd.read_csv(tmp_path / "b" / "results.csv").set_index(["model", "backend"])
    diff = (b["latency_ms_p50"] / a["latency_ms_p50"] - 1).abs()
    for key, d in diff.items():
        record("repeatability", model=key[0], backend=key[1],
               p50_a_ms=float(a.loc[key, "latency_ms_p50"]),
               p50_b_ms=float(b.loc[key, "latency_ms_p50"]), rel_diff=float(d))
    assert (diff <= 0.03).all(), diff


def test_quick_sweep_of_default_models_wall_time(benchmark, tmp_path):
    """`roi bench --quick`: teacher + 4 students × 3 backends, batch 1, cold export cache;
    the fixture times the one run (a second would find the cache warm)."""
    wall = benchmark.pedantic(_bench_cli, args=(tmp_path / "q", "--quick"),
                              kwargs={"cache": tmp_path / "cache"}, rounds=1, iterations=1)
    rows = [json.loads(x) for x in (tmp_path / "q" / "results.jsonl").read_text().splitlines()]
    record("quick-sweep", wall_s=wall, rows=len(rows),
           ok=sum(r["status"] == "ok" for r in rows))
    assert len(rows) == 15 and all(r["status"] == "ok" for r in rows)
    assert wall <= 180
