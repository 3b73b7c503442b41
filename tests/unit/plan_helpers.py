"""Small hand-written results tables for the planner's tests (the schema a user may write by
hand: bench's columns, only the required ones plus what a test needs)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "bench_results.csv"
OLD_PLANS = FIXTURE.parent / "plans"  # plan.json files of the previous version (README)


def old_plan_bytes(name: str) -> bytes:
    """plan.json as `roi plan` wrote it before the contract was typed: v1-measured or
    v1-llm-config (tests/fixtures/plans, gzipped)."""
    return gzip.decompress((OLD_PLANS / f"{name}.plan.json.gz").read_bytes())

# name -> params; students at about 5x, 10x, 20x and 50x fewer params than the teacher
MODELS = {"m:teacher": 10_000_000, "m:s5": 2_000_000, "m:s10": 1_000_000,
          "m:s20": 500_000, "m:s50": 200_000}


def latency_ms(flops: float, params: float, overhead_ms: float, gflop_s: float,
               exponent: float) -> float:
    """The planner's own roofline (compute-bound), for tables with a known answer."""
    rate_per_ms = gflop_s * 1e6 * (params / 1e6) ** exponent
    return overhead_ms + flops / rate_per_ms


def synthetic_results(*, overhead_ms: float = 0.5, gflop_s: float = 20.0,
                      exponent: float = 0.2, batches=(1, 8), seq_len: int = 128,
                      runtimes=(("ort", "fp32"),), cv: float = 0.1, models=None,
                      env_cpu: str = "Test CPU", device: str = "cpu", env_gpu: str = "",
                      hardware: str | None = None, noise=None, layers: dict | None = None,
                      overhead_ms_per_layer: float = 0.0) -> pd.DataFrame:
    rows = []
    models = models or MODELS
    for backend, dtype in runtimes:
        for model, params in models.items():
            for b in batches:
                flops = 2.0 * params * seq_len
                t = latency_ms(flops * b, params, overhead_ms, gflop_s, exponent)
                if layers is not None:
                    t += overhead_ms_per_layer * layers[model]
                if noise is not None:
                    t *= noise(model, b)
                row = {"model": model, "role": "teacher" if "teacher" in model else "student",
                       "backend": backend, "device": device, "dtype": dtype, "batch_size": b,
                       "seq_len": seq_len, "threads": 2, "status": "ok",
                       "latency_ms_mean": t, "latency_ms_p50": t, "latency_ms_cv": cv,
                       "params": params, "flops_per_sample": flops,
                       "weight_bytes": params * (1 if dtype == "int8" else 4),
                       "env_cpu": env_cpu, "env_logical_cpus": 2, "env_gpu": env_gpu}
                if hardware:
                    row["hardware"] = hardware
                if layers is not None:
                    row["n_layers"] = layers[model]
                rows.append(row)
    return pd.DataFrame(rows)
