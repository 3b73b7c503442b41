"""The report's deployment sections: each scenario (the seed's ranges beside our figures, the
cheapest configuration per model), hardware sizing, edge economics and the measurements.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from contracts.plan import (Cheapest, Config, Constraints, CostRow, EdgeScenario, MeasuredPlan,
                            ScenarioDetail, SizingRow)
from contracts.results import with_columns
from roi.readout import ok_results

from . import figures as fig
from . import measure_figures
from . import fmt
from .document import Facts, Heading, Section, Text
from .inputs import Figures, Inputs, figure, table


def _scenario_details(plan: MeasuredPlan) -> list[ScenarioDetail]:
    details = {d.name: d for d in plan.scenario_details or []}
    return [details.get(s) or ScenarioDetail(name=s) for s in plan.scenarios]


def _key(r: Config) -> tuple[str, str, str]:
    return r.scenario, r.hardware, r.model


def _sizing_lookup(plan: MeasuredPlan) -> dict[tuple, SizingRow]:
    return {_key(r): r for r in plan.sizing}


def _cost_lookup(plan: MeasuredPlan) -> dict[tuple, CostRow]:
    return {_key(r): r for r in plan.cost}


FIGURES = {"inference_cost_reduction": "inference cost reduction",
           "latency_improvement": "latency improvement", "data_transfer": "data transfer"}


def _seed_rows(inp: Inputs, detail: ScenarioDetail, student: str) -> list[dict]:
    rows = []
    for f in inp.seed_figures(student):
        if f.scenario != detail.name:
            continue
        ours = fmt.pct(f.value)
        rows.append({"figure": FIGURES[f.figure], "seed expects": f.expected or fmt.DASH,
                     "ours": ours + " less" if f.figure == "data_transfer" and f.value is not None
                     else ours,
                     "where ours is": f.verdict or fmt.DASH, "how ours was obtained": f.basis})
    rec = inp.student(student)
    rec_params = rec.params if rec else None
    return rows + [
        {"figure": "best-fit model size", "seed expects":
         detail.seed.best_fit_model_size if detail.seed else fmt.DASH,
         "ours": fmt.params(rec_params) + " params" if rec_params else fmt.DASH,
         "where ours is": fmt.DASH,
         "how ours was obtained": f"our student of a {fmt.params(_teacher_params(inp))} teacher;"
         " the seed sizes students of 70B-class teachers, so compare ratios, not sizes"},
    ]


def _teacher_params(inp: Inputs) -> Any:
    return inp.plan.teacher.params


def _cost_rows(inp: Inputs, scenario: str) -> list[dict]:
    rows = []
    best = {r.model: r for r in inp.cheapest if r.scenario == scenario}
    for model in inp.models:
        r = best.get(model)
        if r is None:
            continue
        ok = bool(r.feasible)
        rows.append({
            "model": model, "role": r.role or fmt.DASH,
            "hardware": r.hardware if ok else fmt.DASH,
            "config": f"{r.backend}/{r.dtype} b{int(r.batch_size)}" if ok else fmt.DASH,
            "source": r.source if ok else fmt.DASH,
            "service ms (P50)": fmt.sig(r.service_ms_p50 if ok else None),
            "replicas": fmt.num(r.replicas_p50 if ok else None, 0),
            "USD / month (P10–P90)": fmt.usd_band(*_costs(r)),
            "USD / 1M requests": fmt.usd(r.usd_per_1m_requests if ok else None),
            "verdict": ("meets the scenario" + (f"; {r.spread_note}" if r.spread_note else ""))
            if ok else f"no configuration: {'; '.join(r.misses)[:300]}"})
    return rows


def _costs(r: Cheapest) -> tuple:
    """P50, P10 and P90 monthly cost where the model meets the scenario (None where not)."""
    if not r.feasible:
        return None, None, None
    return r.usd_per_month, r.usd_per_month_p10, r.usd_per_month_p90


def _cost_frame(inp: Inputs) -> pd.DataFrame:
    """scenario, model and the monthly cost band of each cheapest configuration (NaN where the
    model misses the scenario), for the cost figure."""
    rows = [dict(zip(("usd_per_month", "usd_per_month_p10", "usd_per_month_p90"), _costs(r)),
                 scenario=r.scenario, model=r.model) for r in inp.cheapest]
    cols = ["scenario", "model", "usd_per_month", "usd_per_month_p10", "usd_per_month_p90"]
    return pd.DataFrame(rows, columns=cols).astype({c: float for c in cols[2:]}) if rows \
        else pd.DataFrame()


def _workload_text(detail: ScenarioDetail) -> str:
    w, sla, c = detail.workload, detail.sla, detail.constraints or Constraints()
    qps, per_day, arrival, tokens_in, tokens_out = (
        (w.qps, w.requests_per_day, w.arrival, w.tokens_in_per_request, w.tokens_out_per_request)
        if w else (None,) * 5)
    percentile, latency_ms = (sla.percentile, sla.latency_ms) if sla else (None, None)
    rate = (f"{fmt.sig(qps, 4)} QPS at peak" if qps is not None
            else f"{fmt.sig(per_day, 4)} requests / day")
    parts = [rate, f"{fmt.text(arrival)} arrivals",
             f"{fmt.text(tokens_in)} tokens in / {fmt.text(tokens_out)} out per request",
             f"SLA p{fmt.text(percentile)} ≤ {fmt.text(latency_ms)} ms"]
    if detail.deployment:
        parts.insert(0, f"deployment: {detail.deployment}")
    if c.memory_limit_gib is not None:
        parts.append(f"memory limit {fmt.text(c.memory_limit_gib)} GiB")
    if c.offline:
        parts.append("offline")
    if c.data_locality:
        parts.append("data must stay local")
    return "Workload: " + "; ".join(parts) + "."


def scenarios_section(inp: Inputs, figures: Figures) -> Section:
    student = inp.recommended.model if inp.recommended else inp.trained
    cost_rows = _cost_frame(inp)
    blocks: list = [figure(
        figures, "cost_per_scenario", fig.cost_per_scenario(cost_rows, inp.colors),
        "Cost per scenario, teacher vs students",
        "Monthly fleet cost of each model on its cheapest configuration meeting the scenario: "
        "M/G/c sizing at the P50 service time (bar) and at P10/P90 (whisker); service times "
        "measured where the hardware was measured, projected by the calibrated roofline "
        "otherwise.", "the plan holds no cost rows.")]
    for detail in _scenario_details(inp.plan):
        name = detail.name or fmt.DASH
        blocks += [Heading(f"{detail.title or name} ({name})")]
        if detail.description:
            blocks.append(Text(detail.description))
        blocks.append(Text(_workload_text(detail)))
        if student:
            blocks.append(table(_seed_rows(inp, detail, student),
                                 f"The seed's expected ranges beside our figures ({student} vs "
                                 f"{inp.teacher})"))
        rows = _cost_rows(inp, name)
        blocks.append(table(rows, "Cheapest configuration per model") if rows else
                      Text("No cost rows for this scenario.", "note"))
        if detail.basis:
            blocks.append(Text("Basis: " + detail.basis, "note"))
    return Section("scenarios", "Scenarios", tuple(blocks))


def _throughput_rows(inp: Inputs, shown: list[str]) -> pd.DataFrame:
    cost = _cost_lookup(inp.plan)
    rows = []
    for key, s in _sizing_lookup(inp.plan).items():
        price = fmt.number(cost[key].usd_per_hour if key in cost else None)
        qps = fmt.number(s.qps_per_replica_p50)
        if key[2] in shown and price and qps:
            rows.append({"scenario": key[0], "hardware": key[1], "model": key[2],
                         "requests_per_usd": qps * 3600 / price,
                         "meets_sla": bool(s.meets_sla)})
    return pd.DataFrame(rows)


def sizing_section(inp: Inputs, figures: Figures) -> Section:
    student = inp.recommended.model if inp.recommended else inp.trained
    shown = [m for m in (inp.teacher, student) if m]
    cost = _cost_lookup(inp.plan)
    rows = []
    for key, s in _sizing_lookup(inp.plan).items():
        if key[2] not in shown:
            continue
        c = cost.get(key)
        rows.append({
            "scenario": key[0], "hardware": key[1], "model": key[2],
            "config": f"{s.backend}/{s.dtype} b{fmt.num(s.batch_size, 0)}",
            "source": s.source,
            "service ms P50 (P10–P90)": f"{fmt.sig(s.service_ms_p50)} "
            f"({fmt.sig(s.service_ms_p10)}–{fmt.sig(s.service_ms_p90)})",
            "QPS / replica": fmt.sig(s.qps_per_replica_p50),
            "replicas": fmt.num(s.replicas_p50, 0),
            "utilization": fmt.pct(s.utilization),
            "memory": s.memory_verdict or fmt.DASH,
            "meets SLA": fmt.text(s.meets_sla),
            "USD / month": fmt.usd(c.usd_per_month if c else None, "not feasible")})
    colors = {m: inp.colors[m] for m in shown if m in inp.colors}
    blocks: list = [
        Text("A replica is an M/G/c queue under Poisson arrivals: the most QPS it takes while "
             "the SLA percentile holds (Erlang C with a Cramér–Lundberg waiting-time tail), "
             "replicas = ceil(QPS / QPS per replica), memory checked against the device "
             "(weights + activations + KV cache + runtime). The SLA counts as met at the slow "
             "(P90) end of the service-time band."),
        figure(figures, "throughput_per_dollar",
                fig.throughput_per_dollar(_throughput_rows(inp, shown), colors),
                "Throughput per dollar per hardware",
                "Requests one replica serves per dollar: P50 capacity under the SLA × 3600 / "
                "the hourly price (catalog, with source and date); hatched bars miss the SLA.",
                "no candidate hardware has an hourly price (devices are costed per unit)."),
        table(rows, f"Sizing, teacher and {student or 'student'}: the best configuration per "
                     "hardware") if rows else Text("The plan holds no sizing rows.", "note")]
    return Section("sizing", "Hardware sizing", tuple(blocks))


def _edge_rows(e: EdgeScenario) -> list[dict]:
    rows = []
    for r in e.rows:
        if r.model not in (e.teacher, e.student):
            continue
        rows.append({
            "device": r.device, "model": r.model, "config": r.config,
            "memory": f"{fmt.sig(r.memory_mib)} of {fmt.sig(r.usable_memory_mib)}"
                      f" MiB" + ("" if r.fits else ", does not fit"),
            "service ms P50 (P10–P90)": f"{fmt.sig(r.service_ms_p50)} "
            f"({fmt.sig(r.service_ms_p10)}–{fmt.sig(r.service_ms_p90)})",
            "runs": "yes" if r.runs else f"no: {r.why_not}",
            "Wh / 1k inferences": fmt.sig(r.energy_wh_per_1k_p50, missing="no power"),
            "battery / 1k (/ day)": fmt.pct(r.battery_share_per_1k, 2) + (
                f" ({fmt.pct(r.battery_share_per_day, 3)})"
                if fmt.number(r.battery_share_per_day) is not None else ""),
            "download MB": fmt.sig(None if r.artifact_bytes is None else r.artifact_bytes / 1e6),
            "unit price": fmt.usd(r.unit_usd, "no price"),
            "fleet": fmt.usd(r.fleet_usd, "not costed") + (
                ("" if not r.fleet_usd else " users'" if r.user_owned else " capex")),
            "notes": "; ".join(r.notes) or fmt.DASH})
    return rows


def edge_economics_section(inp: Inputs, figures: Figures) -> Section:
    title = "Edge economics"
    edge = inp.plan.edge
    if not edge:
        return Section("edge", title, (Text("No scenario deploys to devices (deployment: "
                                            "device), so there are no edge economics.",
                                            "note"),))
    blocks: list = []
    for name, e in edge.scenarios.items():
        a = e.answer
        blocks += [Heading(f"{name}: {a.kind or fmt.DASH}"),
                   Text(str(a.text or fmt.DASH) + (f". {a.also}." if a.also else ".")),
                   table(_edge_rows(e), f"{inp.teacher} and {e.student or 'student'} "
                          f"per device ({e.ownership}; "
                          + (f"{e.devices:,.0f} devices" if e.devices else "no unit count")
                          + ")")]
    blocks.append(Facts(tuple((k, str(v)) for k, v in edge.method.items())))
    return Section("edge", title, tuple(blocks))


# the columns of the measurement table a hand-written results table may leave out
SHOWN_COLUMNS = ("role", "seq_len", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
                 "throughput_samples_s", "peak_rss_mb", "source")


def measurements_section(inp: Inputs, figures: Figures) -> Section:
    df = ok_results(inp.results)
    if inp.results is None:
        return Section("measurements", "Measurements", (
            Text("No results table was given: the plan's figures are all that is shown.",
                 "note"),))
    rec = inp.recommended.model if inp.recommended else inp.trained
    blocks: list = [figure(
        figures, "latency_vs_batch", measure_figures.latency_vs_batch(df, inp.teacher, rec),
        "Latency vs batch size per model and backend",
        "Measured on this machine: median latency per call (marker) with the p90 whisker, from "
        "the raw per-call samples of each configuration.", "the results table has no ok row.")]
    ok = with_columns(df.sort_values(["backend", "dtype", "batch_size", "params"],
                                     ascending=[True, True, True, False]), SHOWN_COLUMNS)
    rows = [{"model": r.model, "role": r.role, "backend": r.backend, "dtype": r.dtype,
             "batch": fmt.num(r.batch_size, 0), "seq": fmt.num(r.seq_len, 0),
             "p50 ms": fmt.sig(r.latency_ms_p50), "p90 ms": fmt.sig(r.latency_ms_p90),
             "p99 ms": fmt.sig(r.latency_ms_p99), "samples / s": fmt.sig(r.throughput_samples_s),
             "peak RSS MB": fmt.num(r.peak_rss_mb, 0), "source": r.source or "measured"}
            for r in ok.itertuples(index=False)]
    if rows:
        blocks.append(table(rows, "Measured configurations (status ok)"))
    bad = inp.results[inp.results["status"].fillna("ok") != "ok"] if "status" in inp.results \
        else pd.DataFrame()
    if len(bad):
        bad = with_columns(bad, ("backend", "dtype", "batch_size", "error"))
        blocks.append(table([{"model": r.model, "backend": r.backend, "dtype": r.dtype,
                               "batch": fmt.num(r.batch_size, 0), "status": r.status,
                               "error": r.error}
                              for r in bad.itertuples(index=False)],
                            "Configurations that did not run"))
    return Section("measurements", "Measurements", tuple(blocks))
