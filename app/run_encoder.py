"""`roi run` on a sentence-embedding encoder (`task: embedding`, issue 19): what differs from a
causal LM's run, step by step; app/run.py keeps the steps and calls these.

    bench          the candidate students are the teacher shrunk to half and a third of its
                   layers (teacher-layer init), saved as hf: directories in RUN/bench/students/
    pilot          skipped: the encoder trainer has no pilot curves, the plan's retention is its
                   prior
    plan           names its retention metric: Spearman of pairwise similarities
    distill        the recommended student distilled by distill/encoder_pipeline.py on the
                   run's data, exported to ONNX fp32 + int8 (RUN/distill is an hf: directory)
    bench-student  hf:RUN/distill measured beside the teacher (ort-int8 through the embedding
                   quality gate, bench/gate.py)
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

STUDENTS_DIR = "students"  # under RUN/bench: the shrunk candidates, as hf: directories


def is_embedding(settings: dict) -> bool:
    return settings.get("task") == "embedding"


def student_layers(n_teacher: int) -> list[int]:
    """auto: half and a third of the teacher's layers (distinct, at least one, largest first)."""
    return sorted({max(1, n_teacher // 2), max(1, n_teacher // 3)}, reverse=True)


def candidate_students(teacher: str, bench_dir: Path) -> list[str]:
    """hf: specs of the teacher shrunk to student_layers, each saved once under bench_dir."""
    from models.encoder import Encoder, load_encoder, save_encoder, shrink
    from models.zoo import parse_spec

    enc = load_encoder(parse_spec(teacher).path)
    specs = []
    for n in student_layers(int(enc.module.config.num_hidden_layers)):
        out = bench_dir / STUDENTS_DIR / f"layers-{n}"
        if not (out / "config.json").is_file():
            module, _ = shrink(enc.module, n, "teacher-layers")
            save_encoder(Encoder(module, enc.tokenizer, enc.pooling, enc.max_len), out)
        specs.append(f"hf:{out.resolve()}")
    return specs


def pilot_skip_reason() -> str:
    return ("task embedding: the encoder trainer runs no pilots; the plan's retention is its "
            "prior")


def distill(settings: dict, plan: dict, out: Path, progress=None) -> dict:
    """The plan's recommended student (its layer count) distilled on the run's data, exported
    and measured; metrics.json gains the run's settings (which student, how many steps)."""
    from distill.encoder import make_encoder_config, write_metrics
    from distill.encoder_pipeline import distill_encoder, text_data
    from models.zoo import layer_count, parse_spec

    student = _recommended(plan)
    layers = layer_count(parse_spec(student))
    cfg = make_encoder_config({**settings["trainer"], "layers": layers}, "run config: trainer")
    metrics = distill_encoder(str(parse_spec(settings["teacher"]).path), out, cfg,
                              text_data(settings["data"], settings["text_field"]),
                              resume=True, progress=progress)
    metrics["settings"] = {"student": student, "steps": cfg.steps, "layers": layers}
    write_metrics(out, metrics)
    return metrics


def _recommended(plan: dict) -> str:
    from contracts.errors import InputError

    rec: Optional[dict] = plan.get("recommended")
    if not rec or not rec.get("model"):
        raise InputError("the plan recommends no student to distill "
                         f"({plan.get('no_recommendation_reason') or 'see plan/plan.json'})")
    return str(rec["model"])


def distilled_spec(out: Path) -> str:
    return f"hf:{out.resolve()}"
