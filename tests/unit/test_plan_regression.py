"""A refactor leaves the plan unchanged: the plan of the shipped results table
(tests/fixtures/bench_results.csv) with the shipped pilot curves, for three preset scenarios,
against the checked-in expected plan (tests/fixtures/plans/expected.plan.json.gz): every key,
text and flag equal, numbers to a relative 1e-5, the results' directory (a path) ignored.

A change meant to move the plan writes the expected file again (from the repository root):

    .venv/bin/python -m tests.unit.test_plan_regression

and says in its commit why the plan moved (the test's failure message lists what did)."""

from __future__ import annotations

import gzip
import json
import math
from typing import Any, Iterator

from roi.planner import plan

from .plan_helpers import FIXTURE, OLD_PLANS

EXPECTED = OLD_PLANS / "expected.plan.json.gz"
PILOT = FIXTURE.parent / "forecast" / "long-curves.csv"
SCENARIOS = ["real-time-api", "cloud-batch", "mobile-on-device"]
REL = 1e-5  # far below any change a plan shows; above float noise across numpy builds


def planned() -> dict:
    """The plan of the fixtures, as plan.json holds it, less where the results were read from."""
    doc = json.loads(json.dumps(plan(FIXTURE, SCENARIOS, pilot=PILOT).to_dict()))
    for machine in doc["sources"]["machines"]:
        machine.pop("results", None)  # the directory the table was read from
    return doc


def differences(want: Any, got: Any, where: str = "plan") -> Iterator[str]:
    """Where `got` differs from `want`: numbers beyond REL, anything else not equal."""
    if isinstance(want, dict) and isinstance(got, dict):
        for key in dict.fromkeys([*want, *got]):
            if key not in got or key not in want:
                yield f"{where}.{key}: {'missing' if key not in got else 'new'}"
            else:
                yield from differences(want[key], got[key], f"{where}.{key}")
    elif isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (w, g) in enumerate(zip(want, got)):
            yield from differences(w, g, f"{where}[{i}]")
    elif _number(want) and _number(got):
        if not math.isclose(want, got, rel_tol=REL, abs_tol=1e-12):
            yield f"{where}: {want!r} -> {got!r}"
    elif type(want) is not type(got) or want != got:
        yield f"{where}: {str(want)[:80]!r} -> {str(got)[:80]!r}"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def test_the_plan_of_the_fixtures_is_the_expected_plan():
    want = json.loads(gzip.decompress(EXPECTED.read_bytes()))
    found = list(differences(want, planned()))
    assert not found, (f"{len(found)} difference(s) from {EXPECTED.name} (if intended: "
                       "python -m tests.unit.test_plan_regression):\n" + "\n".join(found[:30]))


def test_the_comparison_sees_a_moved_number_and_ignores_float_noise():
    want = {"a": [1.0, {"b": "x", "c": True}], "d": 3}
    assert list(differences(want, {"a": [1.0 + 1e-9, {"b": "x", "c": True}], "d": 3})) == []
    moved = {"a": [1.01, {"b": "y", "c": 1}], "e": 3}
    assert list(differences(want, moved)) == ["plan.a[0]: 1.0 -> 1.01", "plan.a[1].b: 'x' -> 'y'",
                                              "plan.a[1].c: 'True' -> '1'", "plan.d: missing",
                                              "plan.e: new"]


if __name__ == "__main__":  # write the expected plan again (an intended change)
    text = json.dumps(planned(), indent=1, sort_keys=False) + "\n"
    EXPECTED.write_bytes(gzip.compress(text.encode(), mtime=0))
    print(f"wrote {EXPECTED}")
