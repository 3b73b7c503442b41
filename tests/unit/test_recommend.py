import math

import pandas as pd
import pytest

from contracts.errors import InputError
from roi.recommend import candidates, check_threshold, recommend

TEACHER = 10_000_000
STUDENTS = {"s5": 2_000_000, "s10": 1_000_000, "s20": 500_000, "s50": 200_000}


def _best(costs: dict, feasible: dict | None = None) -> pd.DataFrame:
    feasible = feasible or {}
    rows = []
    for model, cost in costs.items():
        ok = feasible.get(model, True)
        rows.append({"scenario": "sc", "model": model, "hardware": "l4", "backend": "ort",
                     "dtype": "int8", "batch_size": 8, "usd_per_month": cost,
                     "usd_per_month_p10": cost, "usd_per_month_p90": cost,
                     "service_ms_p50": 5.0, "source": "projected", "feasible": ok,
                     "reason": "meets the SLA and fits memory" if ok else
                     "misses the SLA: p99 of one request alone is 900 ms > 100 ms"})
    return pd.DataFrame(rows)


def test_the_cheapest_qualifying_student_is_picked():
    # s20 (20x, prior low end exactly 95%) is cheapest among those that qualify; s50 is
    # cheaper still but its band (92-96%) falls under the threshold
    ranked = candidates(_best({"s5": 900, "s10": 700, "s20": 500, "s50": 100}), STUDENTS,
                        TEACHER, 0.95)
    chosen, why = recommend(ranked)
    assert chosen.model == "s20" and why == ""
    assert [c.model for c in ranked] == ["s20", "s10", "s5", "s50"]
    assert not ranked[-1].qualifies and "under the 95% threshold" in ranked[-1].reasons[0]
    assert chosen.deploy == {"deploy_backend": "ort", "deploy_dtype": "int8"}
    assert chosen.record()["retention_band"] == [0.95, 0.99]


def test_equal_costs_go_to_the_better_retention():
    ranked = candidates(_best({"s5": 100, "s10": 100, "s20": 100, "s50": 100}), STUDENTS,
                        TEACHER, 0.95)
    assert recommend(ranked)[0].model == "s5"


def test_a_student_that_misses_the_sla_does_not_qualify():
    ranked = candidates(_best({"s5": 900, "s10": 700, "s20": 500, "s50": 100},
                              {"s20": False}), STUDENTS, TEACHER, 0.95)
    chosen, _ = recommend(ranked)
    assert chosen.model == "s10"
    s20 = next(c for c in ranked if c.model == "s20")
    assert math.isinf(s20.usd_per_month) and "no candidate hardware works" in s20.reasons[0]


def test_none_qualifies_and_the_reason_says_why_for_each():
    ranked = candidates(_best({"s5": 900, "s10": 700, "s20": 500, "s50": 100},
                              {"s5": False, "s10": False}), STUDENTS, TEACHER, 0.97)
    chosen, why = recommend(ranked)
    assert chosen is None
    assert "s5: sc: no candidate hardware works" in why and "misses the SLA" in why
    assert "s20: retention band 95.0%-99.0% (prior) has its low end under the 97%" in why
    assert recommend([]) == (None, "the results hold no student rows (role = student)")


def test_measured_retention_can_qualify_a_small_student():
    ranked = candidates(_best({"s5": 900, "s10": 700, "s20": 500, "s50": 100}), STUDENTS,
                        TEACHER, 0.95, measured={"s50": 0.97})
    chosen, _ = recommend(ranked)
    assert chosen.model == "s50" and chosen.retention.source == "measured"


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, "x"])
def test_threshold_is_a_fraction(bad):
    with pytest.raises(InputError, match="retention threshold must be in"):
        check_threshold(bad)


def test_a_student_not_smaller_than_the_teacher_is_never_recommended():
    students = {**STUDENTS, "big": 20_000_000}
    ranked = candidates(_best({"s5": 900, "s10": 700, "s20": 500, "s50": 100, "big": 1}),
                        students, TEACHER, 0.95)
    big = next(c for c in ranked if c.model == "big")
    assert not big.qualifies and "not smaller than the teacher" in big.reasons[0]
    assert "0.50x" in big.reasons[0]
    assert recommend(ranked)[0].model == "s20"
