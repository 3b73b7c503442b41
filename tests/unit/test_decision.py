import pytest

from roi.decision import criteria, decide
from roi.scenarios import presets

PRESETS = presets()


def _by_name(crit):
    return {c.name: c for c in crit}


def test_real_time_api_criteria_values_and_verdicts():
    c = _by_name(criteria(PRESETS["real-time-api"], 12_345.0))
    assert c["inference bill over $10K/month"].value == 12_345.0
    assert c["inference bill over $10K/month"].verdict == "met"
    assert (c["latency SLA under 500 ms"].value, c["latency SLA under 500 ms"].verdict) == \
        (100.0, "met")
    assert c["on-device / edge inference needed"].verdict == "not met"
    assert (c["QPS over 1000"].value, c["QPS over 1000"].verdict) == (2000.0, "met")
    assert c["data-locality requirement"].verdict == "not met"
    assert all(x.scenario == "real-time-api" for x in c.values())


def test_cloud_batch_meets_none_of_the_criteria_at_a_small_bill():
    c = criteria(PRESETS["cloud-batch"], 9_999.0)
    assert [x.verdict for x in c] == ["not met"] * 5
    d = decide(c, "builtin:student-10x")
    assert not d.go and "none of the seed's five criteria" in d.reasons[0]


def test_edge_and_an_unknown_bill():
    c = _by_name(criteria(PRESETS["embedded-iot"], None))
    assert c["on-device / edge inference needed"].verdict == "met"
    assert c["inference bill over $10K/month"].verdict == "unknown"
    assert c["inference bill over $10K/month"].value is None
    assert c["latency SLA under 500 ms"].verdict == "not met"  # 1000 ms


def test_the_bill_threshold_is_strict():
    at = _by_name(criteria(PRESETS["cloud-batch"], 10_000.0))
    assert at["inference bill over $10K/month"].verdict == "not met"


@pytest.mark.parametrize("recommended,benefit,go", [
    ("builtin:student-10x", (True, "saves"), True),
    (None, (True, ""), False),
    ("builtin:student-10x", (False, "no measured benefit: same cost"), False),
])
def test_go_needs_a_criterion_a_student_and_a_benefit(recommended, benefit, go):
    c = criteria(PRESETS["real-time-api"], 500.0)
    d = decide(c, recommended, "every student misses the SLA", benefit)
    assert d.go is go
    text = " ".join(d.reasons)
    assert "latency SLA under 500 ms" in text
    if recommended is None:
        assert "no student meets these constraints: every student misses the SLA" in text
    if not benefit[0]:
        assert d.reasons[0].startswith("no measured benefit")  # what blocked comes first
    if go:
        assert d.reasons[-2:] == ["recommended student: builtin:student-10x", "saves"]
    record = d.record()
    assert set(record) == {"go", "reasons", "criteria"}
    assert set(record["criteria"][0]) >= {"name", "value", "threshold", "verdict"}
