"""`roi distill`: from a plan to a measured student.

Gate on the plan's decision, train the recommended student with KD and a no-KD baseline of the
same size and steps, export the student to ONNX (verified) and int8, and measure retention on the
held-out split for torch, ONNX fp32 and ONNX int8. Everything lands in one directory, which is
itself a `ckpt:DIR` that bench measures:

    DIR/config.json, model.safetensors      the distilled student
    DIR/student.onnx, student.int8.onnx     its exports (a whole-window forward)
    DIR/student.decode.onnx, .decode.int8.onnx  the decoding graph with a KV cache
    DIR/metrics.json                        teacher, student, baseline, int8; retention; wall time
    DIR/baseline/                           the no-KD baseline run
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import yaml

from contracts.config import read_yaml, safe_load
from contracts.errors import InputError
from contracts.io import check_out_dir, check_unlocked, dir_lock, has_content, write_json_atomic

from .config import TrainConfig, load_config
from .trainer import METRICS_FILE, DistillResult, Progress, train

log = logging.getLogger(__name__)
BASELINE_DIR = "baseline"


def read_plan(path: str | Path) -> dict:
    """plan.yaml as data, checked for what the trainer needs (decision and trainer section)."""
    path = Path(path)
    plan = read_yaml(path, "plan")  # missing, binary, malformed or duplicate keys: one line
    if not isinstance(plan, dict):
        raise InputError(f"{path}: a plan is a mapping with decision and trainer sections")
    decision = plan.get("decision")
    if not isinstance(decision, dict) or not isinstance(decision.get("go"), bool):
        raise InputError(f"{path}: decision.go must be true or false")
    if not isinstance(plan.get("trainer"), dict):
        raise InputError(f"{path}: trainer must be a mapping of trainer settings")
    return plan


def gate(plan: dict, force: bool) -> None:
    """Refuse a no-go plan unless forced, quoting the decision's reasons."""
    if plan["decision"]["go"] or force:
        return
    reasons = "; ".join(str(r) for r in plan["decision"].get("reasons") or []) or "no reason given"
    raise InputError(f"the plan says no-go ({reasons}); pass --force to distill anyway")


def parse_overrides(items: list[str]) -> dict:
    """`key=value` pairs; values are YAML scalars (numbers, booleans, strings), never code."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set expects key=value, got {item!r}")
        try:
            out[key.strip()] = safe_load(raw)
        except yaml.YAMLError:
            raise InputError(f"--set {key}: cannot read value {raw!r}") from None
    return out


def settings_from_plan(plan: dict, config_file: str | None, overrides: dict) -> TrainConfig:
    """Plan's trainer section, then a YAML file's settings, then --set overrides."""
    file_values = load_config(config_file).model_dump(exclude_unset=True) if config_file else {}
    trainer = {k: v for k, v in plan["trainer"].items() if k != "note"}  # the planner's prose
    values = {**trainer, **file_values, **overrides}
    if str(values.get("teacher") or "").startswith("config:"):
        note = plan["trainer"].get("note") or "a config: teacher has no weights"
        raise InputError(f"the plan's teacher {values['teacher']} is an architecture, not a "
                         f"model ({note}): pass the checkpoint, e.g. --set teacher=hf:DIR")
    return load_config(None, values)


def distill_from_plan(plan_path: str | Path, out: str | Path, *, resume: bool = False,
                      force: bool = False, config_file: str | None = None,
                      overrides: dict | None = None,
                      progress: Progress | None = None) -> DistillResult:
    plan = read_plan(plan_path)
    gate(plan, force)
    cfg = settings_from_plan(plan, config_file, overrides or {})
    return distill(cfg, out, resume=resume, progress=progress)


def distill(cfg: TrainConfig, out: str | Path, *, resume: bool = False,
            progress: Progress | None = None) -> DistillResult:
    """Train student and baseline, export, and write the combined metrics.json."""
    from models.zoo import parse_spec

    out = check_out_dir(out)
    if not cfg.teacher or (cfg.mode != "kd" and cfg.data_mode == "corpus"):
        raise InputError("distill needs a teacher and mode: kd, or data_mode: generated/mixed "
                         "(sequence-level KD); the no-KD baseline is trained too")
    parse_spec(cfg.teacher)  # a missing teacher path fails here, before anything is written
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 holds the directory's lock
        return _distill(cfg, out, resume, progress)
    check_unlocked(out)  # a distill running there: name it, not the files it is writing
    if has_content(out) and not resume:  # refused before the lock file lands in it
        raise InputError(f"{out} is not empty: pass --resume or choose another --out")
    with dir_lock(out):  # a second writer on the same --out is refused, naming this one
        if has_content(out) and not resume:
            raise InputError(f"{out} is not empty: pass --resume or choose another --out")
        return _distill(cfg, out, resume, progress)


def _distill(cfg: TrainConfig, out: Path, resume: bool, progress: Progress | None
             ) -> DistillResult:
    t0 = time.perf_counter()
    student = train(cfg, out, resume=resume, progress=progress)
    baseline_cfg = cfg.model_copy(update={"mode": "ce", "data_mode": "corpus"})  # no teacher
    baseline = train(baseline_cfg, out / BASELINE_DIR, resume=resume, progress=progress)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 exports and reports
        return DistillResult(out, {})
    from .export import export_and_evaluate

    exported = export_and_evaluate(out, cfg)
    metrics = combine(student.metrics, baseline.metrics, exported, time.perf_counter() - t0)
    write_json_atomic(out / METRICS_FILE, metrics)
    return DistillResult(out, metrics)


def combine(student: dict, baseline: dict, exported: dict, wall_s: float) -> dict:
    """One metrics record: absolute figures per model, retention relative to the teacher."""
    teacher = student["teacher"]

    def retention(m: dict) -> float | None:  # None: a teacher of accuracy 0 (untrained) has none
        return m["accuracy"] / teacher["accuracy"] if teacher["accuracy"] else None

    return {
        "teacher": teacher,
        "student": student["student"],
        "baseline": baseline["student"],
        "student_onnx": exported["fp32"],
        "student_int8": exported["int8"],
        "retention_accuracy": retention(student["student"]),
        "baseline_retention_accuracy": retention(baseline["student"]),
        "int8_retention_accuracy": retention(exported["int8"]),
        "kd_gain_accuracy": student["student"]["accuracy"] - baseline["student"]["accuracy"],
        "student_params": student["student_params"],
        "teacher_params": student.get("teacher_params"),  # absent from runs before issue 18
        "init": student["init"],
        "export": exported["export"],
        "settings": student["settings"],
        "data_fingerprint": student["data_fingerprint"],
        "teacher_hash": student.get("teacher_hash"),
        "history": {"student": student["history"], "baseline": baseline["history"]},
        "speed": {"student": student.get("speed"), "baseline": baseline.get("speed")},
        "wall_s": wall_s,
    }
