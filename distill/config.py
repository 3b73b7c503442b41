"""Trainer settings: one typed config, every field documented where it is declared.

Loaded from the plan's trainer section or a YAML file (data only) and overridable field by field;
a bad value is one InputError naming the field, what is allowed and what was received.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from contracts.config import check_names, read_yaml
from contracts.errors import InputError


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher: Optional[str] = Field("builtin:teacher", description="Teacher model spec; none "
                                   "for plain cross-entropy training (how the teacher is built).")
    student: str = Field("builtin:student-10x", description="Student architecture: a builtin "
                         "preset or builtin:k=v overrides.")
    init: Literal["teacher-layers", "teacher-pruned", "random"] = Field(
        "teacher-layers", description="teacher-layers: copy every k-th teacher layer "
        "(DistilBERT-style) where shapes allow; teacher-pruned: cut the student out of the "
        "teacher, keeping its most active channels, heads and neurons (Minitron-style; "
        "distill.prune); random otherwise.")
    mode: Literal["kd", "ce"] = Field("kd", description="kd: distill from the teacher; ce: "
                                      "labels only (the no-KD baseline, or teacher training).")
    kd_loss: Literal["forward_kl", "reverse_kl", "jsd"] = "forward_kl"
    temperature: float = Field(2.0, gt=0, description="Softmax temperature T of the KD term.")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the KD term; 1-alpha on CE.")
    beta: float = Field(0.5, ge=0, le=1, description="Generalized JSD interpolation (jsd only).")
    teacher_cache: bool = Field(True, description="Cache the teacher's top-k logits on disk "
                                "and reuse them across runs; false runs the teacher live (dense).")
    teacher_topk: int = Field(32, gt=0, description="k of the teacher-logit cache (the rest of "
                              "the teacher's probability is kept as one bucket).")
    teacher_cache_dir: Optional[str] = Field(None, description="Cache root [default: "
                                             "teacher-logits/ under $ROI_CACHE_DIR, else "
                                             "$XDG_CACHE_HOME/roi, else ~/.cache/roi].")
    steps: int = Field(2000, gt=0, description="Optimizer steps.")
    batch_size: int = Field(16, gt=0, description="Sequences per micro-batch.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    block_size: int = Field(256, gt=1, description="Tokens per training sequence.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate (AdamW).")
    min_lr: float = Field(1e-4, ge=0, description="Final learning rate (end of the decay).")
    warmup_steps: int = Field(100, ge=0, description="Linear warm-up steps (the same for every "
                              "budget, so runs of different lengths share their start).")
    schedule: Literal["wsd", "cosine"] = Field(
        "wsd", description="wsd: warm-up, constant lr, then a linear decay to min_lr over the "
        "last decay_fraction of the steps (a run of N steps is a run of M > N steps up to its "
        "decay, so a pilot's points are prefixes of the full run: roi pilot); cosine: decay "
        "from lr to min_lr over all steps after warm-up.")
    decay_fraction: float = Field(0.2, gt=0, le=1, description="wsd: share of the steps spent "
                                  "decaying (rounded to whole steps, at least one).")
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float = Field(1.0, gt=0, description="Max global gradient norm.")
    eval_every: int = Field(250, gt=0, description="Steps between validation evaluations.")
    eval_windows: int = Field(64, gt=0, description="Held-out windows per evaluation.")
    ckpt_every: int = Field(250, gt=0, description="Steps between resumable checkpoints.")
    log_every: int = Field(10, gt=0, description="Steps between the scalars written for "
                           "watching a run (train loss, lr, tokens/s; distill.scalars).")
    logger: Literal["auto", "tensorboard", "jsonl", "none"] = Field(
        "auto", description="Where the scalars go: tensorboard (OUT/tb/, needs the tensorboard "
        "extra), jsonl (OUT/scalars.jsonl), auto (tensorboard when installed, else jsonl), none.")
    seed: int = 0
    dtype: Literal["fp32", "bf16"] = Field("fp32", description="bf16 autocast (GPUs, and CPUs with "
                                           "native bf16; elsewhere it is slower).")
    compile: bool = Field(False, description="torch.compile the student's training forward, "
                          "the live teacher (its weights frozen in on CPU) and the loss (first "
                          "steps slower while it compiles).")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto (cuda "
                        "when a GPU is visible), cpu, cuda or cuda:N.")
    threads: Optional[int] = Field(None, gt=0, description="torch intra-op threads.")
    data_source: str = Field("stdlib", description="stdlib, pysrc:DIR (a tree of .py files), or "
                             "comma-separated .txt and data files (.jsonl, .csv, .parquet, a "
                             "datasets save_to_disk directory; one data file is tokenized in "
                             "batches into memory-mapped arrays, cached; parquet and datasets "
                             "need the data extra).")
    text_field: str = Field("text", min_length=1, description="The field (column) of each data "
                            "row that holds its document's text.")
    tokenizer: str = Field("auto", description="auto: a Hugging Face teacher's own tokenizer "
                           "when its directory has one, else bytes; bytes; or a tokenizer DIR.")
    val_fraction: float = Field(0.05, gt=0, lt=0.5)
    test_fraction: float = Field(0.05, gt=0, lt=0.5)
    # Teacher-generated data (issue 9): sequence-level KD is mode ce on generated data; mode kd
    # on it adds logit KD on the same windows. Evaluation stays on the corpus's held-out splits.
    data_mode: Literal["corpus", "generated", "mixed"] = Field(
        "corpus", description="Training windows from the corpus, from the teacher's samples "
        "(generated_data; the loss covers the tokens the teacher wrote), or both (mixed).")
    generated_fraction: float = Field(0.5, gt=0, lt=1, description="mixed: share of each "
                                      "batch's rows taken from the teacher's samples.")
    generated_data: Optional[str] = Field(None, validate_default=True, description="Directory "
                                          "written by roi generate (or its samples.jsonl).")

    @field_validator("generated_data")
    @classmethod
    def _generated_needed(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        mode = info.data.get("data_mode", "corpus")
        if mode != "corpus" and not v:
            raise ValueError(f"required when data_mode is generated or mixed (data_mode is "
                             f"{mode}): a directory written by roi generate")
        return v


def _one_line(e: ValidationError, where: str) -> str:
    err = e.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{where}: {field}: {err['msg']} (received {err.get('input')!r})"


def make_config(values: dict, where: str = "trainer settings") -> TrainConfig:
    check_names(values, where)
    try:
        return TrainConfig(**values)
    except ValidationError as e:
        raise InputError(_one_line(e, where)) from None


def load_config(path: str | Path | None, overrides: dict | None = None) -> TrainConfig:
    """Settings from a YAML file (or defaults), then field overrides; validated once."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        values = read_yaml(path, "config") or {}  # missing, binary, malformed: one line
        if not isinstance(values, dict):
            raise InputError(f"{path}: expected a mapping of trainer settings")
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return make_config(values, str(path or "trainer settings"))
