import json
import math

import pytest

from roi.errors import InputError
from roi.retention import (
    band_for, measured_band, parse_metrics_args, prior_band, read_metrics_retention,
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
