"""A teacher that teaches nothing (issue 18): an untrained teacher's distillation says so once,
plainly, in `roi distill`'s console and in the report, and a teacher of accuracy 0 is no
ZeroDivisionError in metrics.json or the console (retention is then simply not defined)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from distill.pipeline import combine
from reports.document import Bullets
from reports.achieved import achieved_section
from reports.inputs import Inputs
from app.console import print_distill_summary
from roi.sanity import distill_warnings

from contracts.plan import parse_plan

from .plan_helpers import old_plan_bytes
from .test_reports import METRICS

TRAINED = json.loads(METRICS.read_text())  # a real distillation: teacher 69%, baseline 52%


def untrained(teacher_accuracy: float = 0.01) -> dict:
    """The same figures under a teacher worse than the student trained without it."""
    m = copy.deepcopy(TRAINED)
    m["teacher"]["accuracy"] = teacher_accuracy
    m["retention_accuracy"] = (m["student"]["accuracy"] / teacher_accuracy
                               if teacher_accuracy else None)
    return m


def test_a_trained_teacher_gives_no_warning():
    assert distill_warnings(TRAINED) == []


def test_an_untrained_teacher_is_named_and_retention_above_100_percent_too():
    found = distill_warnings(untrained())
    assert len(found) == 2
    assert "teacher is no more accurate (1.0%) than the student trained without it (51.9%)" \
        in found[0] and "likely untrained" in found[0]
    assert found[1].startswith("retention 5331.4% is above 100%")


@pytest.mark.parametrize("metrics", [{}, {"teacher": [1]}, {"teacher": {"accuracy": "x"},
                                                           "retention_accuracy": "nan"}])
def test_missing_or_junk_figures_give_no_warning_and_no_error(metrics):
    assert distill_warnings(metrics) == []


def test_a_teacher_of_accuracy_zero_has_no_retention_instead_of_a_division_error(capsys,
                                                                                  tmp_path):
    m = untrained(0.0)
    parts = {"teacher": m["teacher"], "student": m["student"], "history": [],
             "student_params": 1, "init": "random", "settings": {}, "data_fingerprint": "d"}
    exported = {"fp32": m["student_onnx"], "int8": m["student_int8"], "export": {}}
    metrics = combine(parts, {"student": m["baseline"], "history": []}, exported, 1.0)
    assert metrics["retention_accuracy"] is None and metrics["int8_retention_accuracy"] is None
    print_distill_summary(metrics, tmp_path)
    out = capsys.readouterr().out
    assert out.count("warning: ") == 1 and "teacher is no more accurate (0.0%)" in out
    assert "student (KD)" in out


def _report_warnings(metrics: dict) -> list[str]:
    plan = parse_plan(json.loads(old_plan_bytes("v1-measured")))
    section = achieved_section(Inputs(plan, None, metrics), {})  # the report's achieved section
    return [item for b in section.blocks if isinstance(b, Bullets) for item in b.items]


def test_the_report_names_an_untrained_teacher_once():
    assert _report_warnings(untrained()) == distill_warnings(untrained())
    assert _report_warnings(TRAINED) == []


def smaller_teacher() -> dict:
    """A trained teacher's figures, its parameter count under its student's."""
    return {**TRAINED, "teacher_params": TRAINED["student_params"] // 10}


def test_a_teacher_smaller_than_its_student_is_named_once_in_console_and_report(capsys):
    found = distill_warnings(smaller_teacher())
    assert len(found) == 1 and found[0].startswith(
        "the teacher (143,328 parameters) is smaller than its student (1,433,280)")
    assert _report_warnings(smaller_teacher()) == found
    print_distill_summary({**smaller_teacher(), "wall_s": 60.0}, Path("out"))
    out = capsys.readouterr().out
    assert out.count("warning: ") == 1 and out.count("smaller than its student") == 1


@pytest.mark.parametrize("params", [None, "x", float("nan"), 1433280, 10**9])
def test_a_teacher_as_large_or_of_unknown_size_is_not_called_smaller(params):
    # metrics.json before issue 18 holds no teacher_params; an equal size is self-distillation
    assert distill_warnings({**TRAINED, "teacher_params": params}) == []
    assert "teacher_params" not in TRAINED  # the fixture is such an older record


def test_combine_records_the_teacher_size_and_reads_older_parts_without_it():
    m = untrained(0.5)
    parts = {"teacher": m["teacher"], "student": m["student"], "history": [],
             "student_params": 10, "init": "random", "settings": {}, "data_fingerprint": "d"}
    exported = {"fp32": m["student_onnx"], "int8": m["student_int8"], "export": {}}
    baseline = {"student": m["baseline"], "history": []}
    assert combine({**parts, "teacher_params": 99}, baseline, exported, 1.0)[
        "teacher_params"] == 99
    assert combine(parts, baseline, exported, 1.0)["teacher_params"] is None


def test_the_console_names_an_untrained_teacher_once(capsys):
    print_distill_summary({**untrained(), "wall_s": 60.0}, Path("out"))
    out = capsys.readouterr().out
    assert out.count("warning: ") == 2 and out.count("likely untrained") == 1
