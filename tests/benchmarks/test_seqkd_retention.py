"""Benchmark: on the default task, retention of sequence-level KD, logit KD and both combined,
each against the no-KD baseline: same student, same steps, same seed (issue 9's figure).

Run:  .venv/bin/python -m pytest tests/benchmarks/test_seqkd_retention.py -s -p no:cacheprovider

Default task: byte-level next-token prediction on the Python standard library (train split),
teacher `builtin:teacher` (14.4 M, shipped), student `builtin:student-10x` (1.4 M), the plan's
KD settings (forward KL, T = 1, alpha = 0.9, lr 3e-3 -> 3e-4), STEPS steps x 16 x 256 bytes,
fp32, 2 threads (ROI_BENCH_THREADS=1 on a busy machine). Teacher data: `roi generate` defaults
(corpus prompts of 64 bytes, 128 new bytes, temperature 1, top-p 1, seed 0), PROMPTS prompts. Runs:
    baseline   mode ce, data_mode corpus               (no teacher)
    logit KD   mode kd, data_mode corpus               (teacher top-32 logits, cached)
    seq KD     mode ce, data_mode generated            (cross-entropy on the teacher's bytes)
    combined   mode kd, data_mode generated            (both: logits on the teacher's samples)
    seq KD mixed  mode ce, data_mode mixed (half the rows corpus, half generated)
Retention = student accuracy / teacher accuracy on the held-out test split (EVAL_WINDOWS x 4
windows of 256 bytes). The generation time and every run's wall time are recorded too.
"""

from __future__ import annotations

import os
import time

from distill.config import make_config
from distill.generate import generate, make_generate_config
from distill.trainer import train

from .figures import record

STEPS, PROMPTS, EVAL_WINDOWS = 200, 768, 32
THREADS = int(os.environ.get("ROI_BENCH_THREADS", "2"))  # 1 on a busy shared machine
BASE = dict(teacher="builtin:teacher", student="builtin:student-10x", temperature=1.0,
            alpha=0.9, lr=3e-3, min_lr=3e-4, steps=STEPS, batch_size=16, block_size=256,
            warmup_steps=20, eval_every=STEPS, ckpt_every=STEPS, eval_windows=EVAL_WINDOWS,
            threads=THREADS)
RUNS = {
    "baseline": dict(mode="ce"),
    "logit_kd": dict(mode="kd"),
    "seq_kd": dict(mode="ce", data_mode="generated"),
    "combined": dict(mode="kd", data_mode="generated"),
    "seq_kd_mixed": dict(mode="ce", data_mode="mixed"),
}


def test_sequence_level_kd_retention(tmp_path):
    t0 = time.perf_counter()
    gen_cfg = make_generate_config({"num_prompts": PROMPTS, "batch_size": 64,
                                    "threads": THREADS})
    manifest = generate(gen_cfg, tmp_path / "gen").manifest
    gen_s = time.perf_counter() - t0
    out, teacher_acc = {}, None
    for name, kw in RUNS.items():
        cfg = make_config({**BASE, **kw, "generated_data": str(tmp_path / "gen"),
                           "teacher_cache_dir": str(tmp_path / "cache")})
        t = time.perf_counter()
        m = train(cfg, tmp_path / name).metrics
        teacher_acc = m.get("teacher", {}).get("accuracy", teacher_acc)
        out[name] = {"accuracy": m["student"]["accuracy"],
                     "bits_per_byte": m["student"]["bits_per_byte"],
                     "wall_s": round(time.perf_counter() - t, 1),
                     "train_tokens_per_s": round(m["speed"]["tokens_per_s"])}
    for r in out.values():
        r["retention"] = r["accuracy"] / teacher_acc
        r["gain_vs_baseline_pts"] = 100 * (r["accuracy"] - out["baseline"]["accuracy"])
    record("seqkd_retention", steps=STEPS, batch="16x256", prompts=PROMPTS,
           generated_completion_tokens=manifest["completion_tokens"],
           generation_s=round(gen_s, 1),
           generation_tokens_per_s=round(manifest["invocations"][-1]["tokens_per_s"]),
           teacher_accuracy=teacher_acc, test_bytes=EVAL_WINDOWS * 4 * 256,
           total_s=round(time.perf_counter() - t0, 1), runs=out)
    assert all(0 < r["retention"] < 1.2 for r in out.values())
