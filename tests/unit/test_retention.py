import json
import math
import re

import pytest
import yaml

from contracts.errors import InputError
from roi.retention import (
    ReferencePair, band_for, load_references, measured_band, nearby_references,
    parse_metrics_args, prior_band, read_metrics_retention, reference_pairs,
)


@pytest.mark.parametrize("ratio,low,high", [
    (5, 0.98, 0.995), (10, 0.96, 0.99), (20, 0.95, 0.99), (50, 0.92, 0.96), (1, 1.0, 1.0),
])
def test_the_seeds_anchors_are_exact(ratio, low, high):
    band = prior_band(ratio)
    assert (band.low, band.high) == pytest.approx((low, high), abs=1e-12)
    assert band.source == "prior"


def test_interpolation_is_linear_in_log_ratio():
    # sqrt(5 * 10) sits halfway between 5x and 10x in log(ratio)
    band = prior_band(math.sqrt(50))
    assert band.low == pytest.approx((0.98 + 0.96) / 2)
    assert band.high == pytest.approx((0.995 + 0.99) / 2)
    # halfway in log between 20x and 50x
    band = prior_band(math.sqrt(1000))
    assert band.low == pytest.approx((0.95 + 0.92) / 2)


def test_a_20_5x_student_falls_just_under_95_percent():
    # the built-in student-20x is 20.5x: its prior low end is below the seed's 20x figure
    band = prior_band(20.5)
    assert 0.949 < band.low < 0.95 and not band.meets(0.95) and band.meets(0.949)


def test_beyond_50x_the_band_keeps_falling_and_says_so():
    band = prior_band(100)
    slope = (0.92 - 0.95) / math.log(50 / 20)
    assert band.low == pytest.approx(0.92 + slope * math.log(2))
    assert band.low < 0.92 and "extrapolated" in band.note


def test_bad_ratio_is_refused():
    with pytest.raises(InputError, match="compression_ratio"):
        prior_band(0)


def test_measured_retention_replaces_the_prior(tmp_path):
    ckpt = tmp_path / "student"
    ckpt.mkdir()
    (ckpt / "metrics.json").write_text(json.dumps({"retention_accuracy": 0.931}))
    band = band_for(f"ckpt:{ckpt}", 10.0)
    assert band.source == "measured" and band.low == band.high == 0.931
    assert band_for("builtin:student-10x", 10.0).source == "prior"
    given = band_for("builtin:student-10x", 10.0, {"builtin:student-10x": 0.97})
    assert given.as_list() == [0.97, 0.97] and given.source == "measured"


def test_metrics_without_the_key_use_student_over_teacher_accuracy(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"student": {"accuracy": 0.45}, "teacher": {"accuracy": 0.5}}))
    assert read_metrics_retention(path) == pytest.approx(0.9)
    path.write_text(json.dumps({"student": {}}))
    assert read_metrics_retention(path) is None
    assert parse_metrics_args([]) == {}


@pytest.mark.parametrize("content,needle", [("{not json", "cannot be read"),
                                            ("[1, 2]", "JSON object")])
def test_bad_metrics_files_are_input_errors(tmp_path, content, needle):
    path = tmp_path / "metrics.json"
    path.write_text(content)
    with pytest.raises(InputError, match=needle):
        read_metrics_retention(path)


def test_metrics_arguments(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"retention_accuracy": 0.96}))
    assert parse_metrics_args([f"builtin:student-5x={path}"]) == {"builtin:student-5x": 0.96}
    with pytest.raises(InputError, match="SPEC=FILE"):
        parse_metrics_args(["nonsense"])
    with pytest.raises(InputError, match="does not exist"):
        parse_metrics_args([f"x=/no/such/{path.name}"])
    with pytest.raises(InputError, match="retention_accuracy must be a positive"):
        measured_band(-0.1, 5.0, "x")


# ------------------------------------------------------------------ published reference pairs


def _pair(ratio: float, kept: float = 0.9, **kw) -> ReferencePair:
    """A hand-built pair with the given compression ratio and retention."""
    fields = dict(student=f"s{ratio:g}", teacher="t", student_params=1e6,
                  teacher_params=ratio * 1e6, metric="m", student_score=kept * 100,
                  teacher_score=100.0, kind="general LLM, distilled",
                  source="test (https://example.org)", quote="q", checked="2026-12-07")
    return ReferencePair(**{**fields, **kw})


def _entry(**kw) -> dict:
    good = dict(student="S", teacher="T", student_params=1e9, teacher_params=8e9,
                metric="MMLU 5-shot", student_score=60.0, teacher_score=70.0,
                kind="general LLM, distilled", source="card (https://example.org)",
                quote="| MMLU | 60.0 | 70.0 |", checked="2026-12-07")
    return {k: v for k, v in {**good, **kw}.items() if v is not None}


def test_the_shipped_reference_pairs_load_and_each_cites_its_source():
    pairs = reference_pairs()
    assert 10 <= len(pairs) <= 16 and pairs is reference_pairs()  # cached
    for p in pairs:
        assert re.search(r"https?://\S+", p.source), p.student
        assert len(p.quote) > 10 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.checked)
        assert 1 < p.compression_ratio and 0.3 < p.retained <= 1.01, p.student
    ratios = [p.compression_ratio for p in pairs]
    assert min(ratios) <= 1.6 and max(ratios) >= 20  # the span the planner's students cover
    kinds = {p.kind for p in pairs}
    assert kinds == {"task-specific encoder, distilled", "general LLM, distilled",
                     "general LLM, trained from scratch"}


@pytest.mark.parametrize("student,ratio,kept", [
    # 109M / 66M; GLUE dev macro-score 77.0 / 79.5
    ("DistilBERT-base-uncased", 1.6515151515, 0.9685534591),
    # 70,553,706,496 / 8,030,261,248 params; MMLU 5-shot 66.6 / 79.5
    ("Llama-3-8B", 8.7859789759, 0.8377358491),
])
def test_ratio_and_retention_are_computed_from_the_typed_numbers(student, ratio, kept):
    (pair,) = [p for p in reference_pairs() if p.student == student]
    assert pair.compression_ratio == pytest.approx(ratio, rel=1e-9)
    assert pair.retained == pytest.approx(kept, rel=1e-9)


def test_a_source_that_gives_only_a_percentage_keeps_it():
    (tiny,) = [p for p in reference_pairs() if p.student.startswith("TinyBERT")]
    assert tiny.student_score is None and tiny.retained == 0.968
    assert tiny.compression_ratio == pytest.approx(109 / 14.5)


def test_nearby_references_are_the_nearest_in_log_ratio():
    pool = [_pair(r) for r in (2, 4, 8, 16, 32)]

    def ratios(refs):
        return [round(p.compression_ratio, 9) for p in refs]

    assert ratios(nearby_references(10, k=2, pairs=pool)) == [8, 16]  # 10/8 < 16/10
    assert ratios(nearby_references(3, k=1, pairs=pool)) == [4]  # 4/3 < 3/2
    # sqrt(32) is as far from 4 as from 8 in log(ratio): the smaller ratio comes first
    assert ratios(nearby_references(math.sqrt(32), k=2, pairs=pool)) == [4, 8]
    assert ratios(nearby_references(100, k=9, pairs=pool)) == [32, 16, 8, 4, 2]
    with pytest.raises(InputError, match="k must be"):
        nearby_references(10, k=0, pairs=pool)
    with pytest.raises(InputError, match="compression_ratio"):
        nearby_references(-1, pairs=pool)


def test_a_prior_band_shows_the_published_pairs_beside_the_seeds_numbers():
    band = prior_band(10)
    assert (band.low, band.high, band.source) == (0.96, 0.99, "prior")  # the seed's, unchanged
    assert band.references == nearby_references(10)
    lo = min(p.retained for p in band.references)
    hi = max(p.retained for p in band.references)
    assert f"kept {lo:.0%}-{hi:.0%}" in band.note and "retention_reference.yaml" in band.note
    assert lo < band.low  # the published LLM pairs near 10x fall below the seed's range
    assert prior_band(1).references == () and prior_band(1).note == ""
    assert "extrapolated" in prior_band(100).note and prior_band(100).references
    assert measured_band(0.9, 10).references == ()


@pytest.mark.parametrize("bad,field", [
    (dict(student_score="high"), "student_score"),
    (dict(quote=None), "quote"),
    (dict(kind="distilled"), "kind"),
    (dict(source="a paper"), "source"),
    (dict(teacher_score=None), "teacher_score"),
    (dict(retention=0.9), "retention"),
])
def test_a_malformed_entry_is_one_input_error_line_naming_entry_and_field(tmp_path, bad, field):
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump({"pairs": [_entry(), _entry(student="Bad-1B", **bad)]}))
    with pytest.raises(InputError) as err:
        load_references(path)
    message = str(err.value)
    assert "\n" not in message and "pairs[1] (Bad-1B vs T)" in message and field in message
    path.write_text(yaml.safe_dump({"pairs": [_entry()]}))
    assert load_references(path)[0].retained == pytest.approx(60 / 70)


def test_a_reference_file_of_the_wrong_shape_is_refused(tmp_path):
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump([_entry()]))
    with pytest.raises(InputError, match="one key 'pairs'"):
        load_references(path)
