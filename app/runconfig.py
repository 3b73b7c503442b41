"""`roi run`'s configuration: one YAML file of data (read with yaml.safe_load), typed here.

    teacher: builtin:teacher                   # model specs as `roi bench` takes them
    students: [builtin:student-5x, builtin:student-10x]     # or auto
    scenarios: [real-time-api, my-scenario.yaml]            # presets or scenario files
    hardware: [my-hardware.yaml]                            # extra catalog rows
    retention_threshold: 0.95
    portfolio: false                                        # true: deployed together (totals)
    bench: {backends: [torch-eager, ort-int8], batch_sizes: [1, 8], rounds: 1}
    trainer: {steps: 300}                                   # distill.config.TrainConfig fields

An encoder (task: embedding, issue 19): the teacher is an hf: sentence-embedding encoder, the
students the teacher shrunk to fewer of its layers (auto: half and a third of them), the data
the user's own text, and retention the Spearman correlation of pairwise similarities:

    task: embedding
    teacher: hf:my-encoder
    data: texts.jsonl                                       # or stdlib (docstrings, labeled)
    text_field: text
    trainer: {steps: 300}                                   # distill.encoder.EncoderConfig

Every field is optional; what is left out takes the profile's value (`roi run`'s default
budget, or `--quick`'s smaller one). Relative paths in the file (scenario and hardware files,
hf:/ckpt:/onnx: model directories) are read relative to the file. An unknown key or a bad value
is one InputError line naming the field, what is allowed and what was received.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationInfo,
                      field_validator)

from contracts.config import read_yaml, validate
from contracts.defaults import (BACKENDS, ENGINEERING_USD_PER_WEEK, ENGINEERING_USD_PER_WEEK_HELP,
                                 ENGINEERING_WEEKS, ENGINEERING_WEEKS_HELP, RETENTION_THRESHOLD,
                                 RETENTION_THRESHOLD_HELP, SCENARIO_PRESETS, TRAINING_HARDWARE,
                                 TRAINING_HARDWARE_HELP)
from contracts.errors import InputError

PROFILES = ("default", "quick")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BenchSettings(_Strict):
    """How the teacher and students are measured (`roi bench`'s options). Left out: the
    profile's value (see BENCH_PROFILES)."""

    backends: Optional[list[str]] = Field(None, description="torch-eager, torch-eager-bf16, "
                                          "ort-fp32, ort-int8, or another key of "
                                          "contracts.defaults.VARIANTS.")
    batch_sizes: Optional[list[PositiveInt]] = Field(None, description="Batch sizes to measure.")
    seq_lens: Optional[list[PositiveInt]] = Field(None, description="Sequence lengths (tokens).")
    threads: Optional[list[PositiveInt]] = Field(None, description="Intra-op thread counts "
                                                 "to sweep [default: physical cores].")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="cpu, cuda or auto "
                                                   "(cuda when a GPU is visible).")
    rounds: Optional[PositiveInt] = Field(None, description="Repeat the sweep and pool each "
                                          "row's samples across rounds, so machine drift "
                                          "averages out.")
    quick: Optional[bool] = Field(None, description="Fewer calls per configuration "
                                  "(>= 10 calls, >= 0.5 s).")
    isolate: bool = Field(True, description="A fresh process per configuration (memory peaks "
                          "do not mix).")
    timeout_s: Optional[PositiveFloat] = Field(None, description="Per-configuration time "
                                               "limit (s).")
    memory_budget_mb: Optional[PositiveFloat] = Field(None, description="Skip configurations "
                                                      "estimated above this and stop any that "
                                                      "exceed it.")

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        from contracts.defaults import VARIANTS

        if v is not None and (v == [] or any(b not in VARIANTS for b in v)):
            raise ValueError(f"must be among {', '.join(VARIANTS)}")
        return v


class PilotSettings(_Strict):
    """Pilot distillations before the plan (`roi pilot`): every builtin student, KD and the
    no-KD baseline, whose curves the plan forecasts retention from."""

    enabled: bool = Field(True, description="false: no pilots; the plan's retention is the "
                          "prior, whatever the budget.")
    steps: Optional[PositiveInt] = Field(None, description="The longest pilot budget, steps "
                                         "[default: the profile's].")
    points: Optional[list[PositiveInt]] = Field(None, description="Budgets (steps) whose "
                                                "results the pilot measures [default: up to 5, "
                                                "sqrt(2) apart up to the longest, each longer "
                                                "than the warm-up].")
    modes: list[Literal["kd", "ce"]] = Field(["kd", "ce"], min_length=1, description="kd "
                                             "(distilled), ce (the no-KD baseline), or both.")


class Economics(_Strict):
    """The one-time cost of the project (`roi plan`'s options of the same names)."""

    engineering_weeks: float = Field(ENGINEERING_WEEKS, ge=0, description=ENGINEERING_WEEKS_HELP)
    engineering_usd_per_week: float = Field(ENGINEERING_USD_PER_WEEK, ge=0,
                                            description=ENGINEERING_USD_PER_WEEK_HELP)
    training_hardware: str = Field(TRAINING_HARDWARE, description=TRAINING_HARDWARE_HELP)
    training_hours: Optional[float] = Field(None, ge=0, description="Training time [default: "
                                            "estimated from FLOPs].")


class RunConfig(_Strict):
    """The question `roi run` answers: this teacher, these students, these scenarios."""

    task: Literal["lm", "embedding"] = Field("lm", description="lm: a causal language model "
                                             "(next-token accuracy); embedding: an hf: "
                                             "sentence encoder (Spearman of pairwise "
                                             "similarities).")
    data: str = Field("stdlib", description="task embedding: the texts to distill on, a data "
                      "file (.jsonl, .csv, .parquet, a datasets directory) or stdlib (the "
                      "standard library's docstrings).")
    text_field: str = Field("text", description="task embedding: the data file's text column.")
    teacher: str = Field("builtin:teacher", description="Teacher model spec: builtin:NAME, "
                         "hf:DIR, hf:ORG/NAME[@REVISION] (the local Hugging Face cache), "
                         "onnx:FILE or ckpt:DIR.")
    students: Union[Literal["auto"], list[str]] = Field(
        "auto", description="Student specs, or auto for builtin:student-5x,-10x,-20x,-50x.")
    scenarios: list[str] = Field(list(SCENARIO_PRESETS), min_length=1, description="Scenario "
                                 "presets or scenario YAML files.")
    hardware: list[str] = Field([], description="Hardware YAML files added to the catalog.")
    retention_threshold: float = Field(RETENTION_THRESHOLD, gt=0, le=1,
                                       description=RETENTION_THRESHOLD_HELP)
    require_benefit: bool = Field(True, description="Go only when the student saves money or "
                                  "meets a scenario the teacher cannot.")
    portfolio: bool = Field(False, description="The scenarios are one portfolio, deployed "
                            "together: the headline ROI is their total, labelled so [default: "
                            "each scenario is its own answer; the headline is the one where "
                            "the student saves most].")
    local_peak_gflops: Optional[PositiveFloat] = Field(None, description="Measured fp32 peak of "
                                                       "the machine the results come from, "
                                                       "GFLOP/s [default: the best rate a row "
                                                       "reached].")
    economics: Economics = Field(Economics(), description="One-time cost inputs.")
    distill: bool = Field(True, description="false: stop after the plan and its report.")
    force: bool = Field(False, description="Distill even when the plan says no-go.")
    bench: BenchSettings = Field(BenchSettings(), description="Measurement settings.")
    pilot: PilotSettings = Field(PilotSettings(), description="Pilot distillations.")
    trainer: dict[str, Any] = Field({}, description="Trainer settings (distill.config."
                                    "TrainConfig fields) over the plan's and the profile's.")

    @field_validator("scenarios", "hardware", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("trainer")
    @classmethod
    def _trainer_fields(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from pydantic import ValidationError

        from distill.config import TrainConfig  # pydantic only, no torch

        if info.data.get("task") == "embedding":
            return v  # the encoder trainer's settings: check() reads them (it imports torch)
        unknown = [k for k in v if k not in TrainConfig.model_fields]
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field; allowed fields: "
                             f"{', '.join(TrainConfig.model_fields)}")
        try:
            TrainConfig(**v)
        except ValidationError as e:
            err = e.errors()[0]
            raise ValueError(f"{'.'.join(map(str, err['loc']))}: "
                             f"{err['msg'].replace('Input should be', 'must be')}; got "
                             f"{err.get('input')!r}") from None
        return v


# The budget of each profile (measured on a 2-core CPU; README "roi run"): what `roi run` does
# when the config leaves a setting out. Both time each configuration briefly (`roi bench
# --quick`: >= 10 calls, >= 0.5 s; full timing of batch 1 and 8 alone takes 3-4 minutes here);
# the default adds batch 8. The planner's own trainer default (1500 steps) is the full
# distillation, ~30 minutes here; a run proves the plan with a smaller one.
BENCH_PROFILES = {
    "default": {"backends": list(BACKENDS), "batch_sizes": [1, 8],
                "seq_lens": [128], "rounds": 1, "quick": True},
    "quick": {"backends": list(BACKENDS), "batch_sizes": [1],
              "seq_lens": [128], "rounds": 1, "quick": True},
}
# Pilots: the longest budget; with the trainer's warm-up of 20 steps the default measures 23,
# 32, 45 and 64 steps (four points) for each student and mode.
PILOT_PROFILES = {"default": {"steps": 64}, "quick": {"steps": 24}}
TRAINER_PROFILES = {
    "default": {"steps": 160, "warmup_steps": 20, "eval_every": 40, "ckpt_every": 40,
                "eval_windows": 32},
    "quick": {"steps": 16, "warmup_steps": 4, "eval_every": 8, "ckpt_every": 8,
              "eval_windows": 8},
}

# The encoder trainer's run budget (task: embedding): 6 -> 3 layers kept 0.98 Spearman after
# 150 steps on the stdlib docstrings (BENCHMARKS.md, issue 19); one torch thread trained ~3x
# faster than two on the shared 2-core machine.
ENCODER_TRAINER_PROFILES = {
    "default": {"steps": 150, "warmup_steps": 15, "ckpt_every": 50, "threads": 1},
    "quick": {"steps": 8, "warmup_steps": 2, "ckpt_every": 4, "batch_size": 8, "threads": 1},
}


def load_run_config(path: str | Path | None) -> RunConfig:
    """The config in a YAML file (None: every default), validated; paths resolved against the
    file's directory."""
    if path is None:
        return RunConfig()
    data = read_yaml(path, "run config")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: a run config is a mapping of settings (teacher, students, "
                         f"scenarios, ...); got {type(data).__name__}")
    cfg = validate(RunConfig, data, f"{path}: ")
    return relative_to(cfg, Path(path).resolve().parent)


def relative_to(cfg: RunConfig, base: Path) -> RunConfig:
    """Relative file paths of the config made absolute against `base`."""
    def path(p: str) -> str:
        return p if Path(p).is_absolute() else str(base / p)

    def spec(s: str) -> str:
        kind, sep, target = s.partition(":")
        return f"{kind}:{path(target)}" if sep and kind in ("hf", "ckpt", "onnx") else s

    def scenario(s: str) -> str:  # a preset name stays a name; a file name becomes a path
        looks_like_file = Path(s).suffix in (".yaml", ".yml") or "/" in s
        return path(s) if looks_like_file and s not in SCENARIO_PRESETS else s

    scenarios = [scenario(s) for s in cfg.scenarios]
    students = cfg.students if cfg.students == "auto" else [spec(s) for s in cfg.students]
    return cfg.model_copy(update={"teacher": spec(cfg.teacher), "students": students,
                                  "scenarios": scenarios,
                                  "hardware": [path(h) for h in cfg.hardware],
                                  "data": cfg.data if cfg.data == "stdlib" else path(cfg.data)})


def resolved(cfg: RunConfig, profile: str) -> dict:
    """The settings a run uses: the config over the profile's budget, as plain data (this is
    RUN/run.yaml, and a resumed run must match it)."""
    if profile not in PROFILES:
        raise InputError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    doc = cfg.model_dump(mode="json")
    bench = {k: v for k, v in doc["bench"].items() if v is not None}
    doc["bench"] = {**BENCH_PROFILES[profile], **bench}
    trainer = ENCODER_TRAINER_PROFILES if cfg.task == "embedding" else TRAINER_PROFILES
    doc["trainer"] = {**trainer[profile], **cfg.trainer}
    pilot = {k: v for k, v in doc["pilot"].items() if v is not None}
    doc["pilot"] = {**PILOT_PROFILES[profile], **pilot}
    return {"profile": profile, **doc}


def check(doc: dict) -> None:
    """Everything that can be checked before a run writes anything: scenarios and hardware
    files, model specs, trainer settings, and that the trainer can distill these models."""
    from models.zoo import parse_spec, parse_students

    from roi.hardware import load_catalog
    from roi.planner import TRAINER_DEFAULTS
    from roi.scenarios import load_scenarios

    catalog = load_catalog(doc["hardware"])
    for s in doc["scenarios"]:
        load_scenarios(s, catalog)
    catalog.get(doc["economics"]["training_hardware"])
    teacher = parse_spec(doc["teacher"])
    students = parse_students(doc["students"])
    if doc["task"] == "embedding":
        return check_embedding(doc, teacher)
    if not [s for s in students if s.spec != teacher.spec]:
        raise InputError("students: name at least one student other than the teacher")
    if not doc["distill"]:
        return
    from distill.config import make_config  # pydantic only, no torch

    make_config({**TRAINER_DEFAULTS, "teacher": teacher.spec, "student": students[0].spec,
                 **doc["trainer"]}, "run config: trainer")
    if teacher.kind == "onnx":
        raise InputError(f"teacher {teacher.spec}: the trainer needs the teacher's weights "
                         "(builtin, ckpt or hf); set `distill: false` to bench, plan and report")
    other = [s.spec for s in students if s.kind != "builtin"]
    if other:
        raise InputError(f"students {', '.join(other)}: the trainer trains builtin "
                         "architectures only; set `distill: false` to bench, plan and report")


def check_embedding(doc: dict, teacher) -> None:
    """task embedding: students auto, the encoder trainer's settings, the data, and an hf:
    encoder teacher with layers to spare, all before anything is written."""
    from distill.encoder import make_encoder_config
    from distill.encoder_pipeline import text_data
    from models.encoder import layer_picks, load_encoder

    if doc["students"] != "auto":
        raise InputError("students: task embedding takes auto (the teacher shrunk to half and "
                         f"a third of its layers); got {doc['students']!r}")
    make_encoder_config(doc["trainer"], "run config: trainer")
    if doc["data"] != "stdlib":
        text_data(doc["data"], doc["text_field"])
    if teacher.kind != "hf":
        raise InputError(f"teacher {teacher.spec}: task embedding needs an hf: sentence "
                         "encoder (hf:DIR)")
    layers = int(load_encoder(teacher.path).module.config.num_hidden_layers)
    layer_picks(layers, max(1, layers // 2))
