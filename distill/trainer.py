"""The distillation recipe: setup, train, evaluate, save (one readable loop, small parts).

Output directory layout (a `ckpt:DIR` that bench measures like any other model):
    config.json, model.safetensors   the student (models.checkpoint)
    metrics.json                     final held-out metrics, settings, wall time
    train_state.pt                   resumable state: model, optimizer, scheduler, RNG, step
    tb/ or scalars.jsonl             scalars to watch the run by (distill.scalars)
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from contracts.errors import InputError
from contracts.io import write_json_atomic
from models.checkpoint import save_checkpoint
from models.corpus import DataConfig, build_splits, eval_windows, fingerprint

from .config import TrainConfig
from .data import BatchSampler
from .losses import DistillationLoss, global_num_valid_tokens, normalize
from .scalars import Scalars, check_logger, open_writer
from .students import FrozenCompiled, build_student, hf_dir, init_source, load_teacher, vocab_of
from .train_state import STATE_FILE, Dist, StopFlag, load_state, save_state, setup_distributed

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"
Progress = Callable[[int, int, float], None]  # (step, total steps, last loss)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the last good checkpoint is kept."""


@dataclass
class DistillResult:
    out_dir: Path
    metrics: dict


# --------------------------------------------------------------------------- setup


def data_config(cfg: TrainConfig) -> DataConfig:
    """The corpus and tokenization of a run (also what export re-reads for its evaluation)."""
    return DataConfig(cfg.data_source, cfg.val_fraction, cfg.test_fraction,
                      tokenizer=resolve_tokenizer(cfg), text_field=cfg.text_field)


def resolve_tokenizer(cfg: TrainConfig) -> str | None:
    """None for byte tokens; else the directory of the Hugging Face tokenizer to use."""
    from models.corpus import has_tokenizer

    if cfg.tokenizer == "bytes":
        return None
    if cfg.tokenizer != "auto":
        if not has_tokenizer(cfg.tokenizer):
            raise InputError(f"tokenizer {cfg.tokenizer!r}: no tokenizer files there (expected "
                             "tokenizer.json or tokenizer_config.json); or use auto or bytes")
        return cfg.tokenizer
    teacher = cfg.teacher or ""
    if teacher.startswith("hf:") and has_tokenizer(hf_dir(teacher)):
        return hf_dir(teacher)
    return None


def token_bytes_of(dcfg: DataConfig) -> np.ndarray | None:
    """UTF-8 bytes per token id (for bits per byte), or None when tokens are bytes."""
    from models.corpus import hf_tokens

    return hf_tokens(dcfg.tokenizer).token_bytes if dcfg.tokenizer else None


def resolve_device(name: str) -> torch.device:
    """auto → the GPU when one is visible, else the CPU; an unavailable GPU is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r}: no CUDA GPU is visible here (use cpu or auto)")
    return dev


def lr_at(cfg: TrainConfig, step: int) -> float:
    """The learning rate of `step` (0-based) in a run of cfg.steps steps.

    wsd: linear warm-up, constant lr, then a linear decay over the last decay_steps(cfg) steps
    whose last step runs at min_lr. Before its decay, a run's rates do not depend on its length
    (pilots branch a short decay off one stable run: distill.pilot). cosine: linear warm-up, then
    a cosine from lr to min_lr at the last step."""
    if cfg.schedule == "wsd":
        start = cfg.steps - decay_steps(cfg)
        if step >= start:
            return cfg.lr - (cfg.lr - cfg.min_lr) * (step - start + 1) / decay_steps(cfg)
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "wsd":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def decay_steps(cfg: TrainConfig) -> int:
    """wsd: the steps of the final decay (decay_fraction of the run, at least one)."""
    return max(1, round(cfg.decay_fraction * cfg.steps))


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel for all parameters (CPU and CUDA) instead of ~10 small ops per tensor
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=True)


# --------------------------------------------------------------------------- generated data


def load_generated_data(cfg: TrainConfig, dcfg: DataConfig):
    """The teacher's samples (distill.generate) tokenized like the corpus; None for corpus."""
    if cfg.data_mode == "corpus":
        return None
    from .data import load_generated

    return load_generated(cfg.generated_data, dcfg.tokenizer)


def training_fingerprint(cfg: TrainConfig, corpus_fp: str, generated) -> str:
    """What the training batches are drawn from: the corpus splits, plus the generated samples
    and how they are mixed in (so the teacher-logit cache and --resume tell the runs apart)."""
    if generated is None:
        return corpus_fp
    mix = f"{cfg.generated_fraction:g}" if cfg.data_mode == "mixed" else ""
    return f"{corpus_fp}+{cfg.data_mode}{mix}-{generated.fingerprint()}"


def make_sampler(cfg: TrainConfig, train_split: np.ndarray, generated):
    from .data import GeneratedSampler, MixedSampler

    if cfg.data_mode == "corpus":
        return BatchSampler(train_split, cfg.block_size, cfg.batch_size, cfg.seed)
    if cfg.data_mode == "generated":
        return GeneratedSampler(generated, cfg.block_size, cfg.batch_size, cfg.seed)
    n_gen = min(cfg.batch_size - 1, max(1, round(cfg.batch_size * cfg.generated_fraction)))
    return MixedSampler(BatchSampler(train_split, cfg.block_size, cfg.batch_size - n_gen, cfg.seed),
                        GeneratedSampler(generated, cfg.block_size, n_gen, cfg.seed))


# --------------------------------------------------------------------------- loss


def make_loss(cfg: TrainConfig) -> DistillationLoss:
    """α·KD + (1−α)·CE; ce mode is α = 0 (the no-KD baseline, or teacher training)."""
    alpha = 0.0 if cfg.mode == "ce" else cfg.alpha
    return DistillationLoss(kind=cfg.kd_loss, temperature=cfg.temperature, alpha=alpha,
                            beta=cfg.beta)


def autocast_for(cfg: TrainConfig):
    """device type -> the autocast context of cfg.dtype (a no-op context for fp32)."""
    return lambda device_type: torch.autocast(device_type, dtype=torch.bfloat16,
                                              enabled=cfg.dtype == "bf16")


def teacher_source(cfg: TrainConfig, teacher, loss_fn: DistillationLoss, data_fp: str,
                   rank: int = 0):
    """What gives the KD target of a micro-batch: None (no KD), the disk cache, or live logits."""
    from .teacher_cache import CachedTeacher, LiveTeacher, TeacherCache, cache_key, default_root

    if teacher is None or loss_fn.alpha == 0:
        return None
    if not cfg.teacher_cache:
        return LiveTeacher(teacher, autocast_for(cfg))
    from models.zoo import content_hash, parse_spec

    key = cache_key(teacher_hash=content_hash(parse_spec(cfg.teacher)), data_fingerprint=data_fp,
                    k=cfg.teacher_topk, temperature=cfg.temperature, dtype=cfg.dtype,
                    block_size=cfg.block_size, batch_size=cfg.batch_size, seed=cfg.seed)
    root = Path(cfg.teacher_cache_dir) if cfg.teacher_cache_dir else default_root()
    k = min(cfg.teacher_topk, vocab_of(teacher))
    cache = TeacherCache(root, key, k, cfg.temperature, vocab_of(teacher), rank)
    return CachedTeacher(teacher, cache, autocast_for(cfg))


def step_loss(cfg: TrainConfig, loss_fn: DistillationLoss, student, target, x, y, n_valid,
              step: int = 0, micro: int = 0) -> torch.Tensor:
    """Loss of one micro-batch divided by the valid tokens of the whole step (losses.normalize)."""
    with autocast_for(cfg)(x.device.type):
        logits = student(x)  # (B, T, V)
    t_target = target(x, step, micro) if target is not None else None
    return normalize(loss_fn(logits, t_target, y).total, n_valid)


# --------------------------------------------------------------------------- evaluation


def param_count(model: torch.nn.Module) -> int:
    """Parameters of `model`, tied weights counted once (metrics.json and pilot rows)."""
    return int(sum(p.numel() for p in model.parameters()))


@torch.no_grad()
def evaluate(model: torch.nn.Module, windows: np.ndarray, batch_size: int = 16,
             token_bytes: np.ndarray | None = None) -> dict:
    """Mean next-token cross-entropy (nats), bits per byte, perplexity and top-1 accuracy."""
    model.eval()
    device = next(model.parameters()).device
    total, correct, count = 0.0, 0, 0
    n_bytes = int(token_bytes[windows[:, 1:]].sum()) if token_bytes is not None else None
    for i in range(0, len(windows), batch_size):
        w = torch.from_numpy(windows[i : i + batch_size]).to(device)
        x, y = w[:, :-1], w[:, 1:]
        logits = model(x).float()
        total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
        correct += (logits.argmax(-1) == y).sum().item()
        count += y.numel()
    return lm_metrics(total, correct, count, n_bytes)


def lm_metrics(total_nats: float, correct: int, count: int, n_bytes: int | None = None) -> dict:
    """Mean cross-entropy (nats per token), bits per byte (of the UTF-8 text the tokens stand
    for; tokens are bytes by default), perplexity per token and top-1 accuracy."""
    loss = total_nats / count
    n_bytes = n_bytes or count
    return {"loss": loss, "bits_per_byte": total_nats / math.log(2) / n_bytes,
            "perplexity": math.exp(loss), "accuracy": correct / count, "tokens": count,
            "bytes": n_bytes}


# --------------------------------------------------------------------------- state


# --------------------------------------------------------------------------- the recipe


def train(cfg: TrainConfig, out: str | Path, resume: bool = False,
          progress: Progress | None = None) -> DistillResult:
    """Train the student of `cfg` into `out`; return its held-out metrics."""
    out = Path(out)
    if (out / STATE_FILE).exists() and not resume:
        raise InputError(f"{out} holds a training run: pass --resume or choose another --out")
    check_logger(cfg.logger)  # a missing tensorboardX refused before anything runs
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.perf_counter()
    ddp, device = setup_distributed(resolve_device(cfg.device))
    try:
        return _train(cfg, out, resume, progress, ddp, device, t_start)
    finally:
        ddp.close()


def _train(cfg: TrainConfig, out: Path, resume: bool, progress: Progress | None, ddp: Dist,
           device: torch.device, t_start: float) -> DistillResult:
    dcfg = data_config(cfg)
    data = build_splits(dcfg)
    generated = load_generated_data(cfg, dcfg)  # refused here, before anything is written
    data_fp = training_fingerprint(cfg, fingerprint(data), generated)
    token_bytes = token_bytes_of(dcfg)
    teacher = load_teacher(cfg)
    student, init = build_student(cfg, init_source(cfg, teacher), data["train"])
    student.to(device)
    if teacher is not None:
        teacher.to(device)
    if cfg.block_size > student.config.block_size:
        raise InputError(f"block_size {cfg.block_size} exceeds the student's context "
                         f"{student.config.block_size}")
    opt = make_optimizer(cfg, student)
    loss_fn = make_loss(cfg)
    out.mkdir(parents=True, exist_ok=True)
    step, history = 0, []
    if resume and (out / STATE_FILE).exists():
        step, history = load_state(out, student, opt, cfg, data_fp)
    sampler = make_sampler(cfg, data["train"], generated)
    # compile: the student, the teacher's forward where it runs live, and the loss (its
    # elementwise passes fused); evaluation keeps the eager modules
    live = FrozenCompiled(teacher) if cfg.compile and teacher is not None else teacher
    target = teacher_source(cfg, live, loss_fn, data_fp, rank=ddp.rank)
    val = eval_windows(data["val"], cfg.block_size, cfg.eval_windows)
    model = torch.compile(student) if cfg.compile else student  # same parameters, same state
    step_loss_fn = torch.compile(loss_fn) if cfg.compile else loss_fn
    if ddp.world > 1:  # gradients averaged over ranks; the loss is scaled by the world to match
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    speed = _Speed(cfg, ddp.world)
    scalars = Scalars(open_writer(cfg.logger, out, step) if ddp.main else None, cfg.log_every,
                      speed.tokens_per_step)
    with StopFlag() as flag, contextlib.closing(scalars):
        while step < cfg.steps:
            with speed:
                loss, stop = _train_step(cfg, step_loss_fn, model, target, opt, sampler, step,
                                         device, ddp, flag.stop)
            step += 1
            scalars.step(step, loss, lr_at(cfg, step - 1), speed.step_times[-1],
                         last=step == cfg.steps or stop)
            if progress and ddp.main:
                progress(step, cfg.steps, loss)
            if (step % cfg.eval_every == 0 or step == cfg.steps) and ddp.main:
                history.append({"step": step, "train_loss": loss,
                                **evaluate(student, val, token_bytes=token_bytes)})
                scalars.evaluation(step, history[-1])
                student.train()
            if step % cfg.ckpt_every == 0 or step == cfg.steps or stop:
                if ddp.main:
                    save_state(out, student, opt, step, cfg, data_fp, history)
                ddp.barrier()
            if stop:
                raise KeyboardInterrupt(f"stopped at step {step}; checkpoint saved")
    if not ddp.main:  # rank 0 evaluates and writes; the others are done
        ddp.barrier()
        return DistillResult(out, {})
    result = _finish(cfg, out, student, teacher, data, data_fp, init, history,
                     time.perf_counter() - t_start, speed.summary(device, target), token_bytes)
    ddp.barrier()
    return result


class _Speed:
    """Wall time of the training steps alone (evaluation and checkpoints excluded)."""

    def __init__(self, cfg: TrainConfig, world: int = 1):
        self.tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size * world
        self.world = world
        self.seconds, self.steps, self.step_times = 0.0, 0, []

    def __enter__(self):
        self._t0 = time.perf_counter()

    def __exit__(self, *exc):
        took = time.perf_counter() - self._t0  # loss.item() synchronizes a GPU step
        self.seconds += took
        self.steps += 1
        self.step_times.append(took)

    def summary(self, device: torch.device, target=None) -> dict:
        s = max(self.seconds, 1e-9)
        cache = getattr(target, "cache", None)
        return {"device": str(device), "steps_timed": self.steps, "train_s": self.seconds,
                "tokens_per_s": self.steps * self.tokens_per_step / s,
                # the steady state: compilation (compile: true) stays out of the median step
                "step_s_median": float(np.median(self.step_times)) if self.step_times else 0.0,
                "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "",
                "teacher": ("none" if target is None else "cache" if cache else "live"),
                "teacher_cache": cache.stats() if cache else None, "world_size": self.world}


def _train_step(cfg, loss_fn, model, target, opt, sampler, step: int, device: torch.device,
                ddp: Dist | None = None, stop: bool = False) -> tuple[float, bool]:
    """One optimizer step over grad_accum micro-batches (per rank); returns the global mean loss
    and whether any rank was asked to stop (SIGINT).

    Micro-batch m of rank r reads the sampler's window set m·world + r, so N ranks with
    grad_accum a see exactly the batches of one process with grad_accum N·a (same weights)."""
    ddp = ddp or Dist()
    model.train()
    for group in opt.param_groups:
        group["lr"] = lr_at(cfg, step)
    index = [m * ddp.world + ddp.rank for m in range(cfg.grad_accum)]
    batches = [tuple(torch.from_numpy(a).to(device, non_blocking=True)
                     for a in sampler.batch_at(step, i)) for i in index]
    n_valid = global_num_valid_tokens([y for _, y in batches])  # all ranks, all micro-batches
    total = torch.zeros((), device=device)
    for m, (i, (x, y)) in enumerate(zip(index, batches)):
        last = m == len(batches) - 1
        sync = contextlib.nullcontext() if last or ddp.world == 1 else model.no_sync()
        with sync:
            loss = step_loss(cfg, loss_fn, model, target, x, y, n_valid, step, i)
            loss = loss * ddp.world  # DDP averages gradients over ranks; undo it (losses.normalize)
            loss.backward()
        total += loss.detach() / ddp.world
    flags = torch.stack([total, torch.tensor(float(stop), device=device)])
    if ddp.world > 1:
        torch.distributed.all_reduce(flags)
    loss_value, any_stop = flags[0].item(), flags[1].item() > 0
    if not math.isfinite(loss_value):
        raise TrainingDiverged(f"loss became {loss_value} at step {step}: stopped; the last "
                               "good checkpoint is kept (try a lower lr)")
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss_value, any_stop


def _finish(cfg, out: Path, student, teacher, data, data_fp, init, history, wall_s,
            speed: dict, token_bytes=None) -> DistillResult:
    test = eval_windows(data["test"], cfg.block_size, 4 * cfg.eval_windows)
    metrics = {"student": evaluate(student, test, token_bytes=token_bytes),
               "student_params": student.num_params(),
               "init": init, "settings": cfg.model_dump(), "data_fingerprint": data_fp,
               "history": history, "wall_s": wall_s, "speed": speed}
    if teacher is not None:
        from models.zoo import content_hash, parse_spec

        metrics["teacher"] = evaluate(teacher, test, token_bytes=token_bytes)
        metrics["teacher_hash"] = content_hash(parse_spec(cfg.teacher))  # contracts.curves reads it
        metrics["teacher_params"] = param_count(teacher)  # roi.sanity: smaller than its student?
        t_acc = metrics["teacher"]["accuracy"]  # 0 for an untrained teacher: no ratio
        metrics["retention_accuracy"] = metrics["student"]["accuracy"] / t_acc if t_acc else None
    save_checkpoint(student, out)
    write_json_atomic(out / METRICS_FILE, metrics)
    return DistillResult(out, metrics)
