"""Tuning ONNX Runtime on this machine: session settings swept rather than guessed (intra-op
threads, spinning, memory arena, graph optimization level, each combination timed on the same
inputs), where a model's time goes (ORT's own profiler, per operator type), and the matmul
peaks a model's achieved FLOP/s is measured against (fp32 and int8 on one MatMul op).

Sessions are built once and then timed in interleaved rounds (every setting once per round, in
a shuffled order), so drift on a shared machine falls on all settings alike; each setting's
figure is the median over rounds of its per-round median.
"""

from __future__ import annotations

import itertools
import logging
import time

import numpy as np
import pandas as pd

from models.runtime import SessionSettings, ort_session

log = logging.getLogger(__name__)


def settings_grid(threads: list[int], spinning=(True, False), arena=(True, False),
                  levels=("basic", "extended", "all")) -> list[tuple[int, SessionSettings]]:
    return [(t, SessionSettings(spinning=s, arena=a, level=lv))
            for t, s, a, lv in itertools.product(threads, spinning, arena, levels)]


def sweep_settings(path: str, feeds: dict[str, np.ndarray], grid: list[tuple[int, SessionSettings]],
          rounds: int = 5, calls: int = 20, warmup: int = 5, seed: int = 0) -> pd.DataFrame:
    """Median latency (ms) of every (threads, settings) on one model file and one input."""
    sessions = [ort_session(path, t, "cpu", s) for t, s in grid]
    for sess in sessions:
        for _ in range(warmup):
            sess.run(None, feeds)
    per_round = np.zeros((rounds, len(grid)))
    rng = np.random.default_rng(seed)
    for r in range(rounds):
        for i in rng.permutation(len(grid)):
            per_round[r, i] = _median_ms(sessions[i], feeds, calls)
    rows = [{"threads": t, "spinning": s.spinning, "arena": s.arena, "level": s.level,
             "latency_ms_p50": float(np.median(per_round[:, i])),
             "latency_ms_min_round": float(per_round[:, i].min()),
             "latency_ms_max_round": float(per_round[:, i].max())}
            for i, (t, s) in enumerate(grid)]
    return pd.DataFrame(rows).sort_values("latency_ms_p50").reset_index(drop=True)


def _median_ms(sess, feeds: dict, calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        sess.run(None, feeds)
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) / 1e6


def op_profile(path: str, feeds: dict[str, np.ndarray], threads: int, calls: int = 50,
               warmup: int = 5, prefix: str | None = None) -> pd.DataFrame:
    """Kernel time per operator type over `calls` runs (ONNX Runtime's profiler), largest
    first, with its share of all kernel time and the median wall time of a run."""
    import json
    import os
    import tempfile

    import onnxruntime as ort

    from models.runtime import SessionSettings

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning",
                                  "1" if SessionSettings().spinning else "0")
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = prefix or os.path.join(tmp, "ort-profile")
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        for _ in range(warmup):
            sess.run(None, feeds)
        start = time.perf_counter_ns()
        for _ in range(calls):
            sess.run(None, feeds)
        wall_ms = (time.perf_counter_ns() - start) / 1e6 / calls
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    df = pd.DataFrame({"op": [e["args"]["op_name"] for e in kernels],
                       "us": [e["dur"] for e in kernels]})
    # the profile includes the warm-up runs; per-run figures divide by all profiled runs
    runs = warmup + calls
    out = df.groupby("op")["us"].agg(["sum", "count"]).sort_values("sum", ascending=False)
    out = pd.DataFrame({"op": out.index, "us_per_run": out["sum"].values / runs,
                        "nodes": (out["count"].values // runs).astype(int),
                        "share": out["sum"].values / out["sum"].sum()})
    out.attrs["wall_ms_per_run"] = wall_ms
    return out.reset_index(drop=True)


def matmul_peak_gflops(dtype: str, n: int = 1024, threads: int = 2, rounds: int = 5,
                       calls: int = 10) -> float:
    """Best sustained GFLOP/s (int8: GOP/s) of one n×n×n MatMul in ONNX Runtime on this CPU:
    fp32 (MatMul, MLAS sgemm) or int8 (MatMulInteger u8×s8, MLAS's VNNI kernels where the CPU
    has them). 2·n³ operations per call."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    if dtype == "fp32":
        node = helper.make_node("MatMul", ["a", "b"], ["c"])
        types, out_type = (TensorProto.FLOAT, TensorProto.FLOAT), TensorProto.FLOAT
        rng = np.random.default_rng(0)
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    elif dtype == "int8":
        node = helper.make_node("MatMulInteger", ["a", "b"], ["c"])
        types, out_type = (TensorProto.UINT8, TensorProto.INT8), TensorProto.INT32
        rng = np.random.default_rng(0)
        a = rng.integers(0, 255, (n, n), dtype=np.uint8)
        b = rng.integers(-127, 127, (n, n), dtype=np.int8)
    else:
        raise ValueError(f"dtype must be fp32 or int8, got {dtype!r}")
    inputs = [helper.make_tensor_value_info(x, t, [n, n]) for x, t in zip("ab", types)]
    output = helper.make_tensor_value_info("c", out_type, [n, n])
    graph = helper.make_graph([node], "matmul", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    feeds = {"a": a, "b": b}
    sess.run(None, feeds)
    best_s = min(_median_ms(sess, feeds, calls) for _ in range(rounds)) / 1e3
    return 2.0 * n**3 / best_s / 1e9


def torch_matmul_peak_gflops(dtype: str = "bf16", n: int = 1024, threads: int = 2,
                             rounds: int = 5, calls: int = 10) -> float:
    """Best sustained GFLOP/s of one n×n×n torch.matmul on this CPU in `dtype` (bf16 runs on
    AMX or AVX512_BF16 through oneDNN where the CPU has them): the peak a torch-eager-bf16 row
    is measured against."""
    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(dt) for _ in range(2))
    with torch.inference_mode():
        torch.matmul(a, b)
        best_s = float("inf")
        for _ in range(rounds):
            times = []
            for _ in range(calls):
                t0 = time.perf_counter_ns()
                torch.matmul(a, b)
                times.append(time.perf_counter_ns() - t0)
            best_s = min(best_s, float(np.median(times)) / 1e9)
    return 2.0 * n**3 / best_s / 1e9
