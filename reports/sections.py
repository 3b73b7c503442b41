"""The report's sections in their order (SECTIONS), and the economic ones: the executive
summary, the decision framework and the return on investment. The others: deployment.py
(scenarios, sizing, edge, measurements), students.py (students, forecast, distillation plan),
achieved.py (predicted vs achieved, method); inputs.py holds what they are built from.

Each `*_section` function returns a Section and puts the PNGs it shows into `figures`. Cells and
sentences are display text made by reports.fmt, so a missing figure reads as a dash or says
why, never "nan" or "None".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.plan import BestFit, CostInput, Criterion, MeasuredPlan, RoiSection

from . import figures as fig
from . import fmt
from .achieved import achieved_section
from .deployment import (edge_economics_section, measurements_section, scenarios_section,
                         sizing_section)
from .document import Bullets, Facts, Heading, Section, Text
from .inputs import Figures, Inputs, answers_for, figure, table
from .students import distill_plan_section, forecast_section, students_section


# ------------------------------------------------------------------------------ summary


def _per_month(value: Any) -> str:
    return "not costed" if fmt.number(value) is None else fmt.usd(value) + " / month"


def _roi_matrix(plan: MeasuredPlan) -> list[dict]:
    """One row per scenario: the seed's expected cost reduction and latency improvement beside
    this plan's (the recommended or closest student on its cheapest configuration against the
    teacher on its own), the scenario's best-fit student and its decision."""
    seeds = {d.name: d.seed for d in plan.scenario_details or [] if d.seed}
    return [{"scenario": name,
             "cost reduction (seed)": fmt.text(seeds[name].inference_cost_reduction
                                               if name in seeds else None),
             "cost reduction (ours)": fmt.pct(r.cost_reduction),
             "latency improvement (seed)": fmt.text(seeds[name].latency_improvement
                                                    if name in seeds else None),
             "latency improvement (ours)": fmt.pct(r.latency_improvement),
             "best-fit student": _best_fit_text(r.best_fit),
             "decision": r.decision or fmt.DASH}
            for name, r in plan.roi.per_scenario.items()]


def summary_section(inp: Inputs, figures: Figures) -> Section:
    plan, roi, rec = inp.plan, inp.plan.roi, inp.recommended
    go, reasons = plan.decision.go, plan.decision.reasons
    if go and rec:
        lead = (f"GO: distill {inp.teacher} into {rec.model} ({fmt.params(rec.params)}"
                f" parameters, {fmt.num(rec.compression_ratio, 1)}× fewer).")
    elif plan.decision.retention_unconfirmed:
        lead = "NO-GO for now: " + fmt.text(plan.decision.retention_unconfirmed.reason) + "."
    else:
        lead = "NO-GO: " + (reasons[0] if reasons else "the plan gives no reason") + "."
    mc = roi.monte_carlo.monthly_savings_usd
    saved = fmt.number(roi.monthly_savings_usd) is not None
    facts = [
        ("Decision", "go" if go else "no-go"),
        ("Recommended student", f"{rec.model} ({fmt.params(rec.params)}, "
         f"{fmt.num(rec.compression_ratio, 1)}×)" if rec else
         "none qualifies (see why below)"),
        ("Retention band", f"{fmt.pct_band(rec.retention_band)} "
         f"({rec.retention_source or 'prior'})" if rec else fmt.DASH),
        ("Deploy as", f"{rec.deploy_backend} / {rec.deploy_dtype}" if rec else fmt.DASH),
        ("Figures below answer for", answers_for(roi)),
        ("Teacher cost", _per_month(roi.teacher_usd_per_month)),
        ("Student cost", _per_month(roi.student_usd_per_month)),
        ("Monthly savings", fmt.usd(roi.monthly_savings_usd, "not computed")
         + (f" (Monte Carlo P10–P90 {fmt.usd(mc.p10)}–{fmt.usd(mc.p90)})"
            if fmt.number(mc.p10) is not None else "")),
        ("One-time cost", fmt.usd(roi.one_time.total_usd)),
        ("Payback", fmt.months(roi.payback_months) if saved else "not computed"),
        (f"Net over {roi.horizon} months", fmt.usd(roi.net_usd)),
        ("Scenarios", ", ".join(plan.scenarios) or fmt.DASH),
    ]
    blocks = [Text(lead, "go" if go else "nogo")]
    matrix = _roi_matrix(plan)
    if matrix:
        blocks.append(table(matrix, "The seed's ROI matrix, recomputed from these measurements: "
                             "one deployment per row (never summed), the seed's ranges beside "
                             "ours"))
    blocks.append(Facts(tuple(facts)))
    headline = roi.per_scenario.get(roi.scenario or "")
    drivers = headline.band_drivers if headline else []
    if drivers:  # roi.fleet: a fleet whose P90 is far above its P50 widens the savings band
        blocks.append(Text("What widens the savings band: " + "; ".join(drivers) + ".", "note"))
    if reasons:
        blocks += [Heading("Why"), Bullets(tuple(reasons))]
    if plan.warnings:  # roi.sanity: measurements from a busy machine
        blocks += [Heading("Warnings"), Bullets(tuple(plan.warnings))]
    if roi.student_note:
        blocks.append(Text(roi.student_note, "note"))
    return Section("summary", "Executive summary", tuple(blocks))


# ------------------------------------------------------------------------------ decision


def _criterion_value(name: str, value: Any) -> str:
    if "bill" in name:
        return fmt.usd(value, "unknown") + " / month"
    if "latency" in name:
        return fmt.text(value, "unknown") + " ms"
    if "QPS" in name:
        return fmt.sig(value, 4, "unknown") + " QPS"
    return fmt.text(value, "unknown")


def _criterion_verdict(c: Criterion) -> str:
    """met / not met / unknown; a criterion met where the student changes nothing says so."""
    return c.verdict + (", not counted" if c.counted is False else "")


def _best_fit_text(b: BestFit | None) -> str:
    """The student this scenario alone would pick (roi.plan_roi.best_fit)."""
    if not b:
        return "none meets it"
    return (f"{b.model} ({fmt.params(b.params)}, {fmt.num(b.compression_ratio, 1)}×)"
            + ("" if b.retention_qualifies else ", retention not met"))


def _per_scenario_blocks(roi: RoiSection) -> list:
    """One row per scenario, each deployment's economics on its own (never summed), and the
    portfolio total only where the plan declares one."""
    if not roi.per_scenario:
        return []
    horizon = roi.horizon
    rows = [{"scenario": name,
             "student": r.student or fmt.DASH,
             "best-fit student": _best_fit_text(r.best_fit),
             "one-time cost": fmt.usd(r.one_time_usd),
             "cost reduction": fmt.pct(r.cost_reduction),
             "savings / month": fmt.usd(r.monthly_savings_usd, "not costed"),
             "payback": fmt.months(r.payback_months) if fmt.number(
                 r.monthly_savings_usd) is not None else "not costed",
             f"net over {horizon} months": fmt.usd(r.net_over(horizon)),
             "decision": r.decision or fmt.DASH,
             "why": r.decision_reason or r.note or fmt.DASH}
            for name, r in roi.per_scenario.items()]
    blocks: list = [table(rows, "One answer per scenario: each deployment's economics for "
                           "its own student (its best fit where one qualifies on retention, "
                           "else the closest candidate, for comparison) and that student's "
                           "one-time cost")]
    if roi.scope == "portfolio" and fmt.number(roi.monthly_savings_usd) is not None:
        blocks.append(Text(
            f"Portfolio (declared deployed together): {fmt.usd(roi.monthly_savings_usd)} / "
            f"month saved in total, payback {fmt.months(roi.payback_months)}, net "
            f"{fmt.usd(roi.net_usd)} over {horizon} months."))
    return blocks


def decision_section(inp: Inputs, figures: Figures) -> Section:
    decision = inp.plan.decision
    rows = [{"scenario": c.scenario or fmt.DASH, "criterion": c.name,
             "value": _criterion_value(c.name, c.value),
             "threshold": _criterion_value(c.name, c.threshold),
             "verdict": _criterion_verdict(c), "why": c.reason}
            for c in decision.criteria]
    blocks: list = [Text("The seed's rule: distillation is worth pursuing if any of five "
                         "criteria holds. A criterion that holds counts only in a scenario whose "
                         "outcome the student changes (it saves money there, or meets an SLA or "
                         "memory limit the teacher cannot); elsewhere it reads \"met, not "
                         "counted\" and says why. This planner adds two checks before saying go: a "
                         "student must qualify (retention band above the threshold, meets every "
                         "scenario) and bring a measured benefit (it saves money, or meets a "
                         "scenario the teacher cannot).")]
    blocks.append(table(rows, "Every criterion, per scenario") if rows else
                  Text("The plan lists no criteria.", "note"))
    blocks += _per_scenario_blocks(inp.plan.roi)
    if decision.reasons:
        blocks += [Heading("Decision: " + ("go" if decision.go else "no-go")),
                   Bullets(tuple(decision.reasons))]
    return Section("decision", "Decision framework", tuple(blocks))


# ------------------------------------------------------------------------------ ROI


def roi_section(inp: Inputs, figures: Figures) -> Section:
    roi = inp.plan.roi
    one, horizon = roi.one_time, roi.horizon
    blocks: list = [Facts((
        ("Savings, payback and sensitivity answer for", answers_for(roi)),
        ("Labeling (teacher inference)", fmt.usd(one.labeling_usd)),
        ("Training", fmt.usd(one.training_usd)),
        ("Engineering", fmt.usd(one.engineering_usd)),
        ("One-time total", fmt.usd(one.total_usd)),
        ("Break-even volume", fmt.sig(roi.break_even_requests_per_month, 3,
                                      "never (no savings)") + " requests / month"),
    ))]
    inputs = [{"input": k.replace("_", " "), "value": fmt.text(v.value),
               "source": v.source or (f"catalog price {fmt.usd(v.usd_per_hour)} / hour"
                                      if "usd_per_hour" in v.model_fields_set else fmt.DASH)}
              for k, v in one.inputs.items() if isinstance(v, CostInput)]
    if inputs:
        blocks.append(table(inputs, "One-time cost inputs and where each comes from"))
    if roi.note:
        blocks.append(Text(roi.note.capitalize() + ": no payback curve or tornado.", "note"))
        return Section("roi", "Return on investment", tuple(blocks))
    mc = roi.monte_carlo
    savings = mc.monthly_savings_usd
    point = fmt.number(roi.monthly_savings_usd)
    blocks.append(figure(
        figures, "payback_curve",
        fig.payback_curve(fmt.number(one.total_usd), (savings.p10, point, savings.p90), horizon,
                          fmt.number(roi.payback_months)),
        "Payback curve",
        f"Cumulative net = −one-time cost + monthly savings × months; the band is the seeded "
        f"Monte Carlo's P10–P90 of savings ({fmt.num(mc.draws, 0)} draws, seed "
        f"{fmt.text(mc.seed)}) over the teacher and student cost bands.",
        "the savings could not be computed."))
    blocks.append(Text(
        f"Monte Carlo: savings P10/P50/P90 {fmt.usd(savings.p10)} / "
        f"{fmt.usd(savings.p50)} / {fmt.usd(savings.p90)} per month; probability "
        f"the student saves money {fmt.pct(mc.probability_savings_positive, 0)}."))
    tor = roi.tornado
    base = fmt.number(roi.net_usd)
    blocks.append(figure(
        figures, "tornado", fig.tornado(tor, base, horizon),
        "Tornado chart",
        f"Net over {horizon} months with one input at its low or high value and the others at "
        f"base (one-at-a-time sensitivity).", "the plan holds no sensitivity rows."))
    if tor:
        blocks.append(table([{"input": r.input, "low": fmt.sig(r.low_value),
                               "high": fmt.sig(r.high_value),
                               "net at low": fmt.usd(r.net_at_low_usd),
                               "net at high": fmt.usd(r.net_at_high_usd),
                               "swing": fmt.usd(r.swing_usd)} for r in tor],
                             "Sensitivity"))
    if roi.assumption:
        blocks.append(Text("Assumption: " + roi.assumption + ".", "note"))
    return Section("roi", "Return on investment", tuple(blocks))


SECTIONS: tuple[Callable[[Inputs, Figures], Section], ...] = (
    summary_section, decision_section, scenarios_section, sizing_section,
    edge_economics_section, measurements_section, students_section, forecast_section, roi_section,
    distill_plan_section, achieved_section)
