"""The decision report of a plan for a teacher known only by its config (roi.llm_plan): the same
Report document as a measured run's (reports.document), so it renders to the same Markdown and
self-contained HTML, with its own figures: cost per month with its band, end-to-end latency
against the SLA, and retention against cost reduction. Every figure in it is projected."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from contracts.plan import LLMModelRow, LLMPlan, LLMScenario

from . import figure_kit as kit
from . import fmt
from .document import Bullets, Facts, Figure, Report, Section, Table, Text
from .markdown import escape, table

LLM_PLAN_COLUMNS = {"model": "model", "role": "role", "params": "params", "hardware": "hardware",
                    "dtype": "dtype", "tp": "TP", "gpus": "GPUs", "ttft_ms": "TTFT ms",
                    "tpot_ms": "TPOT ms", "e2e_ms": "e2e ms", "usd_per_month": "USD/month",
                    "usd_per_1m_output_tokens": "USD/1M out tok",
                    "cost_reduction": "cost cut", "retention_low": "retention low",
                    "retention_high": "retention high", "meets_sla": "meets SLA"}
TITLE = "Distillation ROI report (projected from configs)"


def _models(sc: LLMScenario) -> pd.DataFrame:
    """One scenario's model rows as a table (every column, as written)."""
    return pd.DataFrame([m.document() for m in sc.models])


def llm_plan_markdown(plan: LLMPlan) -> str:
    """The plan as a short Markdown decision report (tables per scenario)."""
    d = plan.decision
    lines = [f"# Distill {escape(plan.teacher)}? {'GO' if d.go else 'NO-GO'}", "",
             *[f"- {escape(r)}" for r in d.reasons], "",
             f"Recommended student: {escape(plan.recommended.model or 'none')} (retention "
             f"threshold {plan.retention_threshold:.0%}). Every figure is projected.", ""]
    for sc in plan.scenarios:
        frame = _models(sc)
        cols = {k: v for k, v in LLM_PLAN_COLUMNS.items() if k in frame.columns}
        lines += [f"## {escape(sc.scenario)} ({escape(sc.sla)})", "",
                  table(frame, cols, digits=3), *[f"- {escape(n)}" for n in sc.notes], ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ the report


def llm_report(plan: LLMPlan, title: str = TITLE) -> Report:
    """The plan of `roi plan --teacher config:...` as a Report (render with reports.write)."""
    figures: dict[str, bytes] = {}
    sections = (_summary(plan), _decision(plan), _scenarios(plan, figures), _method(plan))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    names = ", ".join(sc.scenario for sc in plan.scenarios) or "no scenario"
    subtitle = (f"Teacher {plan.teacher} (architecture only: nothing was run); scenarios: "
                f"{names}. Generated {when}.")
    return Report(title, subtitle, sections, figures)


def _summary(plan: LLMPlan) -> Section:
    d, rec = plan.decision, plan.recommended.model
    head = (f"{'GO' if d.go else 'NO-GO'}: distill {plan.teacher} to {rec}." if rec
            else f"{'GO' if d.go else 'NO-GO'}: no student meets these constraints.")
    facts = [("decision", "GO" if d.go else "NO-GO"), ("recommended student", rec or "none"),
             ("retention threshold", fmt.pct(plan.retention_threshold, 0))]
    for sc in plan.scenarios:
        teacher = sc.row(plan.teacher)
        student = sc.row(rec) if rec else None
        if teacher is not None:
            facts.append((f"{sc.scenario}: teacher", _cost_text(teacher)))
        if student is not None:
            facts.append((f"{sc.scenario}: {rec}", _cost_text(student)
                          + f", {fmt.pct(student.cost_reduction)} cheaper"))
    return Section("summary", "Summary", (
        Text(head, "lead"), Facts(tuple(facts)), Bullets(tuple(d.reasons)),
        Text("Every figure here is projected from the architectures and the catalog's "
             "datasheets with stated efficiency bands; no model was run. Measure one TPOT on the "
             "target GPU to pin the decode efficiency, the input the decision is most "
             "sensitive to.", "note")))


def _cost_text(row: LLMModelRow) -> str:
    return (f"{fmt.usd_band(row.usd_per_month, row.usd_per_month_optimistic, row.usd_per_month_pessimistic)}"  # noqa: E501
            f"/month on {row.hardware} {row.dtype} TP{row.tp}")


def _decision(plan: LLMPlan) -> Section:
    rows = [{"scenario": c.scenario or "", "criterion": c.name,
             "value": fmt.sig(c.value), "threshold": fmt.sig(c.threshold),
             "verdict": c.verdict, "why": c.reason}
            for c in plan.decision.criteria]
    frame = pd.DataFrame(rows).map(lambda v: v if isinstance(v, str) else fmt.text(v))
    return Section("decision", "Decision", (
        Text("The seed's decision framework, each criterion with its value and verdict."),
        Table(frame)))


def _scenarios(plan: LLMPlan, figures: dict[str, bytes]) -> Section:
    blocks: list = []
    for sc in plan.scenarios:
        frame = _models(sc)
        cols = {k: v for k, v in LLM_PLAN_COLUMNS.items() if k in frame.columns}
        shown = frame[list(cols)].copy()
        for col in ("cost_reduction", "retention_low", "retention_high"):
            if col in shown:
                shown[col] = shown[col].map(fmt.pct)
        shown = shown.rename(columns=cols).map(_cell)
        blocks += [Text(sc.sla, "lead"),
                   Table(shown, "Cheapest configuration per model that meets the SLA "
                         "(middle of the efficiency band).")]
        if sc.notes:
            blocks.append(Bullets(tuple(sc.notes)))
    for name, png, caption, method in (
            ("llm-cost", cost_figure(plan), "Monthly cost per model and scenario",
             "Projected: GPUs needed × price × 730 h; whiskers span the pessimistic and "
             "optimistic efficiency bands."),
            ("llm-latency", latency_figure(plan), "End-to-end latency against the SLA",
             "Projected: TTFT + output tokens × TPOT at the batch chosen; the dashed line is "
             "the scenario's bound."),
            ("llm-retention", retention_figure(plan), "Retention prior against cost reduction",
             "Retention: the seed's prior band for the compression ratio; cost reduction "
             "against the teacher in the same scenario.")):
        if png is None:
            why = kit.missing() or "no model meets any scenario."
            blocks.append(Text(f"No {caption.lower()} figure: {why}", "note"))
        else:
            figures[name] = png
            blocks.append(Figure(name, caption, method))
    return Section("scenarios", "Scenarios", tuple(blocks))


def _cell(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    return fmt.sig(v)


def _method(plan: LLMPlan) -> Section:
    rows = {}
    for sc in plan.scenarios:
        for name, a in sc.assumptions.items():
            rows[name] = {"assumption": name, "pessimistic": fmt.sig(a.pessimistic),
                          "optimistic": fmt.sig(a.optimistic), "source": str(a.source or "")}
    blocks: list = [Text("Prefill is compute-bound and decode reads the weights and KV cache "
                         "every step (roi/llm_serving.py); continuous batching up to the KV "
                         "cache limit; tensor parallelism with an all-reduce term. Efficiencies "
                         "are bands, each with its source:")]
    if rows:
        blocks.append(Table(pd.DataFrame(list(rows.values()))))
    note = plan.trainer.note
    if note:
        blocks.append(Text(note, "note"))
    return Section("method", "Method and assumptions", tuple(blocks))


# ------------------------------------------------------------------------------ figures


def _frame(plan: LLMPlan) -> pd.DataFrame:
    rows = [{**m.document(), "scenario": sc.scenario, "bound_ms": _bound_ms(sc)}
            for sc in plan.scenarios for m in sc.models]
    df = pd.DataFrame(rows)
    if df.empty or "usd_per_month" not in df:
        return df
    return df[pd.to_numeric(df["usd_per_month"], errors="coerce").notna()]


def _bound_ms(sc: LLMScenario) -> float | None:
    """The end-to-end bound written in the SLA text ('... <= 100 ms'), if it has one."""
    import re

    m = re.search(r"end-to-end <= ([0-9.,]+) ms", sc.sla)
    return float(m.group(1).replace(",", "")) if m else None


def cost_figure(plan: LLMPlan) -> bytes | None:
    return kit.render(_panels, _frame(plan), plan.teacher, plan.recommended.model,
                       _cost_panel, "USD per month")


def latency_figure(plan: LLMPlan) -> bytes | None:
    frame = _frame(plan)
    if "e2e_ms" not in frame:
        return None
    return kit.render(_panels, frame, plan.teacher, plan.recommended.model,
                       _latency_panel, "end-to-end ms per request")


def _panels(df: pd.DataFrame, teacher: str, recommended: str | None, draw, ylabel: str):
    """One panel per scenario, a bar group per model (teacher grey, recommended red)."""
    if df.empty:
        return None
    scenarios = list(dict.fromkeys(df["scenario"]))
    colors = kit.model_colors(list(dict.fromkeys(df["model"])), teacher, recommended or "")
    figure, axes = kit.grid(len(scenarios), 2)
    for ax, name in zip(axes, scenarios):
        d = df[df["scenario"] == name]
        x = np.arange(len(d))
        draw(ax, d, x, [colors[m] for m in d["model"]])
        ax.set_xticks(x, [kit.short(str(m).removeprefix("config:"), 14) for m in d["model"]],
                      rotation=30, ha="right")
        ax.set_title(name)
        ax.set_ylabel(ylabel)
    return figure


def _cost_panel(ax, d: pd.DataFrame, x: np.ndarray, colors: list[str]) -> None:
    mid = d["usd_per_month"].to_numpy(float)
    lo = d.get("usd_per_month_optimistic", d["usd_per_month"]).to_numpy(float)
    hi = d.get("usd_per_month_pessimistic", d["usd_per_month"]).to_numpy(float)
    ax.bar(x, mid, color=colors)
    ax.errorbar(x, mid, yerr=[mid - np.minimum(lo, mid), np.maximum(hi, mid) - mid],
                fmt="none", ecolor="black", capsize=3, lw=1)
    ax.set_yscale("log")
    kit.usd_axis(ax.yaxis, minor=False)


def _latency_panel(ax, d: pd.DataFrame, x: np.ndarray, colors: list[str]) -> None:
    fastest = d.get("fastest_e2e_ms", pd.Series(np.nan, index=d.index)).to_numpy(float)
    ax.bar(x - 0.2, fastest, 0.4, color=colors, alpha=0.45, label="fastest (batch 1)")
    ax.bar(x + 0.2, d["e2e_ms"].to_numpy(float), 0.4, color=colors,
           label="at the cost-optimal batch")
    bound = d["bound_ms"].iloc[0]
    if bound is not None and np.isfinite(bound):
        ax.axhline(bound, ls="--", color="black", lw=1, label=f"SLA {fmt.sig(bound)} ms")
    top = np.nanmax([np.nanmax(d["e2e_ms"].to_numpy(float)), bound or 0.0])
    ax.set_ylim(0, 1.45 * top)  # room for the legend above the bars
    ax.legend(loc="upper left", ncol=2)


def retention_figure(plan: LLMPlan) -> bytes | None:
    return kit.render(_retention, _frame(plan), plan.retention_threshold)


def _retention(df: pd.DataFrame, threshold: float):
    if df.empty or "retention_low" not in df:
        return None
    d = df[df["role"] != "teacher"]
    if d.empty:
        return None
    figure = kit.new(6.5, 3.6)
    ax = figure.subplots()
    models = list(dict.fromkeys(d["model"]))
    colors = dict(zip(models, kit.PALETTE * 4))
    markers = dict(zip(dict.fromkeys(d["scenario"]), "osD^v"))
    for _, r in d.iterrows():
        x = 100 * float(r["cost_reduction"])
        lo, hi = 100 * float(r["retention_low"]), 100 * float(r["retention_high"])
        ax.plot([x, x], [lo, hi], color=colors[r["model"]], lw=2)
        ax.plot([x], [(lo + hi) / 2], marker=markers[r["scenario"]], color=colors[r["model"]])
    ax.axhline(100 * threshold, ls="--", color="black", lw=1,
               label=f"threshold {fmt.pct(threshold, 0)}")
    for m in models:
        ax.plot([], [], color=colors[m], lw=2, label=str(m).removeprefix("config:"))
    for name, mk in markers.items():
        ax.plot([], [], marker=mk, ls="", color="#777777", label=name)
    ax.set_xlabel("cost reduction against the teacher, %")
    ax.set_ylabel("retention prior band, %")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return figure
