"""Pilot distillations (`roi pilot`): short runs whose points are the results of whole runs.

Under the wsd schedule (distill.trainer.lr_at) a run of N steps is, up to its final decay, the same
computation as any longer run: the same batches (BatchSampler draws by step), the same learning
rate. So one stable run per (student, mode), with a short decay branched off at N - decay_steps(N)
for each evaluation budget N and then thrown away, measures exactly what a whole run of N steps
ends at, for several N, at about 1.2x the cost of the longest. Every curve shares one
teacher-logit cache (the same batch stream), which the full distillation reuses afterwards.

Rows (the contracts.curves contract) are appended to DIR/pilot.csv as each curve finishes; a rerun
skips the curves already there (resume). Each curve's scalars (its stable run's train loss, lr and
tokens/s; each point's evaluation) go to DIR/scalars/<student>-<mode>/ (distill.scalars).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from contracts.curves import PILOT_FILE, read_curves, recipe_digest, recipe_settings, to_frame
from contracts.errors import InputError
from contracts.io import write_text_atomic
from models.corpus import build_splits, eval_windows, fingerprint

from .config import TrainConfig
from .scalars import Scalars, check_logger, open_writer
from .students import build_student, load_teacher
from .trainer import (
    _train_step,
    data_config,
    decay_steps,
    evaluate,
    lr_at,
    make_loss,
    make_optimizer,
    param_count,
    resolve_device,
    teacher_source,
    token_bytes_of,
)

log = logging.getLogger(__name__)
PilotProgress = Callable[[str, int, int], None]  # (curve label, steps done, steps in all)
SCALARS_DIR = "scalars"


def default_points(steps: int, warmup_steps: int, n: int = 5) -> list[int]:
    """Up to `n` budgets spaced by sqrt(2) up to `steps` (e.g. 24, 34, 48, 68, 96), each longer
    than the warm-up."""
    points = sorted({max(1, round(steps / 2 ** (i / 2))) for i in range(n)})
    return [p for p in points if p > warmup_steps] or [steps]


@dataclass
class Shared:
    """What every curve of one pilot shares: data, teacher, held-out windows, fingerprints."""

    data: dict
    data_fp: str
    token_bytes: Optional[np.ndarray]
    test: np.ndarray
    teacher: Optional[torch.nn.Module]
    teacher_metrics: dict
    teacher_hash: str
    teacher_params: int
    device: torch.device


def setup(cfg: TrainConfig) -> Shared:
    """Load the data and the teacher once; evaluate the teacher on the test windows."""
    from models.zoo import content_hash, parse_spec

    if cfg.data_mode != "corpus":
        raise InputError("roi pilot: pilots train on the corpus (data_mode: corpus); got "
                         f"data_mode {cfg.data_mode}")
    if not cfg.teacher or cfg.teacher == "none":
        raise InputError("roi pilot: needs a teacher (the trainer's teacher setting)")
    device = resolve_device(cfg.device)
    dcfg = data_config(cfg)
    data = build_splits(dcfg)
    token_bytes = token_bytes_of(dcfg)
    teacher = load_teacher(cfg.model_copy(update={"mode": "kd"})).to(device)
    test = eval_windows(data["test"], cfg.block_size, 4 * cfg.eval_windows)
    metrics = evaluate(teacher, test, token_bytes=token_bytes)
    return Shared(data, fingerprint(data), token_bytes, test, teacher, metrics,
                  content_hash(parse_spec(cfg.teacher)), param_count(teacher), device)


def curve(cfg: TrainConfig, points: Sequence[int], shared: Shared,
          progress: PilotProgress | None = None, stable_every: int = 0,
          scalars: Scalars | None = None) -> list[dict]:
    """One stable run of cfg.student in cfg.mode, with a decay branched off for each budget in
    `points`; returns a `final` row per point (and a `stable` row every `stable_every` steps).
    `scalars` gets the stable run's steps and each point's evaluation (distill.scalars)."""
    scalars = scalars or Scalars(None, cfg.log_every, 0)
    if cfg.schedule != "wsd":
        raise InputError("roi pilot: needs schedule wsd (a cosine run's points are not results "
                         f"of shorter runs); got {cfg.schedule}")
    points = sorted({int(p) for p in points})
    branch_at = {p - decay_steps(cfg.model_copy(update={"steps": p})): p for p in points}
    last = max(branch_at)
    torch.manual_seed(cfg.seed)
    teacher = shared.teacher if cfg.mode == "kd" else None
    # as train() builds it: the baseline too starts from the teacher's weights (init_source)
    student, _ = build_student(cfg, shared.teacher, shared.data["train"])
    student.to(shared.device)
    opt = make_optimizer(cfg, student)
    loss_fn = make_loss(cfg)
    target = teacher_source(cfg, teacher, loss_fn, shared.data_fp)
    from .data import BatchSampler

    sampler = BatchSampler(shared.data["train"], cfg.block_size, cfg.batch_size, cfg.seed)
    base = _row_base(cfg, student, shared)
    clock = _Clock(total=last + sum(p - s for s, p in branch_at.items()))
    rows = []

    def run(c: TrainConfig, s: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        loss, _ = _train_step(c, loss_fn, student, target, opt, sampler, s, shared.device)
        clock.done += 1
        if progress:
            progress(_label(cfg), clock.done, clock.total)
        return loss, time.perf_counter() - t0

    for step in range(last + 1):
        if step in branch_at:
            p = branch_at[step]
            saved = (copy.deepcopy(student.state_dict()), copy.deepcopy(opt.state_dict()))
            c = cfg.model_copy(update={"steps": p})
            for s in range(step, p):
                run(c, s)
            rows.append(_row(base, "final", p, student, shared, clock))
            scalars.evaluation(p, rows[-1])
            student.load_state_dict(saved[0])
            opt.load_state_dict(saved[1])
        if step == last:
            break
        if stable_every and step and step % stable_every == 0:
            rows.append(_row(base, "stable", step, student, shared, clock))
        stable = cfg.model_copy(update={"steps": 10 * last})  # far from any decay
        loss, took = run(stable, step)
        scalars.step(step + 1, loss, lr_at(stable, step), took)
        clock.stable_s += took
        clock.stable_steps += 1
    return rows


@dataclass
class _Clock:
    """A curve's progress: optimizer steps run (stable and decays), and the stable phase's
    timing (its tokens per second)."""

    total: int
    done: int = 0
    stable_s: float = 0.0
    stable_steps: int = 0
    t0: float = field(default_factory=time.perf_counter)


def _label(cfg: TrainConfig) -> str:
    return f"{cfg.student} {cfg.mode}"


def _row_base(cfg: TrainConfig, student, shared: Shared) -> dict:
    tm = shared.teacher_metrics
    return {"model": cfg.student, "mode": cfg.mode,
            "batch_tokens": cfg.batch_size * cfg.grad_accum * cfg.block_size,
            "params": int(student.num_params()), "teacher": cfg.teacher,
            "teacher_params": shared.teacher_params, "teacher_hash": shared.teacher_hash,
            "data_fingerprint": shared.data_fp, "teacher_loss": tm["loss"],
            "teacher_bits_per_byte": tm["bits_per_byte"], "teacher_accuracy": tm["accuracy"],
            "schedule": cfg.schedule, "lr": cfg.lr, "min_lr": cfg.min_lr,
            "warmup_steps": cfg.warmup_steps, "decay_fraction": cfg.decay_fraction,
            "recipe": recipe_digest(cfg.model_dump()),
            "settings": json.dumps(recipe_settings(cfg.model_dump()), sort_keys=True),
            "source": "pilot"}


def _row(base: dict, phase: str, step: int, student, shared: Shared, clock: _Clock) -> dict:
    m = evaluate(student, shared.test, token_bytes=shared.token_bytes)
    student.train()
    per_token = 6 * base["params"] + (2 * base["teacher_params"] if base["mode"] == "kd" else 0)
    tokens = step * base["batch_tokens"]
    speed = (clock.stable_steps * base["batch_tokens"] / clock.stable_s if clock.stable_s > 0
             else np.nan)
    return {**base, "phase": phase, "step": step, "tokens": tokens, "loss": m["loss"],
            "bits_per_byte": m["bits_per_byte"], "accuracy": m["accuracy"],
            "eval_tokens": m["tokens"], "train_flops": float(per_token * tokens),
            "pilot_flops": float(per_token * clock.done * base["batch_tokens"]),
            "wall_s": time.perf_counter() - clock.t0, "tokens_per_s": speed}


def pilot(cfg: TrainConfig, students: Sequence[str], out: str | Path, *,
          steps: int, points: Sequence[int] | None = None, modes: Sequence[str] = ("kd", "ce"),
          stable_every: int = 0, progress: PilotProgress | None = None) -> pd.DataFrame:
    """Pilot curves of every student in every mode into DIR/pilot.csv (resumable by curve)."""
    out = Path(out)
    points = sorted(set(points)) if points else default_points(steps, cfg.warmup_steps)
    check_logger(cfg.logger)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    path = out / PILOT_FILE
    have = read_curves(path) if path.is_file() else to_frame([])
    shared = setup(cfg)
    frames = [have]
    for student in students:
        for mode in modes:
            c = cfg.model_copy(update={"student": student, "mode": mode, "steps": max(points)})
            if _finished(have, c, points, shared):
                log.info("pilot %s: finished earlier, skipped", _label(c))
                continue
            with contextlib.closing(curve_scalars(c, out)) as scalars:
                frames.append(to_frame(curve(c, points, shared, progress, stable_every,
                                             scalars)))
            write_text_atomic(path, pd.concat(frames, ignore_index=True).to_csv(index=False))
    return read_curves(path)


def curve_scalars(cfg: TrainConfig, out: Path) -> Scalars:
    """A curve's scalars in OUT/scalars/<student>-<mode>/ (a curve that did not finish is run
    again from its start, so what it logged before goes)."""
    where = out / SCALARS_DIR / re.sub(r"[^A-Za-z0-9.=-]+", "_", _label(cfg)).strip("_")
    where.mkdir(parents=True, exist_ok=True)
    tokens = cfg.batch_size * cfg.grad_accum * cfg.block_size
    return Scalars(open_writer(cfg.logger, where), cfg.log_every, tokens)


def _finished(have: pd.DataFrame, cfg: TrainConfig, points, shared: Shared) -> bool:
    if have.empty:
        return False
    mine = have[(have["model"] == cfg.student) & (have["mode"] == cfg.mode)
                & (have["phase"] == "final") & (have["recipe"] == recipe_digest(cfg.model_dump()))
                & (have["teacher_hash"] == shared.teacher_hash)
                & (have["data_fingerprint"] == shared.data_fp)]
    return set(int(s) for s in mine["step"]) >= set(points)
