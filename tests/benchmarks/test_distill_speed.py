"""Benchmark: distillation throughput with the teacher-logit cache vs a live teacher, and the
model FLOP utilization of a distillation step (figures go to BENCHMARKS.md).

Run:  .venv/bin/python -m pytest tests/benchmarks/test_distill_speed.py -s -p no:cacheprovider

Default size: teacher `builtin:teacher` (14.4 M), student `builtin:student-10x` (1.4 M), batch
16 × 256 bytes, fp32, 2 threads. Live and cached runs alternate (A/B interleaved, medians), each a
fresh `distill.trainer.train` of STEPS steps whose training-step time (evaluation excluded) is in
metrics["speed"]. FLOPs of one step are counted by torch's FlopCounterMode around a real step
(student forward + backward, plus the teacher forward when it runs); MFU = those FLOPs × steps /
training seconds / the measured fp32 matmul peak of this machine at the same thread count.
For reference the same is measured for a plain cross-entropy training loop of the 14 M teacher
architecture (no distillation).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from distill.config import make_config
from distill.trainer import train

from .figures import record

STEPS, ROUNDS, THREADS = 12, 3, 2
BASE = dict(teacher="builtin:teacher", student="builtin:student-10x", mode="kd", steps=STEPS,
            batch_size=16, block_size=256, temperature=1.0, alpha=0.9, lr=3e-3, warmup_steps=2,
            eval_every=10_000, ckpt_every=10_000, eval_windows=4, threads=THREADS)


def matmul_peak_flop_s(threads: int = THREADS) -> tuple[float, int]:
    """Best fp32 torch.mm rate over square sizes (median of 5 timed calls each)."""
    torch.set_num_threads(threads)
    best, best_n = 0.0, 0
    for n in (512, 1024, 1536, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        for _ in range(3):
            a @ b
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        rate = 2 * n**3 / statistics.median(times)
        if rate > best:
            best, best_n = rate, n
    return best, best_n


def step_flops(cfg) -> int:
    """FLOPs of one real training step (FlopCounterMode: matmuls and attention, fwd and bwd)."""
    import distill.trainer as tr
    from distill.data import BatchSampler, DataConfig, build_splits, fingerprint

    data = build_splits(DataConfig(cfg.data_source, cfg.val_fraction, cfg.test_fraction))
    teacher = tr.load_teacher(cfg)
    student, _ = tr.build_student(cfg, teacher)
    loss_fn = tr.make_loss(cfg)
    target = tr.teacher_source(cfg, teacher, loss_fn, fingerprint(data))
    sampler = BatchSampler(data["train"], cfg.block_size, cfg.batch_size, cfg.seed)
    opt = tr.make_optimizer(cfg, student)
    with FlopCounterMode(display=False) as counter:
        tr._train_step(cfg, loss_fn, student, target, opt, sampler, 0, torch.device("cpu"))
    return int(counter.get_total_flops())


def test_cache_speedup_and_mfu(tmp_path):
    live_cfg = make_config({**BASE, "teacher_cache": False})
    cache_cfg = make_config({**BASE, "teacher_cache": True,
                             "teacher_cache_dir": str(tmp_path / "cache")})
    warm = train(cache_cfg, tmp_path / "fill").metrics["speed"]  # writes the cache (misses)
    assert warm["teacher_cache"]["misses"] == STEPS
    compiled_cfg = live_cfg.model_copy(update={"compile": True})
    train(compiled_cfg, tmp_path / "compile-warmup")  # compiles once (cached by torch)
    live, cached, compiled = [], [], []
    for r in range(ROUNDS):
        live.append(train(live_cfg, tmp_path / f"live{r}").metrics["speed"])
        cached.append(train(cache_cfg, tmp_path / f"cache{r}").metrics["speed"])
        compiled.append(train(compiled_cfg, tmp_path / f"compiled{r}").metrics["speed"])
        assert cached[-1]["teacher_cache"]["hits"] == STEPS
    tps_live = statistics.median(s["tokens_per_s"] for s in live)
    tps_cache = statistics.median(s["tokens_per_s"] for s in cached)
    # compiled steps include recompiles for new shapes in their first steps: median of the rest
    tps_compiled = statistics.median(s["tokens_per_s"] for s in compiled)
    plain_cfg = make_config({**BASE, "teacher": None, "mode": "ce", "student": "builtin:teacher",
                             "steps": 6})  # the reference: a plain 14 M GPT training loop
    plain = train(plain_cfg, tmp_path / "plain").metrics["speed"]
    peak, peak_n = matmul_peak_flop_s()
    flops_live, flops_cache = step_flops(live_cfg), step_flops(cache_cfg)
    tokens_per_step = BASE["batch_size"] * BASE["block_size"]
    mfu_live = flops_live * tps_live / tokens_per_step / peak
    mfu_cache = flops_cache * tps_cache / tokens_per_step / peak
    mfu_compiled = flops_live * tps_compiled / tokens_per_step / peak  # same FLOPs, fewer kernels
    flops_plain = step_flops(plain_cfg)
    mfu_plain = flops_plain * plain["tokens_per_s"] / tokens_per_step / peak
    record("distill_cache_speed", tokens_per_s_live=round(tps_live), tokens_per_s_cache=round(
        tps_cache), speedup=round(tps_cache / tps_live, 3), first_fill_tokens_per_s=round(
        warm["tokens_per_s"]), step_flops_live=flops_live, step_flops_cache=flops_cache,
        matmul_peak_gflop_s=round(peak / 1e9, 1), matmul_peak_n=peak_n,
        mfu_live=round(mfu_live, 3), mfu_cache=round(mfu_cache, 3), threads=THREADS,
        mfu_plain_14m_gpt=round(mfu_plain, 3), step_flops_plain=flops_plain,
        tokens_per_s_live_compiled=round(tps_compiled), mfu_live_compiled=round(mfu_compiled, 3),
        compiled_runs=[round(s["tokens_per_s"]) for s in compiled],
        live_runs=[round(s["tokens_per_s"]) for s in live],
        cache_runs=[round(s["tokens_per_s"]) for s in cached])
    assert tps_cache >= 1.5 * tps_live
