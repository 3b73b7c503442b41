"""The seed's decision framework: distillation is worth pursuing if any of five criteria holds.

1. the inference bill exceeds $10K a month;
2. the latency SLA is under 500 ms end to end;
3. inference must run on a device or at the edge;
4. the inference rate exceeds 1000 QPS;
5. regulation demands data locality.

Each criterion is shown with its value, threshold and verdict ("met", "not met" or "unknown"
when its value could not be computed). The on-device criterion reads the scenario's deployment
target (cloud or device); the QPS criterion its mean rate (the peak, which sizing absorbs, is
shown beside it). A criterion that holds counts as a reason to go only where the student changes
the outcome of its scenario (`weigh`): it saves money there, or meets the SLA or memory limit
that the teacher cannot; elsewhere it is listed, with its value, as not counted and why.

Go needs at least one counted criterion, a student that meets the constraints, and a measured
benefit: the student saves money, or meets a scenario the teacher cannot. The seed's criteria say
where distillation usually pays; the last checks keep a plan from saying go where our own figures
show the teacher already does the job at the same cost (tiny models on a GPU, where per-call
overhead and not the model decides the latency). The reasons say which held and what blocked.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, Optional

from .scenarios import Scenario

BILL_USD_PER_MONTH = 10_000.0
SLA_MS = 500.0
QPS = 1000.0
Verdict = Literal["met", "not met", "unknown"]


@dataclass(frozen=True)
class Criterion:
    name: str
    value: Any
    threshold: Any
    verdict: Verdict
    reason: str
    scenario: str = ""
    counted: Optional[bool] = None  # met and the student changes the outcome (None: not weighed)

    def record(self) -> dict:
        return asdict(self)

    @property
    def counts(self) -> bool:
        """A reason to go: met, and not found to change nothing."""
        return self.verdict == "met" and self.counted is not False


@dataclass(frozen=True)
class Outcome:
    """What the student changes in one scenario against the teacher (`changes`)."""

    changes: bool
    why: str


@dataclass(frozen=True)
class Decision:
    go: bool
    reasons: list[str]
    criteria: list[Criterion]

    def record(self) -> dict:
        return {"go": self.go, "reasons": list(self.reasons),
                "criteria": [c.record() for c in self.criteria]}


def _verdict(holds: Optional[bool]) -> Verdict:
    return "unknown" if holds is None else ("met" if holds else "not met")


def criteria(scenario: Scenario, teacher_bill_usd_per_month: Optional[float]) -> list[Criterion]:
    """The five criteria for one scenario; the bill is the teacher's monthly cost on its
    cheapest hardware that meets the scenario (None when it could not be costed)."""
    s, w, c = scenario.name, scenario.workload, scenario.constraints
    bill = teacher_bill_usd_per_month
    known = bill is not None and math.isfinite(bill)
    edge = scenario.deployment == "device"
    return [
        Criterion("inference bill over $10K/month", round(bill, 2) if known else None,
                  BILL_USD_PER_MONTH, _verdict(bill > BILL_USD_PER_MONTH if known else None),
                  f"the teacher costs ${bill:,.0f}/month at this workload" if known else
                  "the teacher's bill could not be computed", s),
        Criterion("latency SLA under 500 ms", scenario.sla.latency_ms, SLA_MS,
                  _verdict(scenario.sla.latency_ms < SLA_MS),
                  f"p{scenario.sla.percentile:g} <= {scenario.sla.latency_ms:g} ms", s),
        Criterion("on-device / edge inference needed", edge, True, _verdict(edge),
                  "deployment: device (runs on the user's device or an edge board)" if edge
                  else "deployment: cloud (served from servers)", s),
        Criterion("QPS over 1000", round(w.mean_qps, 3), QPS, _verdict(w.mean_qps > QPS),
                  f"{w.mean_qps:,.4g} requests/s on average; {w.design_qps:,.4g} at peak "
                  f"(what the fleet is sized for)", s),
        Criterion("data-locality requirement", c.data_locality, True,
                  _verdict(c.data_locality),
                  "data may not leave the premises" if c.data_locality
                  else "no locality constraint", s),
    ]


def changes(teacher_usd: Optional[float], teacher_meets: bool, student_usd: Optional[float],
            student_meets: bool) -> Outcome:
    """Does the student change the outcome of one scenario? It must meet the scenario, and
    either meet it where the teacher cannot or cost less there (monthly P50 costs)."""
    if not student_meets or student_usd is None:
        return Outcome(False, "the student meets this scenario on no candidate hardware")
    if not teacher_meets or teacher_usd is None:
        return Outcome(True, "the student meets the SLA or memory limit that the teacher "
                       "cannot meet on any candidate hardware")
    saved = teacher_usd - student_usd
    reduction = saved / teacher_usd if teacher_usd > 0 else 0.0
    if round(saved, 2) > 0:
        return Outcome(True, f"the student saves ${saved:,.2f}/month here ({reduction:.1%})")
    return Outcome(False, f"the teacher already meets this scenario and the student saves "
                   f"nothing (teacher ${teacher_usd:,.2f}/month, student ${student_usd:,.2f}; "
                   f"cost reduction {reduction:.1%})")


def weigh(all_criteria: list[Criterion], outcomes: dict[str, Outcome]) -> list[Criterion]:
    """The criteria with `counted` set where they hold: a reason to go only in a scenario
    whose outcome the student changes; the others say why they are not counted."""
    out = []
    for c in all_criteria:
        o = outcomes.get(c.scenario)
        if c.verdict != "met" or o is None:
            out.append(c)
        elif o.changes:
            out.append(replace(c, counted=True))
        else:
            out.append(replace(c, counted=False, reason=f"{c.reason}; not counted: {o.why}"))
    return out


def decide(all_criteria: list[Criterion], recommended: Optional[str],
           no_recommendation_reason: str = "", benefit: tuple[bool, str] = (True, "")
           ) -> Decision:
    """Go when some criterion counts (`weigh`), a student qualifies and it brings a benefit.
    A no-go lists what blocked first (the trainer quotes the reasons when it refuses)."""
    met = [c for c in all_criteria if c.verdict == "met"]
    counted = [c for c in met if c.counts]
    held = [f"{c.scenario}: {c.name} ({c.reason})" for c in counted]
    blockers = []
    if not met:
        blockers.append("none of the seed's five criteria holds: distillation is not a priority")
    elif not counted:
        where = ", ".join(dict.fromkeys(c.scenario for c in met))
        blockers.append(f"the seed's criteria hold only where the student changes nothing "
                        f"({where}): distillation is not a priority")
    if recommended is None:
        blockers.append(f"no student meets these constraints: {no_recommendation_reason}")
    elif not benefit[0]:
        blockers.append(benefit[1])
    chosen = [f"recommended student: {recommended}"] if recommended else []
    if recommended and benefit[0] and benefit[1]:
        chosen.append(benefit[1])
    go = not blockers
    return Decision(go, blockers + held + chosen, list(all_criteria))
