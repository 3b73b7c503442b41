"""The Distill result contract (contracts/distill_result.py): metrics.json typed for the report;
other keys kept; a metrics.json of the wrong types is one line naming it."""

import json
import re

import pytest

from contracts.distill_result import DistillMetrics
from contracts.errors import InputError
from reports.report import build_files

from .plan_helpers import FIXTURE, old_plan_bytes

METRICS = FIXTURE.parent / "distill_metrics.json"


def test_metrics_json_reads_typed_and_keeps_the_rest():
    m = DistillMetrics.model_validate(json.loads(METRICS.read_text()))
    assert m.trained == "builtin:student-10x" and m.steps == 600
    assert 0 < m.student.accuracy < m.teacher.accuracy
    assert m.retention_accuracy == pytest.approx(m.student.accuracy / m.teacher.accuracy)
    assert m.export.method and m.student_params > 0
    assert "history" in m.model_extra  # not typed, kept


def test_a_metrics_file_of_the_wrong_types_is_named(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_bytes(old_plan_bytes("v1-measured"))
    bad = tmp_path / "metrics.json"
    bad.write_text(json.dumps({**json.loads(METRICS.read_text()), "retention_accuracy": "high"}))
    with pytest.raises(InputError, match=rf"{re.escape(str(plan))}: its files .*"
                                         rf"{re.escape(str(bad))}.* cannot be rendered") as e:
        build_files(plan, metrics=bad)
    assert "\n" not in str(e.value) and "retention_accuracy" in str(e.value)
    assert DistillMetrics.model_validate({}).student is None  # an empty record is no error


def test_an_encoder_runs_metrics_name_their_teacher_directory():
    """distill/encoder_pipeline.py writes the teacher's directory under `teacher` (its figures
    under `eval`): read, not refused as damaged."""
    from contracts.distill_result import DistillMetrics

    m = DistillMetrics.model_validate({"teacher": "/x/teacher", "retention_metric": "spearman",
                                       "retention": 0.97, "eval": {"student": {"spearman": 0.97}}})
    assert m.teacher is None and m.teacher_dir == "/x/teacher" and m.retention == 0.97


def test_settings_eval_and_the_encoders_export_are_typed():
    """Issue 17: the report reads settings, eval and onnx as attributes, other keys kept."""
    from contracts.distill_result import DistillSettings, EncoderExport

    m = DistillMetrics.model_validate(json.loads(METRICS.read_text()))
    assert isinstance(m.settings, DistillSettings) and m.settings.kd_loss
    assert m.settings.temperature > 0 and "lr" in m.settings.model_extra
    enc = DistillMetrics.model_validate({
        "teacher": "/x/t", "eval": {"teacher": {}, "student": {"spearman": 0.97}},
        "onnx": {"method": "torchscript", "rel_err": 1e-6, "files": ["student.onnx"],
                 "fp32": {"spearman": 0.96}, "int8": {"spearman": 0.95}}})
    assert isinstance(enc.onnx, EncoderExport) and enc.onnx.int8 == {"spearman": 0.95}
    assert enc.eval["student"]["spearman"] == 0.97 and enc.settings.steps is None
    with pytest.raises(ValueError, match="onnx.fp32"):
        DistillMetrics.model_validate({"onnx": {"fp32": "good"}})
