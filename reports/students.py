"""The report's training sections: the candidate students and their retention, the retention
forecast by training budget, and the distillation plan (the trainer's settings).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from contracts.defaults import RETENTION_THRESHOLD
from contracts.plan import (Budget, Calibration, Candidate, ForecastCurve, PilotCompute, Recommended,
                            RoiSection)

from . import figures as fig
from . import fmt
from .document import Bullets, Section, Text
from .inputs import Figures, Inputs, figure, table


def _candidate_verdict(c: Recommended | Candidate) -> str:
    if isinstance(c, Recommended):
        return "recommended"
    return "qualifies" if c.qualifies else "; ".join(c.reasons or []) or "does not qualify"


def _money_column(roi: RoiSection) -> str:
    if roi.scope == "scenario" and roi.scenario:
        return f"USD / month ({roi.scenario})"
    return "USD / month" + (" (portfolio total)" if roi.scope == "portfolio" else "")


def _pareto_points(inp: Inputs) -> pd.DataFrame:
    roi = inp.plan.roi
    teacher_cost = fmt.number(roi.teacher_usd_per_month)
    rows = [{"model": inp.teacher, "usd_per_month": teacher_cost, "retention_lo": 1.0,
             "retention_hi": 1.0, "kind": "teacher"}] if teacher_cost is not None else []
    for c in inp.candidates:
        band = c.retention_band or [None, None]
        if fmt.number(band[0]) is None or fmt.number(band[1]) is None:
            continue
        kind = "recommended" if isinstance(c, Recommended) else \
            ("qualifies" if c.qualifies else "fails")
        rows.append({"model": c.model, "usd_per_month": inp.headline_cost(c),
                     "retention_lo": float(band[0]), "retention_hi": float(band[1]),
                     "kind": kind})
    df = pd.DataFrame(rows, columns=["model", "usd_per_month", "retention_lo", "retention_hi",
                                     "kind"])
    return df.astype({"usd_per_month": float})


def students_section(inp: Inputs, figures: Figures) -> Section:
    threshold = fmt.number(inp.plan.retention_threshold)
    roi = inp.plan.roi
    rows = [{"student": c.model, "params": fmt.params(c.params),
             "compression": fmt.num(c.compression_ratio, 1) + "×",
             "retention band": fmt.pct_band(c.retention_band),
             "retention source": c.retention_source or fmt.DASH,
             "deploy": f"{c.deploy_backend}/{c.deploy_dtype}",
             _money_column(roi): fmt.usd(inp.headline_cost(c), "not costed"),
             "verdict": _candidate_verdict(c)} for c in inp.candidates]
    achieved = fmt.number(inp.distilled.retention_accuracy if inp.distilled else None)
    metric = inp.plan.retention_metric
    png = fig.pareto(_pareto_points(inp), threshold, achieved, inp.trained)
    blocks: list = [
        Text(f"Retention comes from the seed's priors (50× keeps 92–98%, 20× 95–99%, 5× "
             f"98–99.5%), interpolated in log compression ratio, unless a measured metrics.json "
             f"replaces it. The recommended student is the cheapest whose band's low end reaches "
             f"the {fmt.pct(threshold, 0)} threshold and that meets every scenario."
             + (f" Retention here is the task's own metric, the {metric}; the priors (published"
                " pairs, measured on their tasks' accuracy) stand in for it until a "
                "distillation measures it." if metric else "")),
        figure(figures, "retention_pareto", png, "Retention vs cost Pareto front",
                "Retention band (prior or measured) against the monthly cost "
                + _cost_scope(roi)
                + "; the dashed line joins the points no other beats on both.",
                "no candidate is costed on every scenario."),
        table(rows, "Candidate students, ranked") if rows else
        Text("The plan has no student candidates.", "note")]
    notes = _retention_notes(inp)
    if notes:
        blocks.append(Bullets(tuple(notes)))
    return Section("students", "Students and retention", tuple(blocks))


def _cost_scope(roi: RoiSection) -> str:
    if roi.scope == "scenario" and roi.scenario:
        return f"in {roi.scenario} (the scenario the ROI answers for)"
    return "summed over the scenarios" + (" (a declared portfolio)"
                                          if roi.scope == "portfolio" else "")


def _retention_notes(inp: Inputs) -> list[str]:
    return [c.retention_note for c in inp.candidates if c.retention_note]


def _grids(inp: Inputs) -> dict[str, dict[str, list]]:
    """model -> {"kd": rows, "ce": rows}: the plan's forecast grids (roi.budget)."""
    return {c.model: {"kd": [g.document() for g in c.budget.grid],
                      "ce": [g.document() for g in c.budget.baseline_grid]}
            for c in inp.candidates if c.budget and c.budget.grid}


def _steps_text(n: Any) -> str:
    v = fmt.number(n)
    return "not reached" if v is None else fmt.num(v, 0)


def _steps_pair(curve: ForecastCurve) -> str:
    """Steps to the threshold at P10 / P50."""
    return (f"{_steps_text(curve.steps_to_threshold_p10)} / "
            f"{_steps_text(curve.steps_to_threshold_p50)}")


def _forecast_rows(inp: Inputs) -> list[dict]:
    rows = []
    for c in inp.candidates:
        kd, ce = (inp.plan.forecast.curve(c.model, m) for m in ("kd", "ce"))
        if not kd:
            continue
        b = c.budget or Budget()
        gain = inp.kd_gain(c.budget)
        gain = fmt.DASH if gain is None else f"{gain.points:+.1f} points (at {gain.steps:,} steps)"
        rows.append({"student": c.model,
                     "KD: steps to threshold (P10 / P50)": _steps_pair(kd),
                     "baseline: steps (P10 / P50)": _steps_pair(ce) if ce else fmt.DASH,
                     "budget chosen": fmt.num(b.steps, 0) + " steps",
                     "retention there (P10–P90)": fmt.pct_band(b.retention_band),
                     "KD gain there (P50)": gain,
                     "at the largest budget (P50)": fmt.pct(kd.p50_at_max_steps),
                     "one-time cost": fmt.usd(b.one_time_usd)})
    return rows


def forecast_section(inp: Inputs, figures: Figures) -> Section:
    title = "Retention forecast"
    f = inp.plan.forecast
    if not f.curves:
        why = f.source or "the plan predates forecasts"
        notes = _retention_notes(inp)
        return Section("forecast", title, (Text(
            f"No forecast ({why}). Retention is the seed's prior over compression ratio, the "
            "same at any training budget; the project's own runs show it depends on the budget "
            "(`roi pilot`, then `roi plan --pilot`, forecasts it).", "note"),
            *([Bullets(tuple(notes))] if notes else [])))
    cal = f.calibration.get("kd") or Calibration()
    threshold = fmt.number(f.threshold) or RETENTION_THRESHOLD
    trained = inp.trained
    ran = fmt.number(inp.distilled.steps if inp.distilled else None)
    got = fmt.number(inp.distilled.retention_accuracy if inp.distilled else None)
    achieved = (ran, got) if ran is not None and got is not None else None
    png = fig.learning_curves(f.curves, _grids(inp), threshold,
                              trained, fmt.number(inp.plan.trainer.steps),
                              achieved, inp.colors)
    blocks: list = [
        Text(f"From pilot distillations of up to {fmt.num(f.longest_pilot_steps, 0)} "
             f"steps ({fmt.num(fmt.number(f.batch_tokens), 0)} tokens each), every "
             f"student's retention is forecast for budgets up to "
             f"{fmt.num(f.max_steps, 0)} steps; each student's budget is the fewest steps "
             f"whose P10 reaches the {fmt.pct(threshold, 0)} threshold. Method: {f.method}."
             f" Band calibration: {fmt.text(cal.source)} (kappa "
             f"{fmt.num(cal.kappa, 3)}, noise {fmt.num(cal.noise, 4)} in "
             f"{fmt.text(cal.units or 'log loss')}).{_pilot_cost_text(f.pilot_compute)}"),
        figure(figures, "learning_curves", png, "Retention forecast by training budget",
                "Pilot points (filled: KD, open: no-KD baseline), the fitted P50 per student and "
                "mode, the P10–P90 band of the student trained (or planned), the threshold, the "
                "planned budget and, after a run, the retention it achieved.",
                "no student has a forecast grid."),
        table(_forecast_rows(inp), "Steps to the threshold and the budget chosen, per student")]
    failed = [f"{c.model} ({c.mode}): {c.reason}" for c in f.failed]
    if failed:
        blocks.append(Bullets(tuple(f"not forecast: {x}" for x in failed)))
    if inp.replan:
        blocks.append(_replan_text(inp))
    return Section("forecast", title, tuple(blocks))


def _pilot_cost_text(pc: PilotCompute) -> str:
    """What the pilots cost beside the distillation they plan, where both are known."""
    flops, share = fmt.number(pc.pilot_flops), fmt.number(pc.share)
    if flops is None:
        return ""
    out = f" The pilots cost {flops:.2g} FLOPs"
    if share is not None:
        out += f", {fmt.pct(share, 1)} of the distillation they plan (KD and baseline)"
    return out + f" ({fmt.text(pc.basis)})."


def _replan_text(inp: Inputs) -> Text:
    """What the plan says once the run's own result joins the pilots."""
    rp = inp.replan
    rec = rp.recommended if rp else None
    if rec is None:
        return Text(f"Re-planned with the distillation's own result: no student qualifies "
                    f"({fmt.text(rp.no_recommendation_reason if rp else None)}).", "note")
    return Text(f"Re-planned with the distillation's own result beside the pilots: "
                f"{rec.model} at {fmt.num(rp.trainer.steps, 0)} steps, forecast "
                f"retention {fmt.pct_band(rec.retention_band)} (P10–P90; P50 "
                f"{fmt.pct(rec.retention_p50)}), one-time cost "
                f"{fmt.usd(rec.budget.one_time_usd if rec.budget else None)}. `roi distill "
                "--plan replan/plan.yaml` runs it.")


def distill_plan_section(inp: Inputs, figures: Figures) -> Section:
    trainer, go = inp.plan.trainer, inp.plan.decision.go
    rows = [{"setting": k, "value": fmt.text(v)} for k, v in trainer.document().items()]
    student = inp.student(inp.planned)
    blocks: list = [Text(
        f"Train {inp.planned or fmt.DASH} ({fmt.params(student and student.params)} "
        f"parameters, {fmt.num(student and student.compression_ratio, 1)}× fewer than the "
        f"teacher) from "
        f"{inp.teacher} by knowledge distillation, then a no-KD baseline of the same size and "
        f"steps; export to ONNX and dynamic int8 and measure all of them on the held-out split: "
        f"`roi distill --plan plan/plan.yaml --out distill`.")]
    if not go:
        blocks.append(Text("The plan is no-go: `roi distill` refuses it unless given --force.",
                           "note"))
    if inp.plan.trainer_note:
        blocks.append(Text(inp.plan.trainer_note, "note"))
    blocks.append(table(rows, "Trainer settings (plan.yaml's trainer section)") if rows else
                  Text("The plan has no trainer section.", "note"))
    return Section("distill-plan", "Distillation plan", tuple(blocks))
