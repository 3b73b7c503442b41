"""Distillation of an encoder (issue 19): the teacher's layers shrunk into a student that learns
the teacher's outputs on unlabeled text, and retention measured in the task's own metric
(distill.encoder_eval). One loop for every task (the encoder's `task`), each with its loss:

    embedding       pooled embeddings: MSE and/or 1 - cosine (`loss`)
    classification  logits: T^2-scaled KL at `temperature` (distill.losses.kd_loss), weighted
                    `alpha`, plus (1 - alpha) cross-entropy on the texts that carry a label
    cross-encoder   one score per (text, pair): MSE to the teacher's score, or with loss
                    margin-mse, on (query, positive, negative) triples, MSE of the student's
                    margin score(q, p) - score(q, n) to the teacher's (Margin-MSE,
                    Hofstätter et al. 2020: the order of candidates, not their scale)

plus, with hidden_weight > 0 (kd), that weight x the MSE of each student layer's hidden states
to those of the teacher layer it was taken from (hidden_state_loss; the teacher runs live,
without gradients, on the batch). A student narrower or wider than its teacher (hidden_size)
learns the teacher's embeddings and hidden states through one learned linear projection to the
teacher's width, trained with it and kept in train_state.pt only, not in the student. dtype
bf16 runs the forward passes under autocast (distill.trainer.autocast_for); losses are fp32.

And, for mode labels (no teacher: the baselines, or how a teacher is built), cross-entropy on
class ids (embedding: through a linear head on the embedding) or binary cross-entropy of a
pair's score (its sigmoid) against its relevance in [0, 1] (sentence-transformers' CrossEncoder
default).

    out/  config.json, model.safetensors, tokenizer files, 1_Pooling/   the student (hf:DIR)
          metrics.json                                                    settings, history, time
          train_state.pt                                                  resumable (--resume)

A separate loop from distill.trainer, kept small: that one trains causal LMs on token windows
(next-token targets, logit cache); this one trains on whole texts (or pairs) against one
output each. The parts that fit are the trainer's own: its lr schedule and optimizer (lr_at,
make_optimizer), device choice, resumable state (save_state, read_state) and atomic writes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.errors import InputError
from contracts.io import write_json_atomic
from models.encoder import Encoder, save_encoder

from .train_state import STATE_FILE, StopFlag, read_state, save_state
from .trainer import METRICS_FILE, TrainingDiverged, lr_at, make_optimizer, resolve_device

log = logging.getLogger(__name__)
Progress = Callable[[int, int, float], None]  # (step, total steps, last loss)


class EncoderConfig(BaseModel):
    """Settings of one encoder training run (a distillation, its baseline, or a teacher)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: int = Field(3, gt=0, description="Student layers (taken from the teacher's).")
    hidden_size: Optional[int] = Field(
        None, gt=0, description="Student width (None: the teacher's). Narrower: the teacher's "
        "head count (it must divide the width), feed-forward scaled alike, random init.")
    hidden_weight: float = Field(
        0.0, ge=0, description="kd: weight of the hidden-state loss (0: off): MSE of each "
        "student layer's hidden states (through a learned projection where the widths differ; "
        "not saved with the student) to those of the teacher layer it was taken from.")
    dtype: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16 autocast of the forward passes (GPUs with bf16, CPUs); the "
        "losses stay fp32.")
    init: Literal["teacher-layers", "random"] = Field(
        "teacher-layers", description="teacher-layers: the student starts as the teacher's "
        "layers evenly spread (DistilBERT-style); random: a fresh init (the baseline).")
    mode: Literal["kd", "labels"] = Field(
        "kd", description="kd: learn the teacher's embeddings (no labels needed); labels: "
        "cross-entropy on the texts' labels through a linear head (no teacher: the baseline, "
        "or how a teacher is built).")
    loss: Literal["mse", "cosine", "mse+cosine", "margin-mse"] = Field(
        "mse+cosine", description="kd: the distance between student and teacher embeddings; "
        "a cross-encoder: margin-mse learns the teacher's margin between a query's positive "
        "and negative (data with --negative-field), any other its scores (MSE).")
    temperature: float = Field(2.0, gt=0, description="classification kd: softmax "
                               "temperature of the logit KD (its KL is scaled by T^2).")
    alpha: float = Field(0.5, ge=0, le=1, description="classification kd: weight of the logit "
                         "KD; 1 - alpha weighs cross-entropy on the labels where present.")
    steps: int = Field(600, gt=0, description="Optimizer steps.")
    batch_size: int = Field(32, gt=0, description="Texts per step.")
    lr: float = Field(5e-4, gt=0, description="Peak learning rate (AdamW).")
    min_lr: float = Field(5e-5, ge=0, description="Final learning rate.")
    warmup_steps: int = Field(50, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    ckpt_every: int = Field(200, gt=0, description="Steps between resumable checkpoints.")
    seed: int = 0
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    threads: Optional[int] = Field(None, gt=0, description="torch intra-op threads.")

    def schedule(self):
        """The trainer's settings that its lr schedule and optimizer read (cosine decay)."""
        from .config import TrainConfig

        return TrainConfig(teacher=None, steps=self.steps, lr=self.lr, min_lr=self.min_lr,
                           warmup_steps=self.warmup_steps, schedule="cosine",
                           weight_decay=self.weight_decay)


def make_encoder_config(values: dict, where: str = "encoder settings") -> EncoderConfig:
    """EncoderConfig from plain values; a bad one is one InputError naming the field."""
    from .config import _one_line

    try:
        return EncoderConfig(**values)
    except ValidationError as e:
        raise InputError(_one_line(e, where)) from None


def embedding_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean over the batch of the distance between (B, C) embeddings: squared error per
    dimension (mse), 1 - cosine similarity (cosine), or their sum."""
    loss = torch.zeros((), device=student.device)
    if kind in ("mse", "mse+cosine"):
        loss = loss + F.mse_loss(student, teacher)
    if kind in ("cosine", "mse+cosine"):
        loss = loss + (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    return loss


def check_dtype(cfg: EncoderConfig, device: torch.device) -> None:
    """bf16 where the device has it (every CPU's autocast; a GPU that supports it)."""
    if cfg.dtype == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError(f"--set dtype=bf16: {torch.cuda.get_device_name(device)} has no bf16 "
                         "support; use dtype=fp32")


def hidden_state_loss(student: tuple, teacher: tuple, picks: list[int], mask: torch.Tensor,
                      proj: torch.nn.Module | None) -> torch.Tensor:
    """Mean over the student's layers i of the squared error per (real) token and dimension
    between its layer i's hidden states, projected to the teacher's width where `proj` is
    given, and the teacher's layer picks[i]'s; states as forward_hidden gives them (index 0
    the embeddings), in fp32."""
    m = mask.unsqueeze(-1).float()  # (B, T, 1)
    total = torch.zeros((), device=mask.device)
    for i, j in enumerate(picks):
        s, t = student[i + 1].float(), teacher[j + 1].float()
        s = proj(s) if proj is not None else s
        total = total + (((s - t) ** 2) * m).sum() / (m.sum() * t.shape[-1])
    return total / len(picks)


class _Trainable(torch.nn.Module):
    """The encoder body, plus a linear head over its embeddings when it learns labels and a
    projection to the teacher's width where the student learns the teacher's embeddings or
    hidden states at another width (trained with it, saved in the resumable state alone, not
    with the student). `picks`: the teacher layer each student layer's hidden states learn."""

    def __init__(self, body: torch.nn.Module, n_labels: int = 0,
                 teacher_width: int | None = None, picks: list[int] | None = None):
        super().__init__()
        self.body = body
        width = int(body.config.hidden_size)
        self.head = torch.nn.Linear(width, n_labels) if n_labels else None
        self.proj = (torch.nn.Linear(width, teacher_width)
                     if teacher_width and teacher_width != width else None)
        self.picks = picks or []


def _trainable(cfg: EncoderConfig, enc: Encoder, targets, live: Encoder | None) -> _Trainable:
    """The _Trainable of a run: its label head (embedding, labels), and its projection where
    the teacher's embeddings (embedding, kd) or hidden states (`live`) are wider or narrower."""
    from models.encoder import layer_picks

    n_labels = (int(targets.max()) + 1 if cfg.mode == "labels" and enc.task == "embedding"
                else 0)
    theirs, picks = None, None
    if cfg.mode == "kd" and enc.task == "embedding" and cfg.loss != "margin-mse":
        theirs = int(targets.shape[-1])
    if live is not None:
        theirs = int(live.module.config.hidden_size)
        picks = layer_picks(int(live.module.config.num_hidden_layers),
                            int(enc.module.config.num_hidden_layers))
    return _Trainable(enc.module, n_labels, theirs, picks)


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """The texts of `step`: a fresh permutation of all n per epoch, a function of (seed, step)
    alone, so a resumed run draws exactly the batches of an uninterrupted one."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[k * batch_size:(k + 1) * batch_size]


def classification_kd_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                           temperature: float, alpha: float) -> torch.Tensor:
    """alpha x the batch mean of T^2 KL(teacher || student) at temperature T, plus (1 - alpha)
    x cross-entropy averaged over the rows whose label is not losses.IGNORE_INDEX."""
    from .losses import cross_entropy, kd_loss

    every_row = torch.zeros(len(student), dtype=torch.long, device=student.device)
    kd = kd_loss(student, teacher, every_row, temperature=temperature)
    ce = cross_entropy(student, labels)
    return alpha * kd.mean() + (1 - alpha) * ce.mean()


def margin_mse(positive: torch.Tensor, negative: torch.Tensor,
               teacher_margin: torch.Tensor) -> torch.Tensor:
    """Margin-MSE: the batch mean of (student's score(q, p) - score(q, n) - the teacher's)^2,
    from (B,) scores of each triple's positive and negative pair and (B,) teacher margins."""
    return F.mse_loss(positive - negative, teacher_margin.to(positive.dtype))


def _forward(cfg: EncoderConfig, enc: Encoder, inputs: dict, hidden: bool = False):
    """enc.forward_hidden under the run's autocast; its output in fp32."""
    from .trainer import autocast_for

    with autocast_for(cfg)(inputs["input_ids"].device.type):
        out, states = enc.forward_hidden(inputs, hidden)
    return out.float(), states


def _step_loss(cfg: EncoderConfig, enc: Encoder, net: _Trainable, texts: list, target,
               teacher: Encoder | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The loss of one batch for the encoder's task and the run's mode (see the module doc),
    plus hidden_weight x the hidden-state loss where a teacher is given; and that hidden-state
    loss (None without)."""
    if cfg.loss == "margin-mse" and cfg.mode == "kd":  # (query, positive, negative) triples
        pos = _forward(cfg, enc, enc.batch([(q, p) for q, p, _ in texts]))[0][:, 0]
        neg = _forward(cfg, enc, enc.batch([(q, n) for q, _, n in texts]))[0][:, 0]
        return margin_mse(pos, neg, target), None
    inputs = enc.batch(texts)
    out, states = _forward(cfg, enc, inputs, teacher is not None)  # embeddings or logits
    loss = _output_loss(cfg, enc, net, out, target)
    if teacher is None:
        return loss, None
    with torch.no_grad():
        theirs = _forward(cfg, teacher, inputs, True)[1]
    hidden = hidden_state_loss(states, theirs, net.picks, inputs["attention_mask"], net.proj)
    return loss + cfg.hidden_weight * hidden, hidden


def _output_loss(cfg: EncoderConfig, enc: Encoder, net: _Trainable, out: torch.Tensor,
                 target) -> torch.Tensor:
    """The loss of a batch's (B, C) embeddings or (B, L) logits against its targets."""
    if enc.task == "cross-encoder":  # labels: relevances in [0, 1], the score's sigmoid
        target = target.to(out.dtype)
        return (F.mse_loss(out[:, 0], target) if cfg.mode == "kd" else
                F.binary_cross_entropy_with_logits(out[:, 0], target))
    if cfg.mode == "labels":
        return F.cross_entropy(net.head(out) if net.head is not None else out, target)
    if enc.task == "classification":
        return classification_kd_loss(out, target["teacher"], target["labels"],
                                      cfg.temperature, cfg.alpha)
    return embedding_loss(net.proj(out) if net.proj is not None else out, target, cfg.loss)


def _each(targets, fn):
    """`fn` applied to a tensor of targets, or to each tensor of a dict of them."""
    return {k: fn(v) for k, v in targets.items()} if isinstance(targets, dict) else fn(targets)


def _resume(out: Path, net: _Trainable, opt, cfg: EncoderConfig, data_fp: str):
    state = read_state(out / STATE_FILE, next(net.parameters()).device)
    run_only = ("device", "threads")
    saved = {**EncoderConfig().model_dump(), **state["config"]}  # a setting added since: its
    same = {k: v for k, v in saved.items() if k not in run_only} == {  # default then
        k: v for k, v in cfg.model_dump().items() if k not in run_only}
    if not same or state["data_fingerprint"] != data_fp:
        raise InputError(f"{out}: the saved run used other settings or data; --resume needs the "
                         "same ones (or choose a new --out)")
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"].cpu())
    return int(state["step"]), list(state.get("history", []))


def _train_step(cfg: EncoderConfig, enc: Encoder, net: _Trainable, opt, texts: list,
                targets, step: int, teacher: Encoder | None = None) -> dict:
    """One optimizer step on the batch of `step`; its loss (and hidden-state loss)."""
    idx = batch_indices(len(texts), cfg.batch_size, step, cfg.seed)
    for group in opt.param_groups:
        group["lr"] = lr_at(cfg.schedule(), step)
    batch = _each(targets, lambda t: t[idx])
    loss, hidden = _step_loss(cfg, enc, net, [texts[i] for i in idx], batch, teacher)
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"loss became {loss.item()} at step {step}: stopped; the last "
                               "good checkpoint is kept (try a lower lr)")
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return {"train_loss": loss.item(), **({} if hidden is None else
                                           {"hidden_loss": hidden.item()})}


def train_encoder(cfg: EncoderConfig, enc: Encoder, texts: list, targets, out: str | Path,
                  data_fp: str, resume: bool = False, progress: Progress | None = None,
                  teacher: Encoder | None = None) -> dict:
    """Train `enc` in place on `texts` ((text, pair) tuples for a cross-encoder) toward
    `targets` and save it into `out`; returns what metrics.json records. Targets, one row per
    text: kd: the teacher's (N, C) embeddings, (N,) scores (cross-encoder; with loss
    margin-mse, texts are (query, positive, negative) triples and targets the teacher's (N,)
    margins), or for a
    classifier {"teacher": (N, L) logits, "labels": (N,) ids, losses.IGNORE_INDEX where none};
    labels: (N,) class ids, or (N,) relevances in [0, 1] for a cross-encoder. With kd and
    hidden_weight > 0, `teacher` (whose layers the student's were taken from, or are evenly
    mapped onto) gives its hidden states live, without gradients, on each batch."""
    out = Path(out)
    if (out / STATE_FILE).exists() and not resume:
        raise InputError(f"{out} holds a training run: pass --resume or choose another --out")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    check_dtype(cfg, device)
    torch.manual_seed(cfg.seed)
    live = teacher if cfg.mode == "kd" and cfg.hidden_weight > 0 else None
    if cfg.mode == "kd" and cfg.hidden_weight > 0 and teacher is None:
        raise InputError("--set hidden_weight: the hidden-state loss needs the teacher")
    net = _trainable(cfg, enc, targets, live).to(device)
    if live is not None:
        live.module.to(device).eval()
    opt = make_optimizer(cfg.schedule(), net)
    step, history = 0, []
    if resume and (out / STATE_FILE).exists():
        step, history = _resume(out, net, opt, cfg, data_fp)
    t0, targets = time.perf_counter(), _each(targets, lambda t: t.to(device))
    net.train()
    with StopFlag() as flag:  # Ctrl-C: a checkpoint at the end of the step, then stop
        while step < cfg.steps:
            losses = _train_step(cfg, enc, net, opt, texts, targets, step, live)
            step += 1
            history.append({"step": step, **losses})
            if progress:
                progress(step, cfg.steps, losses["train_loss"])
            if step % cfg.ckpt_every == 0 or step == cfg.steps or flag.stop:
                save_state(out, net, opt, step, cfg, data_fp, history)
            if flag.stop:
                raise KeyboardInterrupt(f"stopped at step {step}; checkpoint saved")
    enc.module.eval()
    save_encoder(enc, out)
    return {"settings": cfg.model_dump(), "data_fingerprint": data_fp, "train_s":
            time.perf_counter() - t0, "steps": cfg.steps, "history": history[-50:],
            "params": sum(p.numel() for p in enc.module.parameters())}


def write_metrics(out: str | Path, metrics: dict) -> Path:
    return write_json_atomic(Path(out) / METRICS_FILE, metrics)
