"""The Distill result contract (DESIGN.md "Contracts"): metrics.json as `roi distill` writes it
(distill/pipeline.py `combine`), typed for its readers (the report). Every field is optional and
other keys are kept as they came: older runs, and other trainers, write fewer or more."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import model_validator

from .plan_sections import Num, Row


class EvalMetrics(Row):
    """One model's held-out test figures."""

    accuracy: Optional[Num] = None
    bits_per_byte: Optional[Num] = None
    perplexity: Optional[Num] = None
    tokens: Optional[Num] = None
    loss: Optional[Num] = None


class ExportCheck(Row):
    """How the student was exported to ONNX and how far its outputs drift from torch's."""

    method: Optional[str] = None
    rel_err: Optional[Num] = None


class DistillSettings(Row):
    """The settings the run trained with (distill.config.TrainConfig): those the readers
    use typed, the others kept as given."""

    student: Optional[str] = None
    steps: Optional[Num] = None
    kd_loss: Optional[str] = None
    temperature: Optional[Num] = None
    alpha: Optional[Num] = None


class EncoderExport(ExportCheck):
    """An encoder run's ONNX export (distill/encoder_export.py): the files written and each
    file's agreement with the teacher, by metric name (fp32 and int8)."""

    files: list[str] = []
    fp32: Optional[dict[str, Optional[Num]]] = None
    int8: Optional[dict[str, Optional[Num]]] = None


class DistillMetrics(Row):
    """metrics.json: each model's test figures, retention relative to the teacher, the KD gain
    over the no-KD baseline, and the settings the run trained with."""

    teacher: Optional[EvalMetrics] = None
    student: Optional[EvalMetrics] = None
    student_onnx: Optional[EvalMetrics] = None
    student_int8: Optional[EvalMetrics] = None
    baseline: Optional[EvalMetrics] = None
    retention_accuracy: Optional[Num] = None
    int8_retention_accuracy: Optional[Num] = None
    baseline_retention_accuracy: Optional[Num] = None
    kd_gain_accuracy: Optional[Num] = None
    # an encoder's run (distill/encoder_pipeline.py): retention in the task's own metric, named
    retention_metric: Optional[str] = None
    retention: Optional[Num] = None
    int8_retention: Optional[Num] = None
    baseline_retention: Optional[Num] = None
    student_params: Optional[int] = None
    init: Optional[str] = None
    export: Optional[ExportCheck] = None
    settings: DistillSettings = DistillSettings()
    wall_s: Optional[Num] = None
    # an encoder's run: each model's held-out figures by metric name (the teacher's: none)
    eval: dict[str, dict[str, Optional[Num]]] = {}
    onnx: Optional[EncoderExport] = None

    @model_validator(mode="before")
    @classmethod
    def _encoder_teacher(cls, data: Any) -> Any:
        """An encoder run's metrics.json (distill/encoder_pipeline.py) names its teacher's
        directory under `teacher` (its figures are under `eval`): kept as teacher_dir."""
        if isinstance(data, dict) and isinstance(data.get("teacher"), str):
            data = {**data, "teacher_dir": data["teacher"], "teacher": None}
        return data

    @property
    def steps(self) -> Any:
        """The training steps the run was set to (settings.steps), as written."""
        return self.settings.steps

    @property
    def trained(self) -> Any:
        """The student the run distilled (settings.student), as written."""
        return self.settings.student
