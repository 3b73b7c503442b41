"""The answer of a `roi run`: RUN/summary.json's content from the plan, the distillation's
metrics and the re-plan (summarize), and the one line the command prints (summary_line).
Pure: dicts in, dict or text out; app/run.py reads the files and writes summary.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional


def forecast_at(plan: dict, model: Optional[str], steps: Any) -> Optional[list]:
    """The plan's forecast (P10, P50, P90) of `model`'s KD retention at `steps`, if recorded."""
    for c in (plan.get("forecast") or {}).get("curves") or []:
        if c.get("model") == model and c.get("mode") == "kd":
            return (c.get("at_steps") or {}).get(str(steps))
    return None


def _replan_summary(replan: Optional[dict]) -> Optional[dict]:
    if not replan:
        return None
    unsure = replan["decision"].get("retention_unconfirmed") or {}
    rec = replan.get("recommended") or unsure
    return {"go": bool(replan["decision"]["go"]), "recommended": rec.get("model"),
            "steps": (replan.get("trainer") or {}).get("steps"),
            "retention_band": rec.get("retention_band"), "retention_p50": rec.get("retention_p50"),
            "retention_source": rec.get("retention_source"),
            "one_time_usd": ((replan.get("roi") or {}).get("one_time") or {}).get("total_usd"),
            "payback_months": (replan.get("roi") or {}).get("payback_months")}


def summarize(plan: dict, metrics: Optional[dict], state: dict, out: Path,
              replan: Optional[dict] = None) -> dict:
    d, rec, roi = plan["decision"], plan.get("recommended") or {}, plan.get("roi") or {}
    steps = state.get("steps", {})
    settings = (metrics or {}).get("settings") or {}
    at_run = forecast_at(plan, settings.get("student"), settings.get("steps"))
    achieved = achieved_retention(metrics)
    return {
        "go": bool(d["go"]),
        "retention_unconfirmed": d.get("retention_unconfirmed"),
        "reasons": list(d.get("reasons") or []),
        "stopped": state.get("stopped"),
        "recommended": rec.get("model"),
        "params": rec.get("params"),
        "compression_ratio": rec.get("compression_ratio"),
        "retention_band": rec.get("retention_band"),
        "retention_source": rec.get("retention_source"),
        "planned_steps": (plan.get("trainer") or {}).get("steps"),
        "scenario": answered_for(roi),
        "monthly_savings_usd": roi.get("monthly_savings_usd"),
        "payback_months": roi.get("payback_months"),
        "per_scenario": _per_scenario_summary(roi),
        "achieved_retention": achieved,
        "retention_metric": plan.get("retention_metric"),  # None: next-token accuracy
        "distilled_student": ((metrics or {}).get("settings") or {}).get("student"),
        "trainer_steps": ((metrics or {}).get("settings") or {}).get("steps"),
        "forecast_at_run_steps": at_run,
        "achieved_inside_forecast": (None if at_run is None or achieved is None
                                     else bool(at_run[0] <= achieved <= at_run[2])),
        "replan": _replan_summary(replan),
        "report": str(out / "report" / "report.html"),
        "steps_wall_s": {k: v.get("wall_s") for k, v in steps.items()},
    }


def achieved_retention(metrics: Optional[dict]) -> Optional[float]:
    """The distilled student's retention: next-token accuracy's, or the task's own (an
    encoder's metrics.json names it in retention_metric)."""
    m = metrics or {}
    return m.get("retention") if m.get("retention_metric") else m.get("retention_accuracy")


def answered_for(roi: dict) -> Optional[str]:
    """What the plan's headline savings answer for: a scenario's name, or 'portfolio (a, b)'
    where the scenarios were declared one portfolio; None without a figure."""
    if roi.get("monthly_savings_usd") is None:
        return None
    if roi.get("scope") == "portfolio":
        return f"portfolio ({', '.join(roi.get('portfolio') or [])})"
    return roi.get("scenario")


def _per_scenario_summary(roi: dict) -> dict:
    keys = ("monthly_savings_usd", "payback_months", f"net_{roi.get('horizon_months', 12)}"
            "_months_usd", "decision")
    return {name: {k: r.get(k) for k in keys}
            for name, r in (roi.get("per_scenario") or {}).items()}


def summary_line(s: dict) -> str:
    """The answer on one line."""
    report = f"report: {s['report']}"
    if s.get("stopped") == "no-go":
        why = (s["reasons"] or ["no reason given"])[0]
        return f"NO-GO: {why}. Stopped after the report (no distillation). {report}"
    unsure = not s["go"] and s.get("retention_unconfirmed")
    forced = not s["go"] and not s.get("stopped") and not unsure
    parts = ["GO" if s["go"] else "NO-GO for now: retention not confirmed, distilled to refine "
             "the forecast" if unsure else
             ("NO-GO (distilled anyway: force)" if forced else "NO-GO")]
    if unsure:
        lo = (unsure.get("retention_band") or [None])[0]
        parts.append(f"closest student {unsure['model']}: forecast P50 reaches the threshold "
                     f"at {unsure['steps_p50']:,} steps, P10 {lo:.1%} there" if lo is not None
                     else f"closest student {unsure['model']}")
    elif s.get("recommended"):
        parts.append(f"{'distill ' if s['go'] else 'closest student '}{s['recommended']} "
                     f"({_millions(s.get('params'))} params, "
                     f"{s.get('compression_ratio') or 0:.1f}x smaller)")
    saving, payback = s.get("monthly_savings_usd"), s.get("payback_months")
    if saving is not None:
        where = s.get("scenario")
        parts.append(f"{where + ' ' if where else ''}saves ${saving:,.0f}/month")
    parts.append("payback never" if payback is None else f"payback {payback:.1f} months")
    if s.get("achieved_retention") is not None:
        parts.append(_achieved_text(s))
        full = s.get("replan")
        if full:
            parts.append(_replan_text(full))
    elif s.get("stopped"):
        parts.append(f"stopped after the report: {s['stopped']}")
    return "; ".join(parts) + f". {report}"


def _replan_text(full: dict) -> str:
    """What the re-plan (the run's own result beside the pilots) says the full budget gives."""
    verdict = "GO" if full.get("go") else "NO-GO"
    if not full.get("recommended") or not full.get("retention_band") or not full.get("steps"):
        return f"re-planned with this run: {verdict}, no student qualifies"
    lo, hi = full["retention_band"]
    return (f"re-planned with this run: {verdict}, full budget: {full['recommended']} for "
            f"{full['steps']:,} steps is forecast to keep {lo:.1%}-{hi:.1%} (P10-P90) at a "
            f"one-time ${full['one_time_usd'] or 0:,.0f}")


def _achieved_text(s: dict) -> str:
    got, steps = s["achieved_retention"], s.get("trainer_steps")
    what = "achieved retention" + (f" ({s['retention_metric']})" if s.get("retention_metric")
                                   else "")
    warn = (" - above 100%: the student beats its teacher, so the teacher is likely "
            "undertrained and retention says little" if got > 1.0 else "")
    at = s.get("forecast_at_run_steps")
    if at is not None:
        verdict = "inside" if s.get("achieved_inside_forecast") else "outside"
        return (f"{what} {got:.1%} after {steps} steps (forecast {at[0]:.1%}-"
                f"{at[2]:.1%} for {steps} steps: {verdict}){warn}")
    band = s.get("retention_band") or [None, None]
    pred = (f" ({s.get('retention_source') or 'prior'} {band[0]:.0%}-{band[1]:.0%} for "
            f"{s.get('planned_steps')} steps)" if None not in band else "")
    return f"{what} {got:.1%}{pred} after {steps} steps{warn}"


def _millions(n: Any) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} M"
