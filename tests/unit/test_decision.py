import pytest

from roi.decision import Outcome, changes, criteria, decide, weigh
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
    assert (c["QPS over 1000"].value, c["QPS over 1000"].verdict) == (1000.0, "not met")
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


def _variant(name: str, **update):
    """A preset with some fields replaced (workload fields under 'workload')."""
    s = PRESETS[name]
    workload = update.pop("workload", None)
    if workload is not None:
        update["workload"] = s.workload.model_copy(update=workload)
    return s.model_copy(update=update)


def test_qps_is_judged_on_the_mean_with_the_peak_beside_it():
    # real-time-api: 2,000 QPS at peak, 1,000 on average: the seed's "over 1000" does not hold
    rt = _by_name(criteria(PRESETS["real-time-api"], 1.0))["QPS over 1000"]
    assert (rt.value, rt.verdict) == (1000.0, "not met")
    assert "1,000 requests/s on average; 2,000 at peak" in rt.reason
    busier = _variant("real-time-api", workload={"qps": 3000.0})  # mean 1,500
    c = _by_name(criteria(busier, 1.0))["QPS over 1000"]
    assert (c.value, c.verdict) == (1500.0, "met") and "3,000 at peak" in c.reason


def test_on_device_comes_from_the_deployment_target_not_the_arrivals():
    edge = "on-device / edge inference needed"
    cloud_single = _variant("embedded-iot", deployment="cloud")  # single-stream, offline
    assert _by_name(criteria(cloud_single, None))[edge].verdict == "not met"
    device_poisson = _variant("real-time-api", deployment="device")
    c = _by_name(criteria(device_poisson, None))[edge]
    assert (c.value, c.verdict) == (True, "met") and "deployment: device" in c.reason


def test_student_changes_the_outcome_only_by_saving_or_rescuing():
    assert changes(100.0, True, 60.0, True) == Outcome(
        True, "the student saves $40.00/month here (40.0%)")
    assert changes(None, False, 60.0, True).changes  # the teacher fits nowhere
    assert changes(500.0, False, 600.0, True).changes  # the teacher misses the SLA
    assert not changes(100.0, True, None, False).changes
    same = changes(6.92, True, 6.92, True)
    assert not same.changes and "cost reduction 0.0%" in same.why
    assert not changes(0.0, True, 0.0, True).changes  # unpriced phones: both $0


def test_a_holding_criterion_where_the_student_changes_nothing_is_not_counted():
    # mobile-on-device: the edge and latency criteria hold, but the teacher already meets the
    # SLA on the phone and the student costs the same ($0): listed, not a reason to go
    crit = criteria(PRESETS["mobile-on-device"], 0.0)
    nothing = Outcome(False, "the teacher already meets this scenario and the student saves "
                      "nothing (cost reduction 0.0%)")
    weighed = _by_name(weigh(crit, {"mobile-on-device": nothing}))
    edge = weighed["on-device / edge inference needed"]
    assert (edge.value, edge.verdict, edge.counted, edge.counts) == (True, "met", False, False)
    assert edge.reason.endswith("; not counted: " + nothing.why)
    assert weighed["QPS over 1000"].counted is None  # not met: not weighed
    d = decide(list(weighed.values()), "builtin:student-10x", benefit=(True, ""))
    assert not d.go
    assert d.reasons[0].startswith("the seed's criteria hold only where the student changes "
                                   "nothing (mobile-on-device)")
    assert d.record()["criteria"][2]["counted"] is False
    saves = Outcome(True, "the student saves $40.00/month here (40.0%)")
    counted = weigh(crit, {"mobile-on-device": saves})
    assert decide(counted, "builtin:student-10x", benefit=(True, "")).go
    assert all(c.counted for c in counted if c.verdict == "met")
