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
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from contracts.errors import InputError
from contracts.io import atomic_path, write_json_atomic
from models.checkpoint import save_checkpoint
from models.corpus import DataConfig, build_splits, eval_windows, fingerprint

from .config import TrainConfig
from .data import BatchSampler
from .losses import DistillationLoss, global_num_valid_tokens, normalize
from .scalars import Scalars, check_logger, open_writer

log = logging.getLogger(__name__)
STATE_FILE, METRICS_FILE = "train_state.pt", "metrics.json"
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


def hf_dir(teacher: str) -> str:
    """The directory of a hf: teacher (hf:DIR, or a model id's snapshot in the local cache)."""
    from models.zoo import parse_spec

    return parse_spec(teacher).target


def token_bytes_of(dcfg: DataConfig) -> np.ndarray | None:
    """UTF-8 bytes per token id (for bits per byte), or None when tokens are bytes."""
    from models.corpus import hf_tokens

    return hf_tokens(dcfg.tokenizer).token_bytes if dcfg.tokenizer else None


class HFCausalLM(torch.nn.Module):
    """A Hugging Face causal LM as the trainer calls a teacher: ids (B, T) -> logits (B, T, V)."""

    def __init__(self, module: torch.nn.Module, vocab_size: int, max_len: int):
        super().__init__()
        self.module, self.vocab_size, self.max_len = module, vocab_size, max_len

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.module(input_ids=idx).logits


def hf_teacher_shape(cfg: TrainConfig) -> tuple[int, int] | None:
    """(vocabulary, context) of a Hugging Face teacher, from its config alone; else None."""
    if not (cfg.teacher or "").startswith("hf:"):
        return None
    from transformers import AutoConfig

    conf = AutoConfig.from_pretrained(hf_dir(cfg.teacher), local_files_only=True)
    limit = getattr(conf, "max_position_embeddings", None) or getattr(conf, "n_positions", None)
    return int(conf.vocab_size), int(limit or 1 << 30)


def vocab_of(model: torch.nn.Module) -> int:
    return getattr(model, "vocab_size", None) or model.config.vocab_size


CALIBRATION_STEP = 2**31 - 1  # the batch init: teacher-pruned ranks the teacher's activations on


def init_source(cfg: TrainConfig, teacher: torch.nn.Module | None) -> torch.nn.Module | None:
    """The model a student is initialized from: the teacher, also for the no-KD baseline (ce),
    which loads it for the init alone, so that KD and baseline differ in the loss only."""
    if teacher is not None or cfg.init == "random" or cfg.teacher in (None, "none"):
        return teacher
    return load_teacher(cfg.model_copy(update={"mode": "kd", "data_mode": "corpus"}))


def build_student(cfg: TrainConfig, teacher: torch.nn.Module | None,
                  train_split: np.ndarray | None = None) -> tuple[torch.nn.Module, str]:
    """The student architecture, initialized from the teacher where its init setting and the
    shapes allow (teacher-pruned ranks the teacher's activations on a batch of `train_split`).
    Its vocabulary follows a Hugging Face teacher's (unless the spec sets vocab_size itself)."""
    from dataclasses import replace

    from models.gpt import GPT
    from models.zoo import builtin_config, parse_spec

    spec = parse_spec(cfg.student)
    if spec.kind != "builtin":
        raise InputError(f"student must be a builtin architecture, got {cfg.student!r}")
    torch.manual_seed(cfg.seed)
    arch = builtin_config(spec.target)
    shape = hf_teacher_shape(cfg)  # also for the no-KD baseline, which loads no teacher
    if shape is not None and "vocab_size=" not in spec.target:
        arch = replace(arch, vocab_size=shape[0], block_size=min(arch.block_size, shape[1]))
    student = GPT(arch)
    if cfg.init == "teacher-layers" and teacher is not None:
        return student, init_from_teacher_layers(student, teacher)
    if cfg.init == "teacher-pruned" and teacher is not None:
        return student, init_pruned(student, teacher, cfg, train_split)
    return student, "random"


def init_pruned(student, teacher, cfg: TrainConfig, train_split: np.ndarray | None) -> str:
    """distill.prune.cut on a batch of training windows; random (and why) where the teacher is
    not the built-in GPT or the student does not fit inside it."""
    from models.gpt import GPT

    from .prune import cut, fits

    if not isinstance(teacher, GPT):
        return "random (teacher-pruned needs a built-in GPT teacher)"
    why = fits(student.config, teacher.config)
    if why or train_split is None:
        return f"random ({why or 'no training windows to rank the teacher on'})"
    x, _ = BatchSampler(train_split, min(cfg.block_size, student.config.block_size),
                        cfg.batch_size, cfg.seed).batch_at(CALIBRATION_STEP)
    device = next(teacher.parameters()).device
    return cut(student, teacher, torch.from_numpy(x).to(device))


def init_from_teacher_layers(student, teacher) -> str:
    """Copy embeddings, final norm and every k-th block (DistilBERT's layer selection).

    Needs equal width and heads; otherwise the student keeps its random init and says so."""
    from models.gpt import GPT

    s, t = student.config, teacher.config if isinstance(teacher, GPT) else None
    same = t is not None and (s.n_embd, s.n_head, s.vocab_size) == (t.n_embd, t.n_head,
                                                                    t.vocab_size)
    if not same or s.n_layer > t.n_layer or s.block_size > t.block_size:
        return "random (teacher shapes differ)"
    picks = np.linspace(0, t.n_layer - 1, s.n_layer).round().astype(int).tolist()
    with torch.no_grad():
        student.wte.weight.copy_(teacher.wte.weight)
        student.wpe.weight.copy_(teacher.wpe.weight[: s.block_size])
        student.ln_f.load_state_dict(teacher.ln_f.state_dict())
        for i, j in enumerate(picks):
            student.blocks[i].load_state_dict(teacher.blocks[j].state_dict())
    return f"teacher layers {picks}"


class FrozenCompiled(torch.nn.Module):
    """A frozen teacher's forward under torch.compile (compile: true), on CPU with inductor's
    freezing: under no_grad its weights become constants of the compiled graph, so inductor
    prepacks each weight matrix once for MKL's GEMM (bias included) and fuses GELU, layer norms and
    residual adds around it; eager PyTorch copies every bias into the output before each product.
    Dynamo guards the weights' identity, so another teacher compiles anew instead of reusing these
    constants; the weights must not change in place (a teacher is frozen). Other devices get a
    plain torch.compile (freezing measured on CPU only)."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.compiled = torch.compile(module)
        self.config, self.vocab_size = getattr(module, "config", None), vocab_of(module)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        from torch._inductor import config as inductor_config

        freeze = idx.device.type == "cpu" and not torch.is_grad_enabled()
        with inductor_config.patch(freezing=freeze):
            return self.compiled(idx)


def load_teacher(cfg: TrainConfig) -> torch.nn.Module | None:
    """The teacher, frozen; None without KD, except that sequence-level KD (ce on generated
    data) loads it too, to report the student's retention against it."""
    if (cfg.mode == "ce" and cfg.data_mode == "corpus") or cfg.teacher in (None, "none"):
        return None
    from models.zoo import load_torch, parse_spec

    tm = load_torch(parse_spec(cfg.teacher))
    module = tm.module
    if tm.family.startswith("hf-"):
        if not tm.is_causal_lm:
            raise InputError(f"teacher {cfg.teacher!r}: a {tm.extra.get('hf_class')} is not a "
                             "causal language model (it cannot predict the next token)")
        module = HFCausalLM(tm.module, tm.vocab_size, tm.max_seq_len or 1 << 30)
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


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


def save_state(out: Path, student, opt, step: int, cfg: TrainConfig, data_fp: str,
               history: list[dict]) -> None:
    """Everything a resumed run needs, written atomically (temp file + os.replace)."""
    state = {
        "step": step,
        "history": history,
        "model": student.state_dict(),
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "config": cfg.model_dump(),
        "data_fingerprint": data_fp,
    }
    with atomic_path(out / STATE_FILE) as tmp:
        torch.save(state, tmp)


# where a run executes, not what it computes: these may change on resume
_RUN_ONLY = ("device", "threads", "teacher_cache_dir", "compile", "log_every", "logger")


def _same_run(saved: dict, cfg: TrainConfig) -> bool:
    now = cfg.model_dump()
    saved = {**TrainConfig.model_construct().model_dump(), **saved}  # fields added since: default
    return {k: v for k, v in saved.items() if k not in _RUN_ONLY} == {
        k: v for k, v in now.items() if k not in _RUN_ONLY}


def read_state(path: Path, device) -> dict:
    """train_state.pt (tensors and plain data only: weights_only); a truncated or corrupt file
    is one InputError naming it and how to start over, never the reader's traceback."""
    import pickle

    try:
        state = torch.load(path, weights_only=True, map_location=device)
        if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
            raise ValueError("not a training state")
        missing = [k for k in ("data_fingerprint", "step", "model", "optimizer", "torch_rng")
                   if k not in state]
        if missing:
            raise ValueError(f"no {', '.join(missing)} in it")
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError,
            pickle.UnpicklingError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise InputError(f"{path}: this checkpoint is damaged and cannot be resumed ({why}); "
                         f"delete it to train this run over from step 0 with --resume, or "
                         f"start over in another --out") from None
    return state


def load_state(out: Path, student, opt, cfg: TrainConfig, data_fp: str) -> tuple[int, list]:
    device = next(student.parameters()).device
    state = read_state(out / STATE_FILE, device)
    if not _same_run(state["config"], cfg) or state["data_fingerprint"] != data_fp:
        raise InputError(f"{out}: the saved run used other settings or data; --resume needs the "
                         "same ones (or choose a new --out)")
    student.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"].cpu())
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([r.cpu() for r in state["cuda_rng"]])
    return int(state["step"]), list(state.get("history", []))


class _StopFlag:
    """SIGINT sets a flag; the loop saves a checkpoint at the end of the step and stops."""

    def __init__(self):
        self.stop = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
            self._old = None
        return self

    def _handle(self, signum, frame):
        self.stop = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


# --------------------------------------------------------------------------- DDP


@dataclass
class Dist:
    """Where this process stands in a torchrun job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    owned: bool = False  # this trainer initialized the process group, so it tears it down

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.owned and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def setup_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the torchrun job named by WORLD_SIZE/RANK/LOCAL_RANK (gloo on CPU, nccl on GPU)."""
    dist = torch.distributed
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return Dist(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), owned), device


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
    with _StopFlag() as flag, contextlib.closing(scalars):
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
