"""The ranking of students: the cheapest whose retention band's low end meets the threshold
and that meets every scenario's SLA and memory limit on some candidate hardware. That is the
recommendation for a portfolio (scenarios deployed together); for separate deployments the
planner recommends the headline scenario's own best-fit student (roi.planner._per_deployment).

Cost is the student's monthly cost summed over the scenarios, each on its cheapest feasible
configuration; ties go to the higher retention (cost alone cannot tell them apart, e.g. on a
user's own phone). The other students follow, ranked: those that qualify by cost, then the rest
by how close they come (retention low end), each with the reasons it does not qualify.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

import pandas as pd

from contracts.curves import finite
from contracts.errors import InputError

from .retention import RetentionBand, band_for

if TYPE_CHECKING:
    from .budget import BudgetChoice



@dataclass(frozen=True)
class Candidate:
    model: str
    params: int
    compression_ratio: float
    retention: RetentionBand
    qualifies: bool
    reasons: tuple[str, ...]
    usd_per_month: float  # summed over scenarios; inf when some scenario has no feasible config
    per_scenario: tuple[dict, ...] = field(default=())
    budget: Optional[BudgetChoice] = None  # its training budget (roi.budget), where chosen
    # smaller than the teacher and its retention meets the threshold (scenarios aside): what a
    # scenario's best-fit student needs (roi.planner._best_fit)
    retention_ok: bool = True

    def horizon_usd(self, months: int) -> float:
        """Monthly cost over the horizon plus the one-time cost of its training budget."""
        once = self.budget.one_time.total_usd if self.budget is not None else 0.0
        return self.usd_per_month * months + once

    @property
    def deploy(self) -> dict:
        """Backend and dtype of the cheapest feasible configuration (first scenario that has
        one)."""
        for s in self.per_scenario:
            if s.get("feasible"):
                return {"deploy_backend": s["backend"], "deploy_dtype": s["dtype"]}
        first = self.per_scenario[0] if self.per_scenario else {}
        return {"deploy_backend": first.get("backend"), "deploy_dtype": first.get("dtype")}

    def record(self) -> dict:
        return {"model": self.model, "params": int(self.params),
                "compression_ratio": round(self.compression_ratio, 4),
                "retention_band": self.retention.as_list(),
                "retention_source": self.retention.source,
                "retention_p50": self.retention.mid, "retention_steps": self.retention.steps,
                "retention_note": self.retention.note, **self.deploy,
                "qualifies": self.qualifies, "reasons": list(self.reasons),
                "usd_per_month": finite(self.usd_per_month),
                "per_scenario": [dict(s) for s in self.per_scenario],
                "budget": self.budget.record() if self.budget is not None else None}


def check_threshold(threshold: float) -> float:
    if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
        raise InputError(f"retention threshold must be in (0, 1] (a fraction such as 0.95); "
                         f"got {threshold!r}")
    return float(threshold)


def candidates(best_per_model: pd.DataFrame, students: dict[str, int], teacher_params: int,
               threshold: float, measured: dict[str, float] | None = None,
               budgets: Optional[Callable[[str, int, RetentionBand], BudgetChoice]] = None,
               horizon_months: int = 12) -> list[Candidate]:
    """Every student judged against the threshold and the scenarios, ranked: by the cost over
    the horizon (monthly cost x months + the one-time cost of its training budget) where
    `budgets` chooses a budget per student (roi.budget), else by monthly cost."""
    check_threshold(threshold)
    out = [_judge(spec, params, teacher_params, threshold, measured,
                  best_per_model[best_per_model["model"] == spec], budgets)
           for spec, params in students.items()]
    return sorted(out, key=lambda c: _rank(c, horizon_months))


def _judge(spec, params, teacher_params, threshold, measured, rows, budgets) -> Candidate:
    ratio = teacher_params / params
    band = band_for(spec, ratio, measured)
    budget = None
    if budgets is not None and band.source != "measured":
        budget = budgets(spec, params, band)
        band = budget.band
    reasons = []
    if ratio <= 1:  # a "student" the teacher's size or larger: nothing to distill into
        reasons.append(f"not smaller than the teacher ({params:,} parameters against "
                       f"{teacher_params:,}: {ratio:.2f}x); a student must be smaller")
    if budget is not None and not budget.reaches and band.meets(threshold):
        reasons.append(f"retention: {budget.note}")
    elif not band.meets(threshold):
        at = f" at {band.steps:,} steps" if band.steps else ""
        reasons.append(f"retention band {band.low:.1%}-{band.high:.1%} ({band.source}{at}) "
                       f"has its low end under the {threshold * 100:g}% threshold")
    retention_ok = not reasons
    per = tuple(_scenario_entry(r) for _, r in rows.iterrows())
    for s in per:
        if not s["feasible"]:
            reasons.append(f"{s['scenario']}: no candidate hardware works (closest: "
                           f"{s['hardware']}: {s['reason']})")
    cost = sum(s["usd_per_month"] for s in per) if per and all(s["feasible"] for s in per) \
        else math.inf
    return Candidate(spec, params, ratio, band, not reasons, tuple(reasons), cost, per, budget,
                     retention_ok)


def _scenario_entry(r: pd.Series) -> dict:
    return {"scenario": r["scenario"], "hardware": r["hardware"], "backend": r["backend"],
            "dtype": r["dtype"], "batch_size": int(r["batch_size"]),
            "deploy_runtime": r.get("deploy_runtime"),
            "usd_per_month": float(r["usd_per_month"]) if pd.notna(r["usd_per_month"])
            else math.inf,
            "usd_per_month_p10": finite(r.get("usd_per_month_p10")),
            "usd_per_month_p90": finite(r.get("usd_per_month_p90")),
            "service_ms_p50": finite(r["service_ms_p50"]),
            "source": r["source"], "feasible": bool(r["feasible"]), "reason": r["reason"],
            "spread_note": str(r.get("spread_note") or "")}


def _rank(c: Candidate, horizon_months: int = 12) -> tuple:
    p50 = sum((s["service_ms_p50"] or math.inf) for s in c.per_scenario)
    return (not c.qualifies, c.horizon_usd(horizon_months) if c.qualifies else 0.0,
            -c.retention.low, p50)


def recommend(ranked: list[Candidate]) -> tuple[Optional[Candidate], str]:
    """The first qualifying candidate, or None with the reason none qualifies."""
    if ranked and ranked[0].qualifies:
        return ranked[0], ""
    if not ranked:
        return None, "the results hold no student rows (role = student)"
    why = "; ".join(f"{c.model}: {c.reasons[0]}" for c in ranked)
    return None, why

