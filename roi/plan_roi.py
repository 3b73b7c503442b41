"""The plan's economics: the teacher's bill per scenario, each scenario's ROI for its own
student (never summed unless the scenarios are a declared portfolio), the headline, the Monte
Carlo bands, the teacher's generation cost, the benefit a go needs, and each scenario's decision.
Called by roi/planner.py.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

import numpy as np
import pandas as pd

from contracts.curves import finite

from .datagen_cost import DataGenCost, generation_cost, teacher_generation_rates
from .decision import Criterion, Outcome, changes
from .payback import Bands, OneTimeCost, Roi, RoiInputs, monte_carlo, record_inputs, tornado
from .plan_document import TRAINER_BATCH_TOKENS, TRAINER_DEFAULTS
from .recommend import Candidate
from .scenarios import Scenario


def teacher_bill(grid: pd.DataFrame, scenario: str, teacher: str) -> dict:
    """The teacher's monthly cost (P50 with its P10-P90 band): the cheapest configuration that
    meets the scenario; where none does, the cheapest that fits memory sized by throughput
    alone (SLA ignored), said so."""
    t = grid[(grid["scenario"] == scenario) & (grid["model"] == teacher)]
    ok = t[t["feasible"]]
    if len(ok):
        row = ok.sort_values("usd_per_month").iloc[0]
        return {"usd_per_month": float(row["usd_per_month"]),
                "usd_per_month_p10": float(row["usd_per_month_p10"]),
                "usd_per_month_p90": float(row["usd_per_month_p90"]),
                "basis": "cheapest configuration meeting the SLA", "config": _brief(row)}
    fit = t[t["fits_memory"] & t["projectable"]]
    if len(fit):
        row = fit.sort_values("usd_per_month_throughput").iloc[0]
        cost = float(row["usd_per_month_throughput"])
        return {"usd_per_month": cost, "usd_per_month_p10": cost, "usd_per_month_p90": cost,
                "basis": "the teacher meets the SLA on no candidate hardware: costed by "
                "throughput alone (SLA ignored)", "config": _brief(row)}
    return {"usd_per_month": None, "usd_per_month_p10": None, "usd_per_month_p90": None,
            "basis": "the teacher fits or projects on no candidate hardware", "config": None}


def _brief(row: pd.Series) -> dict:
    return {"hardware": row["hardware"], "backend": row["backend"], "dtype": row["dtype"],
            "batch_size": int(row["batch_size"]), "source": row["source"],
            "service_ms_p50": finite(row.get("service_ms_p50")),
            "spread_note": str(row.get("spread_note") or "")}


def roi_section(chosen: Optional[Candidate], ranked, bills, scenarios, cost,
                 inputs: RoiInputs, students, portfolio: bool = False,
                 criteria_met: frozenset | set = frozenset()) -> dict:
    """The ROI of each scenario (per_scenario) and the headline: the scenario where the student
    saves most (among those where a criterion holds and the student changes the outcome, if
    any), or with `portfolio` the total across scenarios (scope says which)."""
    target = chosen or next((c for c in ranked if math.isfinite(c.usd_per_month)), None)
    if target is None and not portfolio:  # one answer per deployment: costed somewhere will do
        target = next((c for c in ranked if any(p["feasible"] for p in c.per_scenario)), None)
    one = _one_time(target, students, cost)
    base = {"student": target.model if target else None, "inputs": record_inputs(inputs),
            "one_time": one.record(), "teacher_bill": bills,
            "scope": "portfolio" if portfolio else "scenario"}
    if chosen is None and target is not None:
        base["student_note"] = ("no student qualifies: the figures are for the closest "
                                "candidate, for comparison only")
    if target is None:
        base["note"] = "no savings figure: no student is costed on every scenario"
        return base
    who = {}  # scenario -> (the student its economics are for, that student's one-time cost)
    base["per_scenario"] = {}
    for s in scenarios:
        fit = best_fit(ranked, s.name, inputs.horizon_months)
        mine = target
        if not portfolio and fit and fit["retention_qualifies"]:  # one answer per deployment
            mine = next(c for c in ranked if c.model == fit["model"])
        once = one if mine is target else _one_time(mine, students, cost)
        who[s.name] = (mine, once)
        entry = next((p for p in mine.per_scenario if p["scenario"] == s.name), None)
        base["per_scenario"][s.name] = {**_scenario_roi(s, bills[s.name], entry, once, inputs),
                                        "student": mine.model, "best_fit": fit}
    if portfolio:
        return _portfolio_roi(base, scenarios, bills, target, one, inputs)
    return _scenario_headline(base, scenarios, bills, who, inputs, criteria_met)


def per_deployment(chosen, why_none, tentative, ranked, roi: dict):
    """One answer per deployment: the recommended student is the headline scenario's own
    (roi.student), where it qualifies on retention, though it may meet other scenarios nowhere
    (their own rows say so); those scenario reasons are not reasons against it here. With a
    portfolio, or where the headline's student does not qualify on retention, the ranking's
    choice stands."""
    if roi.get("scope") == "portfolio" or not roi.get("student"):
        return chosen, why_none, tentative
    pick = next((c for c in ranked if c.model == roi["student"]), None)
    if pick is None or not pick.retention_ok or (chosen is not None and chosen.model == pick.model):
        return chosen, why_none, tentative
    return replace(pick, qualifies=True, reasons=()), "", None


def best_fit(ranked: list[Candidate], scenario: str, months: int) -> Optional[dict]:
    """The student this scenario alone would pick: among the students that qualify on retention
    (none: among all, marked not qualifying), the one meeting the scenario at the lowest cost
    over the horizon (monthly cost here x months + its own one-time cost); a tie goes to the
    higher retention. None where no student meets the scenario."""
    retained = [c for c in ranked if c.retention_ok] or list(ranked)
    best, key = None, None
    for c in retained:
        entry = next((p for p in c.per_scenario if p["scenario"] == scenario), None)
        if entry is None or not entry["feasible"]:
            continue
        once = c.budget.one_time.total_usd if c.budget is not None else 0.0
        k = (entry["usd_per_month"] * months + once, -c.retention.low)
        if key is None or k < key:
            best, key = (c, entry), k
    if best is None:
        return None
    c, entry = best
    return {"model": c.model, "params": int(c.params),
            "compression_ratio": round(c.compression_ratio, 4),
            "usd_per_month": entry["usd_per_month"], "horizon_usd": key[0],
            "config": _entry_brief(entry), "retention_qualifies": c.retention_ok}


def _one_time(target: Optional[Candidate], students, cost) -> OneTimeCost:
    if target is not None and target.budget is not None:
        return target.budget.one_time
    params = target.params if target else min(students.values(), default=0)
    return cost(params, float(TRAINER_DEFAULTS["steps"] * TRAINER_BATCH_TOKENS))


def _requests_per_month(s: Scenario) -> float:
    return s.workload.daily_requests * 730 / 24


def _scenario_roi(s: Scenario, bill: dict, entry: Optional[dict], one: OneTimeCost,
                  inputs: RoiInputs) -> dict:
    """One scenario's economics on its own: teacher and student monthly cost, savings, the
    one-time cost, payback and net over the horizon; and whether the student changes its
    outcome (roi.decision.changes)."""
    feasible = bool(entry and entry["feasible"])
    teacher = bill["usd_per_month"]
    student = entry["usd_per_month"] if feasible else None
    teacher_meets = bill["basis"] == "cheapest configuration meeting the SLA"
    outcome = changes(teacher, teacher_meets, student, feasible)
    rec: dict = {"scenario": s.name, "deployment": s.deployment, "student_feasible": feasible,
                 "teacher_meets_sla": teacher_meets,
                 "student_config": _entry_brief(entry) if feasible else None,
                 "teacher_config": bill["config"], "changes_outcome": outcome.changes,
                 "outcome": outcome.why, "one_time_usd": one.total_usd}
    rec["latency_improvement"] = _latency_improvement(bill["config"], rec["student_config"])
    # what widens this scenario's savings band: a fleet whose P90 is > 5x its P50 (roi.fleet)
    rec["band_drivers"] = [f"{who} on {c['hardware']}: {c['spread_note']}"
                           for who, c in (("teacher", bill["config"]),
                                          ("student", rec["student_config"]))
                           if c and c.get("spread_note")]
    if teacher is None or not feasible:
        rec["note"] = ("no savings figure: " + ("the teacher could not be costed"
                       if teacher is None else "the student meets this scenario nowhere"))
        return rec
    roi = Roi(one, float(teacher), float(student), _requests_per_month(s),
              inputs.horizon_months)
    figures = {k: v for k, v in roi.record().items() if k != "one_time"}
    return {**rec, **figures, "cost_reduction": (roi.monthly_savings_usd / teacher
                                                 if teacher > 0 else None)}


def _entry_brief(entry: dict) -> dict:
    return {k: entry.get(k) for k in ("hardware", "backend", "dtype", "batch_size", "source",
                                      "service_ms_p50", "spread_note")}


def _latency_improvement(teacher: Optional[dict], student: Optional[dict]) -> Optional[float]:
    """1 - student / teacher service time of one batch (P50), each on the configuration it is
    costed on (the seed's "latency improvement", at the deployment rather than on one
    machine)."""
    t = (teacher or {}).get("service_ms_p50")
    st = (student or {}).get("service_ms_p50")
    return 1 - st / t if t and st is not None else None


def _scenario_headline(base: dict, scenarios, bills, who: dict, inputs: RoiInputs,
                       criteria_met=frozenset()) -> dict:
    """The headline of one deployment: the scenario with the largest monthly savings among
    those where distilling is the answer (a criterion holds and the student changes the
    outcome), else among those the student meets (first in order on a tie). Its student (that
    scenario's own, `who`) is the headline's, and the plan's recommendation."""
    per = base["per_scenario"]
    costed = [s for s in scenarios if per[s.name].get("monthly_savings_usd") is not None]
    if not costed:
        notes = {per[s.name].get("note") for s in scenarios}
        return {**base, "scenario": None, "note": "; ".join(sorted(n for n in notes if n))}
    answers = [s for s in costed if s.name in criteria_met and per[s.name]["changes_outcome"]]
    best = max(answers or costed, key=lambda s: per[s.name]["monthly_savings_usd"])
    r = per[best.name]
    target, one = who[best.name]
    roi = Roi(one, r["teacher_usd_per_month"], r["student_usd_per_month"],
              r["requests_per_month"], inputs.horizon_months)
    why = ("the only scenario" if len(scenarios) == 1 else
           ("the scenario where distilling answers a criterion and saves most" if answers else
            "the scenario where the student saves most") + "; each deployment is a separate "
           "answer (per_scenario): totals across them only with portfolio")
    return {**base, "student": target.model, "one_time": one.record(), "scenario": best.name,
            "scenario_basis": why, **_headline(roi, _bands([best], bills, target), inputs)}


def _portfolio_roi(base: dict, scenarios, bills, target: Candidate, one: OneTimeCost,
                   inputs: RoiInputs) -> dict:
    """The total across scenarios that the user declared one portfolio (deployed together)."""
    per = base["per_scenario"]
    missing = [s.name for s in scenarios if per[s.name].get("monthly_savings_usd") is None]
    base = {**base, "scenario": None, "portfolio": [s.name for s in scenarios]}
    if missing:
        base["note"] = (f"no portfolio total: no savings figure for {', '.join(missing)} "
                        f"({'; '.join(per[n]['note'] for n in missing)})")
        return base
    roi = Roi(one, float(sum(per[s.name]["teacher_usd_per_month"] for s in scenarios)),
              float(sum(per[s.name]["student_usd_per_month"] for s in scenarios)),
              float(sum(per[s.name]["requests_per_month"] for s in scenarios)),
              inputs.horizon_months)
    return {**base, "scenario_basis": "portfolio: the scenarios are deployed together "
            "(portfolio: true), so the headline is their total, one student for all",
            **_headline(roi, _bands(scenarios, bills, target), inputs)}


def _headline(roi: Roi, bands: Bands, inputs: RoiInputs) -> dict:
    return {**roi.record(), "assumption": "the student is deployed on its cheapest feasible "
            "configuration per scenario; costs scale with request volume",
            "tornado": tornado(roi, bands),
            "monte_carlo": monte_carlo(roi, bands, inputs.monte_carlo_draws, inputs.seed),
            "cost_bands": {"teacher_usd_per_month": list(bands.teacher),
                           "student_usd_per_month": list(bands.student)}}


def outcomes(roi: dict) -> dict[str, Outcome]:
    """What the ROI's student changes in each scenario (for roi.decision.weigh)."""
    return {name: Outcome(r["changes_outcome"], r["outcome"])
            for name, r in (roi.get("per_scenario") or {}).items()}


def scenario_decisions(roi: dict, crit: list[Criterion], chosen: Optional[Candidate]) -> None:
    """Each scenario's own verdict, beside its ROI: go where the recommended student exists and
    a criterion counts there."""
    for name, r in (roi.get("per_scenario") or {}).items():
        mine = [c for c in crit if c.scenario == name]
        counted = [c.name for c in mine if c.counts]
        if chosen is None:
            go, why = False, "no student qualifies"
        elif not any(c.verdict == "met" for c in mine):
            go, why = False, "none of the seed's five criteria holds here"
        elif not counted:
            go, why = False, f"the student changes nothing here: {r['outcome']}"
        else:
            go, why = True, f"{', '.join(counted)}; {r['outcome']}"
        r["decision"], r["decision_reason"] = ("go" if go else "no-go"), why


def _bands(scenarios, bills, target: Candidate) -> Bands:
    """P10/P50/P90 of the two monthly costs, summed over `scenarios` (the grid's cost bands)."""
    per = {p["scenario"]: p for p in target.per_scenario}

    def total(rows, key) -> float:
        return float(sum(r[key] if r.get(key) is not None else r["usd_per_month"] for r in rows))

    teacher = [bills[s.name] for s in scenarios]
    student = [per[s.name] for s in scenarios]
    return Bands(tuple(total(teacher, k) for k in ("usd_per_month_p10", "usd_per_month",
                                                   "usd_per_month_p90")),
                 tuple(total(student, k) for k in ("usd_per_month_p10", "usd_per_month",
                                                   "usd_per_month_p90")))


def teacher_generation(inputs: RoiInputs, fwd: pd.DataFrame, teacher: str, hw) -> DataGenCost:
    """Teacher-generated training data (issue 9): priced on the training hardware at the
    teacher's generation rates there, or through an API."""
    prefill, decode, source = teacher_generation_rates(fwd, teacher, hw.name)
    return generation_cost(inputs.datagen, hardware=hw.name, usd_per_hour=hw.usd_per_hour or 0.0,
                           prefill_tokens_per_s=prefill, decode_tokens_per_s=decode,
                           rate_source=source)


def bf16_peak(hw) -> Optional[float]:
    v = hw.figure("peak_bf16_tflops")
    return v * 1e12 if v else None


def teacher_tokens_per_s(fwd: pd.DataFrame, teacher: str, hw) -> Optional[float]:
    rows = fwd[(fwd["hardware"] == hw.name) & (fwd["model"] == teacher)]
    rows = rows[np.isfinite(rows["fwd_ms_p50"].astype(float))]
    if rows.empty:
        return None
    tps = rows["batch_size"] * rows["seq_len"] / (rows["fwd_ms_p50"] / 1e3)
    return float(tps.max())


def measured_benefit(chosen: Optional[Candidate], bills: dict, roi: dict) -> tuple[bool, str]:
    """Does the recommended student change anything we measured? It saves money, or it meets a
    scenario where the teacher meets the SLA nowhere."""
    if chosen is None:
        return False, ""
    rescued = [s for s, b in bills.items() if b["basis"] != "cheapest configuration meeting "
               "the SLA"]
    if rescued:
        return True, (f"the teacher cannot meet {', '.join(rescued)} on any candidate "
                      f"hardware; the student can")
    saving = roi.get("monthly_savings_usd")
    if saving is None:
        return True, ""
    where = _headline_label(roi)
    if saving > 0:
        return True, (f"ROI: saves ${saving:,.0f}/month ({where}); pays back the "
                      f"${roi['one_time']['total_usd']:,.0f} one-time cost in "
                      f"{roi['payback_months']:.1f} months")
    return False, (f"no measured benefit: the teacher already meets every scenario and the "
                   f"student saves nothing ({where}: ${roi['teacher_usd_per_month']:,.0f}/month "
                   f"against the student's ${roi['student_usd_per_month']:,.0f})")


def _headline_label(roi: dict) -> str:
    """What the headline figures answer for: one scenario, or the declared portfolio."""
    if roi.get("scope") == "portfolio":
        return f"portfolio of {len(roi.get('portfolio') or [])} scenarios"
    return str(roi.get("scenario"))
