"""The report's sections, built from the results table, the plan document, and (when present) the
distillation metrics and a benchmark of the distilled student.

Each `*_section` function returns a Section and puts the PNGs it shows into `figures`. Cells and
sentences are display text made by reports.fmt, so a missing figure reads as a dash or says
why, never "nan" or "None".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from roi.readout import (band_verdict, best_cost, kd_gain, latency_pairs, local_latency_ratio,
                         ok_results, range_verdict, reduction, scenario_cost, weights_ratio)
from roi.sanity import distill_warnings

from . import figures as fig
from . import fmt
from .document import Bullets, Facts, Figure, Heading, Section, Table, Text

Figures = dict[str, bytes]


@dataclass(frozen=True)
class Inputs:
    """What a report is made of. plan: the plan document (plan.json / Plan.to_dict())."""

    plan: dict
    results: pd.DataFrame | None = None
    metrics: dict | None = None
    student_results: pd.DataFrame | None = None
    origin: dict[str, str] = field(default_factory=dict)  # input -> where it was read from
    replan: dict | None = None  # the plan again with the run's own result (roi run)

    @property
    def teacher(self) -> str:
        return str((self.plan.get("teacher") or {}).get("model") or "teacher")

    @property
    def recommended(self) -> dict | None:
        return self.plan.get("recommended")

    @property
    def planned(self) -> str:
        """The student the trainer section names (recommended, or the closest candidate)."""
        return str((self.plan.get("trainer") or {}).get("student") or "")

    @property
    def trained(self) -> str:
        """The student actually distilled (metrics.json's settings) when it is one of the
        plan's candidates, else the planned one."""
        done = ((self.metrics or {}).get("settings") or {}).get("student")
        known = {c.get("model") for c in self.candidates}
        return str(done) if done in known else self.planned

    @property
    def candidates(self) -> list[dict]:
        rec = [{**self.recommended, "qualifies": True, "recommended": True}] \
            if self.recommended else []
        return rec + list(self.plan.get("alternatives") or [])

    @property
    def models(self) -> list[str]:
        """Teacher first, then students from the largest down."""
        students = sorted(self.candidates, key=lambda c: -(fmt.number(c.get("params")) or 0))
        return [self.teacher] + [str(c["model"]) for c in students]

    @property
    def colors(self) -> dict[str, str]:
        rec = self.recommended["model"] if self.recommended else self.trained
        return fig.model_colors(self.models, self.teacher, rec)


def _table(rows: list[dict], caption: str = "") -> Table:
    """A Table of display strings; values that are not text yet go through fmt.text."""
    df = pd.DataFrame(rows)
    return Table(df.map(lambda v: v if isinstance(v, str) and v else fmt.text(v)), caption)


def _figure(figures: Figures, name: str, png: bytes | None, caption: str, method: str,
            missing: str) -> Figure | Text:
    """The Figure block when there is a PNG, else a note saying why there is none."""
    if png is None:
        return Text(f"No {caption[0].lower() + caption[1:]} figure: {missing}", "note")
    figures[name] = png
    return Figure(name, caption, method)


def _scenario_details(plan: dict) -> list[dict]:
    details = {d.get("name"): d for d in plan.get("scenario_details") or []}
    return [details.get(s) or {"name": s} for s in plan.get("scenarios") or []]


def _sizing_lookup(plan: dict) -> dict[tuple, dict]:
    return {(r["scenario"], r["hardware"], r["model"]): r for r in plan.get("sizing") or []}


# ------------------------------------------------------------------------------ summary


def _per_month(value: Any) -> str:
    return "not costed" if fmt.number(value) is None else fmt.usd(value) + " / month"


def _answers_for(roi: dict) -> str:
    """What the plan's headline ROI figures are: one scenario's, or a declared portfolio's."""
    if roi.get("scope") == "portfolio":
        return ("portfolio: " + ", ".join(roi.get("portfolio") or []) + " (declared deployed "
                "together: totals across them)")
    name = roi.get("scenario")
    if not name:
        return "no scenario (no savings figure)" if roi.get("per_scenario") else fmt.DASH
    others = len(roi.get("per_scenario") or {}) - 1
    return name + (f" alone, where the student saves most; the other {others} scenario"
                   f"{'s' if others > 1 else ''} are separate answers (Decision framework)"
                   if others > 0 else "")


def _roi_matrix(plan: dict) -> list[dict]:
    """One row per scenario: the seed's expected cost reduction and latency improvement beside
    this plan's (the recommended or closest student on its cheapest configuration against the
    teacher on its own), the scenario's best-fit student and its decision."""
    per = (plan.get("roi") or {}).get("per_scenario") or {}
    seeds = {d.get("name"): d.get("seed") or {} for d in plan.get("scenario_details") or []}
    return [{"scenario": name,
             "cost reduction (seed)": fmt.text(seeds.get(name, {}).get(
                 "inference_cost_reduction")),
             "cost reduction (ours)": fmt.pct(r.get("cost_reduction")),
             "latency improvement (seed)": fmt.text(seeds.get(name, {}).get(
                 "latency_improvement")),
             "latency improvement (ours)": fmt.pct(r.get("latency_improvement")),
             "best-fit student": _best_fit_text(r.get("best_fit")),
             "decision": r.get("decision") or fmt.DASH}
            for name, r in per.items()]


def summary_section(inp: Inputs, figures: Figures) -> Section:
    plan, roi, rec = inp.plan, inp.plan.get("roi") or {}, inp.recommended
    go = bool((plan.get("decision") or {}).get("go"))
    reasons = list((plan.get("decision") or {}).get("reasons") or [])
    if go and rec:
        lead = (f"GO: distill {inp.teacher} into {rec['model']} ({fmt.params(rec.get('params'))}"
                f" parameters, {fmt.num(rec.get('compression_ratio'), 1)}× fewer).")
    elif (plan.get("decision") or {}).get("retention_unconfirmed"):
        lead = ("NO-GO for now: " + fmt.text(plan["decision"]["retention_unconfirmed"]
                                              .get("reason")) + ".")
    else:
        lead = "NO-GO: " + (reasons[0] if reasons else "the plan gives no reason") + "."
    mc = (roi.get("monte_carlo") or {}).get("monthly_savings_usd") or {}
    saved = fmt.number(roi.get("monthly_savings_usd")) is not None
    facts = [
        ("Decision", "go" if go else "no-go"),
        ("Recommended student", f"{rec['model']} ({fmt.params(rec.get('params'))}, "
         f"{fmt.num(rec.get('compression_ratio'), 1)}×)" if rec else
         "none qualifies (see why below)"),
        ("Retention band", f"{fmt.pct_band(rec.get('retention_band'))} "
         f"({rec.get('retention_source') or 'prior'})" if rec else fmt.DASH),
        ("Deploy as", f"{rec.get('deploy_backend')} / {rec.get('deploy_dtype')}" if rec
         else fmt.DASH),
        ("Figures below answer for", _answers_for(roi)),
        ("Teacher cost", _per_month(roi.get("teacher_usd_per_month"))),
        ("Student cost", _per_month(roi.get("student_usd_per_month"))),
        ("Monthly savings", fmt.usd(roi.get("monthly_savings_usd"), "not computed")
         + (f" (Monte Carlo P10–P90 {fmt.usd(mc.get('p10'))}–{fmt.usd(mc.get('p90'))})"
            if fmt.number(mc.get("p10")) is not None else "")),
        ("One-time cost", fmt.usd((roi.get("one_time") or {}).get("total_usd"))),
        ("Payback", fmt.months(roi.get("payback_months")) if saved else "not computed"),
        (f"Net over {roi.get('horizon_months') or 12} months",
         fmt.usd(roi.get(f"net_{roi.get('horizon_months') or 12}_months_usd"))),
        ("Scenarios", ", ".join(plan.get("scenarios") or []) or fmt.DASH),
    ]
    blocks = [Text(lead, "go" if go else "nogo")]
    matrix = _roi_matrix(plan)
    if matrix:
        blocks.append(_table(matrix, "The seed's ROI matrix, recomputed from these measurements: "
                             "one deployment per row (never summed), the seed's ranges beside "
                             "ours"))
    blocks.append(Facts(tuple(facts)))
    drivers = ((roi.get("per_scenario") or {}).get(roi.get("scenario")) or {}).get(
        "band_drivers") or []
    if drivers:  # roi.fleet: a fleet whose P90 is far above its P50 widens the savings band
        blocks.append(Text("What widens the savings band: " + "; ".join(drivers) + ".", "note"))
    if reasons:
        blocks += [Heading("Why"), Bullets(tuple(reasons))]
    if plan.get("warnings"):  # roi.sanity: measurements from a busy machine
        blocks += [Heading("Warnings"), Bullets(tuple(str(w) for w in plan["warnings"]))]
    if roi.get("student_note"):
        blocks.append(Text(roi["student_note"], "note"))
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


def _criterion_verdict(c: dict) -> str:
    """met / not met / unknown; a criterion met where the student changes nothing says so."""
    return str(c.get("verdict")) + (", not counted" if c.get("counted") is False else "")


def _best_fit_text(b: dict | None) -> str:
    """The student this scenario alone would pick (roi.planner._best_fit)."""
    if not b:
        return "none meets it"
    return (f"{b.get('model')} ({fmt.params(b.get('params'))}, "
            f"{fmt.num(b.get('compression_ratio'), 1)}×)"
            + ("" if b.get("retention_qualifies") else ", retention not met"))


def _per_scenario_blocks(roi: dict) -> list:
    """One row per scenario, each deployment's economics on its own (never summed), and the
    portfolio total only where the plan declares one."""
    per = roi.get("per_scenario") or {}
    if not per:
        return []
    horizon = int(roi.get("horizon_months") or 12)
    rows = [{"scenario": name,
             "student": r.get("student") or fmt.DASH,
             "best-fit student": _best_fit_text(r.get("best_fit")),
             "one-time cost": fmt.usd(r.get("one_time_usd")),
             "cost reduction": fmt.pct(r.get("cost_reduction")),
             "savings / month": fmt.usd(r.get("monthly_savings_usd"), "not costed"),
             "payback": fmt.months(r.get("payback_months")) if fmt.number(
                 r.get("monthly_savings_usd")) is not None else "not costed",
             f"net over {horizon} months": fmt.usd(r.get(f"net_{horizon}_months_usd")),
             "decision": r.get("decision") or fmt.DASH,
             "why": r.get("decision_reason") or r.get("note") or fmt.DASH}
            for name, r in per.items()]
    blocks: list = [_table(rows, "One answer per scenario: each deployment's economics for "
                           "its own student (its best fit where one qualifies on retention, "
                           "else the closest candidate, for comparison) and that student's "
                           "one-time cost")]
    if roi.get("scope") == "portfolio" and fmt.number(roi.get("monthly_savings_usd")) is not None:
        blocks.append(Text(
            f"Portfolio (declared deployed together): {fmt.usd(roi['monthly_savings_usd'])} / "
            f"month saved in total, payback {fmt.months(roi.get('payback_months'))}, net "
            f"{fmt.usd(roi.get(f'net_{horizon}_months_usd'))} over {horizon} months."))
    return blocks


def decision_section(inp: Inputs, figures: Figures) -> Section:
    decision = inp.plan.get("decision") or {}
    rows = [{"scenario": c.get("scenario") or fmt.DASH, "criterion": c.get("name"),
             "value": _criterion_value(str(c.get("name")), c.get("value")),
             "threshold": _criterion_value(str(c.get("name")), c.get("threshold")),
             "verdict": _criterion_verdict(c), "why": c.get("reason")}
            for c in decision.get("criteria") or []]
    blocks: list = [Text("The seed's rule: distillation is worth pursuing if any of five "
                         "criteria holds. A criterion that holds counts only in a scenario whose "
                         "outcome the student changes (it saves money there, or meets an SLA or "
                         "memory limit the teacher cannot); elsewhere it reads \"met, not "
                         "counted\" and says why. This planner adds two checks before saying go: a "
                         "student must qualify (retention band above the threshold, meets every "
                         "scenario) and bring a measured benefit (it saves money, or meets a "
                         "scenario the teacher cannot).")]
    blocks.append(_table(rows, "Every criterion, per scenario") if rows else
                  Text("The plan lists no criteria.", "note"))
    blocks += _per_scenario_blocks(inp.plan.get("roi") or {})
    if decision.get("reasons"):
        blocks += [Heading("Decision: " + ("go" if decision.get("go") else "no-go")),
                   Bullets(tuple(decision["reasons"]))]
    return Section("decision", "Decision framework", tuple(blocks))


# ------------------------------------------------------------------------------ scenarios


def _seed_rows(inp: Inputs, detail: dict, best: pd.DataFrame, student: str) -> list[dict]:
    seed = detail.get("seed") or {}
    name = detail.get("name")
    per = best[best["scenario"] == name].set_index("model") if len(best) else pd.DataFrame()

    def cost(model: str) -> Any:
        return per["usd_per_month"].get(model) if len(per) else None

    saved = reduction(cost(student), cost(inp.teacher))
    rec = next((c for c in inp.candidates if c["model"] == student), {})
    faster, how = local_latency_ratio(inp.results, inp.teacher, student, rec)
    lighter = weights_ratio(inp.results, inp.teacher, student)
    rec_params = next((c.get("params") for c in inp.candidates if c["model"] == student), None)
    return [
        {"figure": "inference cost reduction", "seed expects":
         seed.get("inference_cost_reduction") or fmt.DASH, "ours": fmt.pct(saved),
         "where ours is": range_verdict(saved, seed.get("inference_cost_reduction", ""))
         or fmt.DASH,
         "how ours was obtained": "1 − student / teacher monthly cost, each on its cheapest "
         "configuration meeting the scenario (projected or measured, P50)"
         if saved is not None else "the teacher or the student could not be costed (or the "
         "teacher costs nothing here)"},
        {"figure": "latency improvement", "seed expects":
         seed.get("latency_improvement") or fmt.DASH, "ours": fmt.pct(faster),
         "where ours is": range_verdict(faster, seed.get("latency_improvement", ""))
         or fmt.DASH,
         "how ours was obtained": how},
        {"figure": "data transfer", "seed expects": seed.get("data_transfer") or fmt.DASH,
         "ours": fmt.pct(lighter) + " less" if lighter is not None else fmt.DASH,
         "where ours is": range_verdict(lighter, seed.get("data_transfer", "")) or fmt.DASH,
         "how ours was obtained": "weight bytes to ship (teacher vs student, smallest dtype "
         "measured); request traffic is not modelled"},
        {"figure": "best-fit model size", "seed expects":
         seed.get("best_fit_model_size") or fmt.DASH,
         "ours": fmt.params(rec_params) + " params" if rec_params else fmt.DASH,
         "where ours is": fmt.DASH,
         "how ours was obtained": f"our student of a {fmt.params(_teacher_params(inp))} teacher;"
         " the seed sizes students of 70B-class teachers, so compare ratios, not sizes"},
    ]


def _teacher_params(inp: Inputs) -> Any:
    return (inp.plan.get("teacher") or {}).get("params")


def _cost_rows(inp: Inputs, best: pd.DataFrame, scenario: str) -> list[dict]:
    rows = []
    sizing = _sizing_lookup(inp.plan)
    for model in inp.models:
        g = best[(best["scenario"] == scenario) & (best["model"] == model)]
        if g.empty:
            continue
        r = g.iloc[0]
        feasible = bool(r.get("feasible"))
        s = sizing.get((scenario, r.get("hardware"), model), {}) if feasible else {}
        rows.append({
            "model": model, "role": r.get("role") or fmt.DASH,
            "hardware": r.get("hardware") if feasible else fmt.DASH,
            "config": f"{r['backend']}/{r['dtype']} b{int(r['batch_size'])}" if feasible
            else fmt.DASH,
            "source": r.get("source") if feasible else fmt.DASH,
            "service ms (P50)": fmt.sig(s.get("service_ms_p50")),
            "replicas": fmt.num(r.get("replicas_p50"), 0),
            "USD / month (P10–P90)": fmt.usd_band(r.get("usd_per_month"),
                                                  r.get("usd_per_month_p10"),
                                                  r.get("usd_per_month_p90")),
            "USD / 1M requests": fmt.usd(r.get("usd_per_1m_requests")),
            "verdict": ("meets the scenario" + (f"; {r['spread_note']}" if isinstance(
                r.get("spread_note"), str) and r.get("spread_note") else "")) if feasible
            else f"no configuration: {r['reason']}"})
    return rows


def _workload_text(detail: dict) -> str:
    w, sla, c = detail.get("workload") or {}, detail.get("sla") or {}, \
        detail.get("constraints") or {}
    rate = (f"{fmt.sig(w.get('qps'), 4)} QPS at peak" if fmt.number(w.get("qps")) is not None
            else f"{fmt.sig(w.get('requests_per_day'), 4)} requests / day")
    parts = [rate, f"{fmt.text(w.get('arrival'))} arrivals",
             (f"{fmt.text(w.get('tokens_in_per_request'))} tokens in / "
             f"{fmt.text(w.get('tokens_out_per_request'))} out per request"),
             f"SLA p{fmt.text(sla.get('percentile'))} ≤ {fmt.text(sla.get('latency_ms'))} ms"]
    if detail.get("deployment"):
        parts.insert(0, f"deployment: {detail['deployment']}")
    if fmt.number(c.get("memory_limit_gib")) is not None:
        parts.append(f"memory limit {fmt.text(c['memory_limit_gib'])} GiB")
    if c.get("offline"):
        parts.append("offline")
    if c.get("data_locality"):
        parts.append("data must stay local")
    return "Workload: " + "; ".join(parts) + "."


def scenarios_section(inp: Inputs, figures: Figures) -> Section:
    best = best_cost(inp.plan)
    student = inp.recommended["model"] if inp.recommended else inp.trained
    cost_rows = best[["scenario", "model", "usd_per_month", "usd_per_month_p10",
                      "usd_per_month_p90"]] if len(best) else pd.DataFrame()
    blocks: list = [_figure(
        figures, "cost_per_scenario", fig.cost_per_scenario(cost_rows, inp.colors),
        "Cost per scenario, teacher vs students",
        "Monthly fleet cost of each model on its cheapest configuration meeting the scenario: "
        "M/G/c sizing at the P50 service time (bar) and at P10/P90 (whisker); service times "
        "measured where the hardware was measured, projected by the calibrated roofline "
        "otherwise.", "the plan holds no cost rows.")]
    for detail in _scenario_details(inp.plan):
        name = detail.get("name") or fmt.DASH
        blocks += [Heading(f"{detail.get('title') or name} ({name})")]
        if detail.get("description"):
            blocks.append(Text(detail["description"]))
        blocks.append(Text(_workload_text(detail)))
        if student:
            blocks.append(_table(_seed_rows(inp, detail, best, student),
                                 f"The seed's expected ranges beside our figures ({student} vs "
                                 f"{inp.teacher})"))
        rows = _cost_rows(inp, best, name) if len(best) else []
        blocks.append(_table(rows, "Cheapest configuration per model") if rows else
                      Text("No cost rows for this scenario.", "note"))
        if detail.get("basis"):
            blocks.append(Text("Basis: " + detail["basis"], "note"))
    return Section("scenarios", "Scenarios", tuple(blocks))


# ------------------------------------------------------------------------------ sizing


def _throughput_rows(inp: Inputs, shown: list[str]) -> pd.DataFrame:
    cost = {(r["scenario"], r["hardware"], r["model"]): r for r in inp.plan.get("cost") or []}
    rows = []
    for key, s in _sizing_lookup(inp.plan).items():
        price = fmt.number(cost.get(key, {}).get("usd_per_hour"))
        qps = fmt.number(s.get("qps_per_replica_p50"))
        if key[2] in shown and price and qps:
            rows.append({"scenario": key[0], "hardware": key[1], "model": key[2],
                         "requests_per_usd": qps * 3600 / price,
                         "meets_sla": bool(s.get("meets_sla"))})
    return pd.DataFrame(rows)


def sizing_section(inp: Inputs, figures: Figures) -> Section:
    student = inp.recommended["model"] if inp.recommended else inp.trained
    shown = [m for m in (inp.teacher, student) if m]
    cost = {(r["scenario"], r["hardware"], r["model"]): r for r in inp.plan.get("cost") or []}
    rows = []
    for key, s in _sizing_lookup(inp.plan).items():
        if key[2] not in shown:
            continue
        c = cost.get(key, {})
        rows.append({
            "scenario": key[0], "hardware": key[1], "model": key[2],
            "config": f"{s.get('backend')}/{s.get('dtype')} b{fmt.num(s.get('batch_size'), 0)}",
            "source": s.get("source"),
            "service ms P50 (P10–P90)": f"{fmt.sig(s.get('service_ms_p50'))} "
            f"({fmt.sig(s.get('service_ms_p10'))}–{fmt.sig(s.get('service_ms_p90'))})",
            "QPS / replica": fmt.sig(s.get("qps_per_replica_p50")),
            "replicas": fmt.num(s.get("replicas_p50"), 0),
            "utilization": fmt.pct(s.get("utilization")),
            "memory": s.get("memory_verdict") or fmt.DASH,
            "meets SLA": fmt.text(s.get("meets_sla")),
            "USD / month": fmt.usd(c.get("usd_per_month"), "not feasible")})
    colors = {m: inp.colors[m] for m in shown if m in inp.colors}
    blocks: list = [
        Text("A replica is an M/G/c queue under Poisson arrivals: the most QPS it takes while "
             "the SLA percentile holds (Erlang C with a Cramér–Lundberg waiting-time tail), "
             "replicas = ceil(QPS / QPS per replica), memory checked against the device "
             "(weights + activations + KV cache + runtime). The SLA counts as met at the slow "
             "(P90) end of the service-time band."),
        _figure(figures, "throughput_per_dollar",
                fig.throughput_per_dollar(_throughput_rows(inp, shown), colors),
                "Throughput per dollar per hardware",
                "Requests one replica serves per dollar: P50 capacity under the SLA × 3600 / "
                "the hourly price (catalog, with source and date); hatched bars miss the SLA.",
                "no candidate hardware has an hourly price (devices are costed per unit)."),
        _table(rows, f"Sizing, teacher and {student or 'student'}: the best configuration per "
                     "hardware") if rows else Text("The plan holds no sizing rows.", "note")]
    return Section("sizing", "Hardware sizing", tuple(blocks))


# ------------------------------------------------------------------------------ edge


def _edge_rows(e: dict) -> list[dict]:
    rows = []
    for r in e.get("rows") or []:
        if r.get("model") not in (e.get("teacher"), e.get("student")):
            continue
        size = fmt.number(r.get("artifact_bytes"))
        rows.append({
            "device": r.get("device"), "model": r.get("model"), "config": r.get("config"),
            "memory": f"{fmt.sig(r.get('memory_mib'))} of {fmt.sig(r.get('usable_memory_mib'))}"
                      f" MiB" + ("" if r.get("fits") else ", does not fit"),
            "service ms P50 (P10–P90)": f"{fmt.sig(r.get('service_ms_p50'))} "
            f"({fmt.sig(r.get('service_ms_p10'))}–{fmt.sig(r.get('service_ms_p90'))})",
            "runs": "yes" if r.get("runs") else f"no: {r.get('why_not')}",
            "Wh / 1k inferences": fmt.sig(r.get("energy_wh_per_1k_p50"), missing="no power"),
            "battery / 1k (/ day)": fmt.pct(r.get("battery_share_per_1k"), 2) + (
                f" ({fmt.pct(r.get('battery_share_per_day'), 3)})"
                if fmt.number(r.get("battery_share_per_day")) is not None else ""),
            "download MB": fmt.sig(None if size is None else size / 1e6),
            "unit price": fmt.usd(r.get("unit_usd"), "no price"),
            "fleet": fmt.usd(r.get("fleet_usd"), "not costed") + (
                ("" if not r.get("fleet_usd") else " users'" if r.get("user_owned")
                 else " capex")),
            "notes": "; ".join(r.get("notes") or []) or fmt.DASH})
    return rows


def edge_economics_section(inp: Inputs, figures: Figures) -> Section:
    title = "Edge economics"
    edge = inp.plan.get("edge")
    if not edge:
        return Section("edge", title, (Text("No scenario deploys to devices (deployment: "
                                            "device), so there are no edge economics.",
                                            "note"),))
    blocks: list = []
    for name, e in (edge.get("scenarios") or {}).items():
        a = e.get("answer") or {}
        devices = fmt.number(e.get("devices"))
        blocks += [Heading(f"{name}: {a.get('kind') or fmt.DASH}"),
                   Text(str(a.get("text") or fmt.DASH)
                        + (f". {a['also']}." if a.get("also") else ".")),
                   _table(_edge_rows(e), f"{inp.teacher} and {e.get('student') or 'student'} "
                          f"per device ({e.get('ownership')}; "
                          + (f"{devices:,.0f} devices" if devices else "no unit count") + ")")]
    method = edge.get("method") or {}
    blocks.append(Facts(tuple((k, str(v)) for k, v in method.items())))
    return Section("edge", title, tuple(blocks))


# ------------------------------------------------------------------------------ measurements


def measurements_section(inp: Inputs, figures: Figures) -> Section:
    df = ok_results(inp.results)
    if inp.results is None:
        return Section("measurements", "Measurements", (
            Text("No results table was given: the plan's figures are all that is shown.",
                 "note"),))
    rec = inp.recommended["model"] if inp.recommended else inp.trained
    blocks: list = [_figure(
        figures, "latency_vs_batch", fig.latency_vs_batch(df, inp.teacher, rec),
        "Latency vs batch size per model and backend",
        "Measured on this machine: median latency per call (marker) with the p90 whisker, from "
        "the raw per-call samples of each configuration.", "the results table has no ok row.")]
    rows = [{"model": r["model"], "role": r.get("role"), "backend": r["backend"],
             "dtype": r["dtype"], "batch": fmt.num(r["batch_size"], 0),
             "seq": fmt.num(r.get("seq_len"), 0), "p50 ms": fmt.sig(r.get("latency_ms_p50")),
             "p90 ms": fmt.sig(r.get("latency_ms_p90")), "p99 ms": fmt.sig(r.get("latency_ms_p99")),
             "samples / s": fmt.sig(r.get("throughput_samples_s")),
             "peak RSS MB": fmt.num(r.get("peak_rss_mb"), 0),
             "source": r.get("source") or "measured"}
            for _, r in df.sort_values(["backend", "dtype", "batch_size", "params"],
                                       ascending=[True, True, True, False]).iterrows()]
    if rows:
        blocks.append(_table(rows, "Measured configurations (status ok)"))
    bad = inp.results[inp.results["status"].fillna("ok") != "ok"] if "status" in inp.results \
        else pd.DataFrame()
    if len(bad):
        blocks.append(_table([{"model": r["model"], "backend": r.get("backend"),
                               "dtype": r.get("dtype"), "batch": fmt.num(r.get("batch_size"), 0),
                               "status": r["status"], "error": r.get("error")}
                              for _, r in bad.iterrows()], "Configurations that did not run"))
    return Section("measurements", "Measurements", tuple(blocks))


# ------------------------------------------------------------------------------ students


def _candidate_verdict(c: dict) -> str:
    if c.get("recommended"):
        return "recommended"
    return "qualifies" if c.get("qualifies") else "; ".join(c.get("reasons") or []) or \
        "does not qualify"


def _money_column(roi: dict) -> str:
    if roi.get("scope") == "scenario" and roi.get("scenario"):
        return f"USD / month ({roi['scenario']})"
    return "USD / month" + (" (portfolio total)" if roi.get("scope") == "portfolio" else "")


def _pareto_points(inp: Inputs) -> pd.DataFrame:
    roi = inp.plan.get("roi") or {}
    teacher_cost = fmt.number(roi.get("teacher_usd_per_month"))
    rows = [{"model": inp.teacher, "usd_per_month": teacher_cost, "retention_lo": 1.0,
             "retention_hi": 1.0, "kind": "teacher"}] if teacher_cost is not None else []
    for c in inp.candidates:
        band = c.get("retention_band") or [None, None]
        if fmt.number(band[0]) is None or fmt.number(band[1]) is None:
            continue
        kind = "recommended" if c.get("recommended") else \
            ("qualifies" if c.get("qualifies") else "fails")
        rows.append({"model": c["model"], "usd_per_month": scenario_cost(c, roi),
                     "retention_lo": float(band[0]), "retention_hi": float(band[1]),
                     "kind": kind})
    df = pd.DataFrame(rows, columns=["model", "usd_per_month", "retention_lo", "retention_hi",
                                     "kind"])
    return df.astype({"usd_per_month": float})


def students_section(inp: Inputs, figures: Figures) -> Section:
    threshold = fmt.number(inp.plan.get("retention_threshold"))
    rows = [{"student": c["model"], "params": fmt.params(c.get("params")),
             "compression": fmt.num(c.get("compression_ratio"), 1) + "×",
             "retention band": fmt.pct_band(c.get("retention_band")),
             "retention source": c.get("retention_source") or fmt.DASH,
             "deploy": f"{c.get('deploy_backend')}/{c.get('deploy_dtype')}",
             _money_column(inp.plan.get("roi") or {}): fmt.usd(
                 scenario_cost(c, inp.plan.get("roi") or {}), "not costed"),
             "verdict": _candidate_verdict(c)} for c in inp.candidates]
    achieved = fmt.number((inp.metrics or {}).get("retention_accuracy"))
    png = fig.pareto(_pareto_points(inp), threshold, achieved, inp.trained)
    blocks: list = [
        Text(f"Retention comes from the seed's priors (50× keeps 92–98%, 20× 95–99%, 5× "
             f"98–99.5%), interpolated in log compression ratio, unless a measured metrics.json "
             f"replaces it. The recommended student is the cheapest whose band's low end reaches "
             f"the {fmt.pct(threshold, 0)} threshold and that meets every scenario."),
        _figure(figures, "retention_pareto", png, "Retention vs cost Pareto front",
                "Retention band (prior or measured) against the monthly cost "
                + _cost_scope(inp.plan.get("roi") or {})
                + "; the dashed line joins the points no other beats on both.",
                "no candidate is costed on every scenario."),
        _table(rows, "Candidate students, ranked") if rows else
        Text("The plan has no student candidates.", "note")]
    notes = [c["retention_note"] for c in inp.candidates if c.get("retention_note")]
    if notes:
        blocks.append(Bullets(tuple(notes)))
    return Section("students", "Students and retention", tuple(blocks))


def _cost_scope(roi: dict) -> str:
    if roi.get("scope") == "scenario" and roi.get("scenario"):
        return f"in {roi['scenario']} (the scenario the ROI answers for)"
    return "summed over the scenarios" + (" (a declared portfolio)"
                                          if roi.get("scope") == "portfolio" else "")


# ------------------------------------------------------------------------------ ROI


def roi_section(inp: Inputs, figures: Figures) -> Section:
    roi = inp.plan.get("roi") or {}
    one = roi.get("one_time") or {}
    horizon = int(roi.get("horizon_months") or 12)
    blocks: list = [Facts((
        ("Savings, payback and sensitivity answer for", _answers_for(roi)),
        ("Labeling (teacher inference)", fmt.usd(one.get("labeling_usd"))),
        ("Training", fmt.usd(one.get("training_usd"))),
        ("Engineering", fmt.usd(one.get("engineering_usd"))),
        ("One-time total", fmt.usd(one.get("total_usd"))),
        ("Break-even volume", fmt.sig(roi.get("break_even_requests_per_month"), 3,
                                      "never (no savings)") + " requests / month"),
    ))]
    inputs = [{"input": k.replace("_", " "), "value": fmt.text(v.get("value")),
               "source": v.get("source") or (f"catalog price {fmt.usd(v.get('usd_per_hour'))}"
                                             f" / hour" if "usd_per_hour" in v else fmt.DASH)}
              for k, v in (one.get("inputs") or {}).items() if isinstance(v, dict)]
    if inputs:
        blocks.append(_table(inputs, "One-time cost inputs and where each comes from"))
    if roi.get("note"):
        blocks.append(Text(roi["note"].capitalize() + ": no payback curve or tornado.", "note"))
        return Section("roi", "Return on investment", tuple(blocks))
    mc = roi.get("monte_carlo") or {}
    savings = mc.get("monthly_savings_usd") or {}
    point = fmt.number(roi.get("monthly_savings_usd"))
    blocks.append(_figure(
        figures, "payback_curve",
        fig.payback_curve(fmt.number(one.get("total_usd")),
                          (savings.get("p10"), point, savings.get("p90")), horizon,
                          fmt.number(roi.get("payback_months"))),
        "Payback curve",
        f"Cumulative net = −one-time cost + monthly savings × months; the band is the seeded "
        f"Monte Carlo's P10–P90 of savings ({fmt.num(mc.get('draws'), 0)} draws, seed "
        f"{fmt.text(mc.get('seed'))}) over the teacher and student cost bands.",
        "the savings could not be computed."))
    blocks.append(Text(
        f"Monte Carlo: savings P10/P50/P90 {fmt.usd(savings.get('p10'))} / "
        f"{fmt.usd(savings.get('p50'))} / {fmt.usd(savings.get('p90'))} per month; probability "
        f"the student saves money {fmt.pct(mc.get('probability_savings_positive'), 0)}."))
    tor = roi.get("tornado") or []
    base = fmt.number(roi.get(f"net_{horizon}_months_usd"))
    blocks.append(_figure(
        figures, "tornado", fig.tornado(tor, base, horizon), "Tornado chart",
        f"Net over {horizon} months with one input at its low or high value and the others at "
        f"base (one-at-a-time sensitivity).", "the plan holds no sensitivity rows."))
    if tor:
        blocks.append(_table([{"input": r.get("input"), "low": fmt.sig(r.get("low_value")),
                               "high": fmt.sig(r.get("high_value")),
                               "net at low": fmt.usd(r.get("net_at_low_usd")),
                               "net at high": fmt.usd(r.get("net_at_high_usd")),
                               "swing": fmt.usd(r.get("swing_usd"))} for r in tor],
                             "Sensitivity"))
    if roi.get("assumption"):
        blocks.append(Text("Assumption: " + roi["assumption"] + ".", "note"))
    return Section("roi", "Return on investment", tuple(blocks))


# ------------------------------------------------------------------------------ distillation


# ------------------------------------------------------------------------------ forecast


def _grids(inp: Inputs) -> dict[str, dict[str, list]]:
    """model -> {"kd": rows, "ce": rows}: the plan's forecast grids (roi.budget)."""
    out = {}
    for c in inp.candidates:
        b = c.get("budget") or {}
        if b.get("grid"):
            out[str(c["model"])] = {"kd": b["grid"], "ce": b.get("baseline_grid") or []}
    return out


def _forecast_curve(plan: dict, model: str, mode: str = "kd") -> dict:
    return next((c for c in (plan.get("forecast") or {}).get("curves") or []
                 if c.get("model") == model and c.get("mode") == mode), {})


def _steps_text(n: Any) -> str:
    v = fmt.number(n)
    return "not reached" if v is None else fmt.num(v, 0)


def _forecast_rows(inp: Inputs) -> list[dict]:
    rows = []
    for c in inp.candidates:
        kd, ce = (_forecast_curve(inp.plan, c["model"], m) for m in ("kd", "ce"))
        if not kd:
            continue
        b = c.get("budget") or {}
        band = b.get("retention_band")
        gain = kd_gain(b)
        gain = fmt.DASH if gain is None else f"{gain[0]:+.1f} points (at {gain[1]:,} steps)"
        rows.append({"student": c["model"],
                     "KD: steps to threshold (P10 / P50)":
                         f"{_steps_text(kd.get('steps_to_threshold_p10'))} / "
                         f"{_steps_text(kd.get('steps_to_threshold_p50'))}",
                     "baseline: steps (P10 / P50)":
                         f"{_steps_text(ce.get('steps_to_threshold_p10'))} / "
                         f"{_steps_text(ce.get('steps_to_threshold_p50'))}" if ce else fmt.DASH,
                     "budget chosen": fmt.num(b.get("steps"), 0) + " steps",
                     "retention there (P10–P90)": fmt.pct_band(band),
                     "KD gain there (P50)": gain,
                     "at the largest budget (P50)": fmt.pct(kd.get("p50_at_max_steps")),
                     "one-time cost": fmt.usd(b.get("one_time_usd"))})
    return rows


def forecast_section(inp: Inputs, figures: Figures) -> Section:
    title = "Retention forecast"
    f = inp.plan.get("forecast") or {}
    if not f.get("curves"):
        why = f.get("source") or "the plan predates forecasts"
        notes = [c["retention_note"] for c in inp.candidates if c.get("retention_note")]
        return Section("forecast", title, (Text(
            f"No forecast ({why}). Retention is the seed's prior over compression ratio, the "
            "same at any training budget; the project's own runs show it depends on the budget "
            "(`roi pilot`, then `roi plan --pilot`, forecasts it).", "note"),
            *([Bullets(tuple(notes))] if notes else [])))
    cal = (f.get("calibration") or {}).get("kd") or {}
    threshold = fmt.number(f.get("threshold")) or 0.95
    trained = inp.trained
    ran = fmt.number(((inp.metrics or {}).get("settings") or {}).get("steps"))
    got = fmt.number((inp.metrics or {}).get("retention_accuracy"))
    achieved = (ran, got) if ran is not None and got is not None else None
    png = fig.learning_curves(f["curves"], _grids(inp), threshold, trained,
                              fmt.number((inp.plan.get("trainer") or {}).get("steps")),
                              achieved, inp.colors)
    blocks: list = [
        Text(f"From pilot distillations of up to {fmt.num(f.get('longest_pilot_steps'), 0)} "
             f"steps ({fmt.num(fmt.number(f.get('batch_tokens')), 0)} tokens each), every "
             f"student's retention is forecast for budgets up to "
             f"{fmt.num(f.get('max_steps'), 0)} steps; each student's budget is the fewest steps "
             f"whose P10 reaches the {fmt.pct(threshold, 0)} threshold. Method: {f.get('method')}."
             f" Band calibration: {fmt.text(cal.get('source'))} (kappa "
             f"{fmt.num(cal.get('kappa'), 3)}, noise {fmt.num(cal.get('noise'), 4)} in "
             f"{fmt.text(cal.get('units') or 'log loss')}).{_pilot_cost_text(f.get('pilot_compute') or {})}"),
        _figure(figures, "learning_curves", png, "Retention forecast by training budget",
                "Pilot points (filled: KD, open: no-KD baseline), the fitted P50 per student and "
                "mode, the P10–P90 band of the student trained (or planned), the threshold, the "
                "planned budget and, after a run, the retention it achieved.",
                "no student has a forecast grid."),
        _table(_forecast_rows(inp), "Steps to the threshold and the budget chosen, per student")]
    failed = [f"{c['model']} ({c['mode']}): {c['reason']}" for c in f.get("failed") or []]
    if failed:
        blocks.append(Bullets(tuple(f"not forecast: {x}" for x in failed)))
    if inp.replan:
        blocks.append(_replan_text(inp))
    return Section("forecast", title, tuple(blocks))


def _pilot_cost_text(pc: dict) -> str:
    """What the pilots cost beside the distillation they plan, where both are known."""
    flops, share = fmt.number(pc.get("pilot_flops")), fmt.number(pc.get("share"))
    if flops is None:
        return ""
    out = f" The pilots cost {flops:.2g} FLOPs"
    if share is not None:
        out += f", {fmt.pct(share, 1)} of the distillation they plan (KD and baseline)"
    return out + f" ({fmt.text(pc.get('basis'))})."


def _replan_text(inp: Inputs) -> Text:
    """What the plan says once the run's own result joins the pilots."""
    rp = inp.replan or {}
    rec = rp.get("recommended") or {}
    trainer = rp.get("trainer") or {}
    b = rec.get("budget") or {}
    if not rec:
        return Text(f"Re-planned with the distillation's own result: no student qualifies "
                    f"({fmt.text(rp.get('no_recommendation_reason'))}).", "note")
    return Text(f"Re-planned with the distillation's own result beside the pilots: "
                f"{rec.get('model')} at {fmt.num(trainer.get('steps'), 0)} steps, forecast "
                f"retention {fmt.pct_band(rec.get('retention_band'))} (P10–P90; P50 "
                f"{fmt.pct(rec.get('retention_p50'))}), one-time cost "
                f"{fmt.usd(b.get('one_time_usd'))}. `roi distill --plan replan/plan.yaml` runs "
                "it.")


def distill_plan_section(inp: Inputs, figures: Figures) -> Section:
    trainer = inp.plan.get("trainer") or {}
    go = bool((inp.plan.get("decision") or {}).get("go"))
    rows = [{"setting": k, "value": fmt.text(v)} for k, v in trainer.items()]
    student = next((c for c in inp.candidates if c["model"] == inp.planned), {})
    blocks: list = [Text(
        f"Train {inp.planned or fmt.DASH} ({fmt.params(student.get('params'))} parameters, "
        f"{fmt.num(student.get('compression_ratio'), 1)}× fewer than the teacher) from "
        f"{inp.teacher} by knowledge distillation, then a no-KD baseline of the same size and "
        f"steps; export to ONNX and dynamic int8 and measure all of them on the held-out split: "
        f"`roi distill --plan plan/plan.yaml --out distill`.")]
    if not go:
        blocks.append(Text("The plan is no-go: `roi distill` refuses it unless given --force.",
                           "note"))
    if inp.plan.get("trainer_note"):
        blocks.append(Text(inp.plan["trainer_note"], "note"))
    blocks.append(_table(rows, "Trainer settings (plan.yaml's trainer section)") if rows else
                  Text("The plan has no trainer section.", "note"))
    return Section("distill-plan", "Distillation plan", tuple(blocks))


def _metric_rows(metrics: dict) -> list[dict]:
    names = {"teacher": "teacher", "student": "student (KD, torch)", "student_onnx":
             "student (ONNX fp32)", "student_int8": "student (ONNX int8)",
             "baseline": "baseline (no KD)"}
    teacher_acc = fmt.number((metrics.get("teacher") or {}).get("accuracy"))
    rows = []
    for key, label in names.items():
        m = metrics.get(key)
        if not isinstance(m, dict):
            continue
        acc = fmt.number(m.get("accuracy"))
        rows.append({"model": label, "next-byte accuracy": fmt.pct(acc),
                     "retention": fmt.pct(acc / teacher_acc if acc is not None and teacher_acc
                                          else None),
                     "bits / byte": fmt.num(m.get("bits_per_byte"), 3),
                     "perplexity": fmt.num(m.get("perplexity"), 2),
                     "test tokens": fmt.num(m.get("tokens"), 0)})
    return rows


def _at_steps(inp: Inputs, mode: str) -> list | None:
    """The plan's forecast (P10, P90) for the budget the distillation ran, if it recorded one."""
    steps = ((inp.metrics or {}).get("settings") or {}).get("steps")
    at = _forecast_curve(inp.plan, inp.trained, mode).get("at_steps") or {}
    band = at.get(str(steps))
    return [band[0], band[2]] if band else None


def _predicted_band(inp: Inputs, student: dict) -> tuple[list | None, str]:
    """The band to hold the run against: the forecast for the steps it ran where the plan has
    one, else the student's band (and at which budget it was made)."""
    steps = ((inp.metrics or {}).get("settings") or {}).get("steps")
    band = _at_steps(inp, "kd")
    if band is not None:
        return band, f"forecast for the {fmt.num(steps, 0)} steps that ran"
    planned = student.get("retention_steps")
    if planned and steps and int(planned) != int(steps):
        return student.get("retention_band"), (f"band for {fmt.num(planned, 0)} steps; "
                                               f"{fmt.num(steps, 0)} ran")
    return student.get("retention_band"), student.get("retention_source") or "prior"


def achieved_section(inp: Inputs, figures: Figures) -> Section:
    title = "Predicted vs achieved"
    m = inp.metrics
    if not m:
        return Section("achieved", title, (Text(
            "Pending: no distillation has run yet (no distill/metrics.json). Run `roi distill "
            "--plan plan/plan.yaml --out distill`, then benchmark the student again with "
            "`roi bench --students ckpt:distill --out bench-student`; this section then shows "
            "the plan's predictions beside what the student achieved.", "pending"),))
    student = next((c for c in inp.candidates if c["model"] == inp.trained), {})
    band, basis = _predicted_band(inp, student)
    base_band = _at_steps(inp, "ce")
    ret, ret8 = fmt.number(m.get("retention_accuracy")), fmt.number(
        m.get("int8_retention_accuracy"))
    ret_b = fmt.number(m.get("baseline_retention_accuracy"))
    gain = fmt.number(m.get("kd_gain_accuracy"))
    rows = [
        {"quantity": f"accuracy retention (torch; {basis})", "predicted": fmt.pct_band(band),
         "achieved": fmt.pct(ret), "verdict": band_verdict(ret, band) or fmt.DASH},
        {"quantity": "accuracy retention (ONNX int8)", "predicted": fmt.pct_band(band),
         "achieved": fmt.pct(ret8), "verdict": band_verdict(ret8, band) or fmt.DASH},
        {"quantity": "no-KD baseline retention", "predicted": fmt.pct_band(base_band),
         "achieved": fmt.pct(ret_b), "verdict": band_verdict(ret_b, base_band) or fmt.DASH
         if base_band else fmt.DASH},
        {"quantity": "KD gain over the no-KD baseline", "predicted": "> 0 points",
         "achieved": fmt.num(100 * gain, 2, fmt.DASH) + " points" if gain is not None
         else fmt.DASH, "verdict": fmt.DASH if gain is None else
         ("KD helped" if gain > 0 else "KD did not help")},
        {"quantity": "student parameters", "predicted": fmt.params(student.get("params")),
         "achieved": fmt.params(m.get("student_params")), "verdict": fmt.DASH}]
    settings = m.get("settings") or {}
    blocks: list = [_table(rows, f"The plan's predictions for {inp.trained or fmt.DASH} "
                                 f"beside the distilled student")]
    warnings = distill_warnings(m)  # an untrained teacher: retention says little
    if warnings:
        blocks += [Heading("Warnings"), Bullets(tuple(warnings))]
    done = settings.get("student")
    if done and done != inp.planned:
        blocks.append(Text(f"The plan's trainer section names {inp.planned or fmt.DASH}; the "
                           f"distillation trained {done}"
                           + (", so its own predictions are shown." if done == inp.trained else
                              ", which the plan does not cover: compare with care."), "note"))
    latency = latency_pairs(inp.results, inp.student_results, inp.teacher, inp.trained)
    achieved = {k: v for k, v in (("KD torch", ret), ("KD int8", ret8), (
        "baseline", fmt.number(m.get("baseline_retention_accuracy")))) if v is not None}
    blocks.append(_figure(
        figures, "predicted_vs_achieved", fig.predicted_vs_achieved(band, achieved, latency),
        "Predicted vs achieved",
        "Retention: next-byte accuracy of the distilled student over the teacher's on the "
        "held-out test split (metrics.json) against the plan's band. Latency: the same "
        "architecture measured before training against the distilled student benchmarked "
        "again.", "metrics.json holds no retention figure."))
    if latency.empty:
        blocks.append(Text("Latency re-bench pending: no benchmark of the distilled student "
                           "(bench-student/results.csv) sharing a configuration with the plan's"
                           " measurements.", "pending"))
    else:
        blocks.append(_table([{"config": r.config, "predicted ms": fmt.sig(r.predicted_ms),
                               "achieved ms": fmt.sig(r.achieved_ms),
                               "achieved / predicted": fmt.num(r.achieved_ms / r.predicted_ms,
                                                               2) + "×"}
                              for r in latency.itertuples()], "Latency per call (p50)"))
    blocks.append(_table(_metric_rows(m), "Held-out test metrics (metrics.json)"))
    blocks.append(Text(f"Training: {fmt.text(settings.get('steps'))} steps, {fmt.text(settings.get('kd_loss'))}"
                       f" KD at T={fmt.text(settings.get('temperature'))}, "
                       f"α={fmt.text(settings.get('alpha'))}; student init "
                       f"{fmt.text(m.get('init'))}; wall time "
                       f"{fmt.num((fmt.number(m.get('wall_s')) or 0) / 60, 1)} min; export "
                       f"{fmt.text((m.get('export') or {}).get('method'))} (max relative error "
                       f"{fmt.sig((m.get('export') or {}).get('rel_err'))})."))
    return Section("achieved", title, tuple(blocks))


# ------------------------------------------------------------------------------ method

ENV_COLUMNS = {"env_cpu": "CPU", "env_cores": "cores", "env_logical_cpus": "logical CPUs",
               "env_gpu": "GPU", "env_python": "Python", "env_torch": "torch",
               "env_onnxruntime": "onnxruntime", "env_os": "OS", "env_git_commit": "git commit",
               "env_time": "measured at"}


def _environment(df: pd.DataFrame | None) -> tuple[tuple[str, str], ...]:
    if df is None:
        return ()
    out = []
    for col, label in ENV_COLUMNS.items():
        if col not in df:
            continue
        values = [fmt.text(v, "") for v in df[col].dropna().unique()]
        values = sorted(v for v in values if v)
        if col == "env_time" and len(values) > 1:
            values = [f"{values[0]} to {values[-1]}"]
        if values:
            out.append((label, ", ".join(values[:4]) + (" …" if len(values) > 4 else "")))
    return tuple(out)


def method_section(inp: Inputs, figures: Figures, shown: list[Figure]) -> Section:
    proj = inp.plan.get("projection") or {}
    env = _environment(inp.results)
    blocks: list = [Heading("Environment")]
    blocks.append(Facts(env) if env else Text("The results table carries no environment "
                                              "fingerprint.", "note"))
    blocks += [Heading("How each figure was measured or projected"),
               Bullets(tuple(f"{f.caption}: {f.method}" for f in shown))
               if shown else Text("No figures.", "note"),
               Heading("Projection")]
    if proj.get("method"):
        blocks.append(Text("Roofline projection: " + proj["method"] + "."))
    peak = proj.get("local_peak") or {}
    if peak.get("source"):
        blocks.append(Text(f"Local peak: {fmt.sig(peak.get('gflop_s'), 3, 'not given')} GFLOP/s"
                           f" ({peak['source']})."))
    loo = [{"machine": r.get("machine"), "backend": r.get("backend"),
            "median error": fmt.pct(r.get("median_ape")), "max error": fmt.pct(r.get("max_ape")),
            "predictions": fmt.num(r.get("n_predictions"), 0),
            "goal": "≤ " + fmt.pct(r.get("goal_median_ape"), 0),
            "meets goal": fmt.text(r.get("meets_goal"))} for r in proj.get("leave_one_out") or []]
    if loo:
        blocks.append(_table(loo, "Leave-one-model-out check of the projection"))
    hw = [{"hardware": r.get("hardware"), "service times": r.get("source"),
           "measured rows": fmt.num(r.get("measured_rows"), 0),
           "projected rows": fmt.num(r.get("projected_rows"), 0),
           "measured on": fmt.text(r.get("measured_on"))}
          for r in (inp.plan.get("sources") or {}).get("hardware") or []]
    if hw:
        blocks.append(_table(hw, "Where each hardware's service times come from"))
    assumptions = inp.plan.get("assumptions") or {}
    if assumptions:
        blocks += [Heading("Assumptions"),
                   Facts(tuple((k.replace("_", " "), fmt.text(v)) for k, v in
                               assumptions.items()))]
    if inp.origin:
        blocks += [Heading("Inputs"), Facts(tuple(inp.origin.items()))]
    return Section("method", "Environment and method", tuple(blocks))


SECTIONS: tuple[Callable[[Inputs, Figures], Section], ...] = (
    summary_section, decision_section, scenarios_section, sizing_section,
    edge_economics_section, measurements_section, students_section, forecast_section, roi_section,
    distill_plan_section, achieved_section)
