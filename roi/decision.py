"""The seed's decision framework: distillation is worth pursuing if any of five criteria holds.

1. the inference bill exceeds $10K a month;
2. the latency SLA is under 500 ms end to end;
3. inference must run on a device or at the edge;
4. the inference rate exceeds 1000 QPS;
5. regulation demands data locality.

Each criterion is shown with its value, threshold and verdict ("met", "not met" or "unknown"
when its value could not be computed). Go needs at least one criterion met, a student that meets
the constraints, and a measured benefit: the student saves money, or meets a scenario the teacher
cannot. The seed's criteria say where distillation usually pays; the last check keeps a plan from
saying go where our own figures show the teacher already does the job at the same cost (tiny
models on a GPU, where per-call overhead and not the model decides the latency). The reasons say
which held and what blocked.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
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

    def record(self) -> dict:
        return asdict(self)


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
    edge = c.offline or w.arrival == "single-stream"
    return [
        Criterion("inference bill over $10K/month", round(bill, 2) if known else None,
                  BILL_USD_PER_MONTH, _verdict(bill > BILL_USD_PER_MONTH if known else None),
                  f"the teacher costs ${bill:,.0f}/month at this workload" if known else
                  "the teacher's bill could not be computed", s),
        Criterion("latency SLA under 500 ms", scenario.sla.latency_ms, SLA_MS,
                  _verdict(scenario.sla.latency_ms < SLA_MS),
                  f"p{scenario.sla.percentile:g} <= {scenario.sla.latency_ms:g} ms", s),
        Criterion("on-device / edge inference needed", edge, True, _verdict(edge),
                  "offline or one request at a time on a device" if edge
                  else "served online from the cloud", s),
        Criterion("QPS over 1000", round(w.design_qps, 3), QPS, _verdict(w.design_qps > QPS),
                  f"{w.design_qps:,.4g} requests/s at peak (what the fleet is sized for)", s),
        Criterion("data-locality requirement", c.data_locality, True,
                  _verdict(c.data_locality),
                  "data may not leave the premises" if c.data_locality
                  else "no locality constraint", s),
    ]


def decide(all_criteria: list[Criterion], recommended: Optional[str],
           no_recommendation_reason: str = "", benefit: tuple[bool, str] = (True, "")
           ) -> Decision:
    """Go when some criterion is met, a student qualifies and it brings a benefit. A no-go
    lists what blocked first (the trainer quotes the reasons when it refuses)."""
    met = [c for c in all_criteria if c.verdict == "met"]
    held = [f"{c.scenario}: {c.name} ({c.reason})" for c in met]
    blockers = []
    if not met:
        blockers.append("none of the seed's five criteria holds: distillation is not a priority")
    if recommended is None:
        blockers.append(f"no student meets these constraints: {no_recommendation_reason}")
    elif not benefit[0]:
        blockers.append(benefit[1])
    chosen = [f"recommended student: {recommended}"] if recommended else []
    if recommended and benefit[0] and benefit[1]:
        chosen.append(benefit[1])
    go = not blockers
    return Decision(go, blockers + held + chosen, list(all_criteria))
