"""The models of a run: the teacher loaded (live, frozen, compiled), the student built from its
config and initialised (from the teacher's layers, pruned from it, or at random)."""

from __future__ import annotations

import logging

import numpy as np
import torch

from contracts.errors import InputError

from .config import TrainConfig
from .data import BatchSampler

log = logging.getLogger(__name__)


def hf_dir(teacher: str) -> str:
    """The directory of a hf: teacher (hf:DIR, or a model id's snapshot in the local cache)."""
    from models.zoo import parse_spec

    return parse_spec(teacher).target


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
