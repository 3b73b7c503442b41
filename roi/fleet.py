"""Sizing and cost of every (scenario × hardware × model × backend × dtype × batch) row, and
the cheapest configuration that meets the scenario per (hardware, model).

Each row is sized three times, at the P10, P50 and P90 of its service time (projected rows carry
a band; measured rows have one value): cost is reported at P50 with the P10–P90 band, and the SLA
counts as met only at the slow end (P90), as the retention threshold uses the band's low end.
Devices are costed by their amortized unit price (roi.memory). A scenario serving several models
packs them onto accelerators by memory and load (first-fit decreasing).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cost import HOURS_PER_MONTH, evaluate, usd_per_1m_requests
from .hardware import Catalog
from .memory import (
    DEVICE_AMORTIZATION_MONTHS, device_usd_per_hour, fit_verdict, memory_limit_mib,
    memory_need, packed_bins,
)
from .projection import MEMORY_EFFICIENCY
from .scenarios import Scenario
from .service import BANDS, NOT_APPLICABLE, request_service_ms
from .sizing import Method, ServiceTime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assumptions:
    """Inputs of the costing that are not in the results or the catalog (all shown in the plan)."""

    device_amortization_months: float = DEVICE_AMORTIZATION_MONTHS
    runtime_mib: float | None = None  # None: measured where the results have peak RSS
    memory_efficiency: float = MEMORY_EFFICIENCY
    queueing_method: Method = "cramer-lundberg"

    def record(self) -> dict:
        return {"device_amortization_months": self.device_amortization_months,
                "runtime_mib": self.runtime_mib if self.runtime_mib is not None
                else "measured (peak RSS) where known, else 200",
                "memory_efficiency": self.memory_efficiency,
                "queueing_method": self.queueing_method,
                "hours_per_month": HOURS_PER_MONTH}


def scenario_grid(scenario: Scenario, fwd: pd.DataFrame, catalog: Catalog,
                  assumptions: Assumptions = Assumptions(),
                  peaks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every configuration of `fwd` on the scenario's candidate hardware, sized and costed.

    `peaks` (roi.measurements.loadgen_peaks) are QPS per replica measured under load: where
    one applies to a row, it replaces the predicted figure (measured beats predicted) and the
    row's qps_source says so."""
    w = scenario.workload
    rows = fwd[fwd["hardware"].isin(scenario.candidate_hardware)]
    if w.arrival == "single-stream":  # one request at a time: batches never form
        rows = rows[rows["batch_size"] == rows["batch_size"].min()]
    g = request_service_ms(rows, w.tokens_in_per_request, w.tokens_out_per_request)
    g = g.reset_index(drop=True)
    g = pd.concat([g, memory_need(g, w.tokens_in_per_request, w.tokens_out_per_request,
                                  assumptions.runtime_mib)], axis=1)
    g["scenario"] = scenario.name
    _prices_and_limits(g, scenario, catalog, assumptions)
    _size(g, scenario, assumptions)
    _measured_peaks(g, scenario, peaks)
    if w.models > 1:
        _pack(g, scenario)
    _verdicts(g, scenario)
    return g


def _prices_and_limits(g: pd.DataFrame, scenario: Scenario, catalog: Catalog,
                       a: Assumptions) -> None:
    price, limit = {}, {}
    for name in g["hardware"].unique():
        hw = catalog.get(name)
        # a device the users own (a phone) is not the deployment's to buy: roi.edge prices it
        unit = None if hw.user_owned else hw.figure("unit_usd")
        price[name] = (hw.usd_per_hour if hw.kind == "cloud" else
                       device_usd_per_hour(unit, a.device_amortization_months))
        limit[name] = memory_limit_mib(scenario.constraints.memory_limit_gib,
                                       hw.figure("memory_gib"))
    g["usd_per_hour"] = g["hardware"].map(price).astype(float)
    g["memory_limit_mib"] = g["hardware"].map(limit).astype(float)
    g["fits_memory"] = g["total_mib"] <= g["memory_limit_mib"]


def _size(g: pd.DataFrame, scenario: Scenario, a: Assumptions) -> None:
    """qps per replica, replicas and monthly cost at each band of the service time."""
    w, sla = scenario.workload, scenario.sla
    ok = np.isfinite(g["service_ms_p50"].to_numpy(float))
    for b in BANDS:
        for col in (f"qps_per_replica_{b}", f"replicas_{b}", f"usd_per_month_{b}"):
            g[col] = np.nan
    g["utilization"] = np.nan
    if not ok.any():
        return
    for b in BANDS:
        grid = pd.DataFrame({
            "service_ms_mean": g.loc[ok, f"service_ms_{b}"].to_numpy(float),
            "service_ms_cv": g.loc[ok, "service_cv"].to_numpy(float),
            "batch_size": g.loc[ok, "batch_size"].to_numpy(int),
            "sla_percentile": sla.percentile, "sla_latency_ms": sla.latency_ms,
            "design_qps": w.design_qps / w.models, "mean_qps": w.mean_qps / w.models,
            "usd_per_hour": g.loc[ok, "usd_per_hour"].to_numpy(float),
            "tokens_per_request": w.tokens_per_request, "arrival": w.arrival,
            "wake_ms": g.loc[ok, "wake_ms"].to_numpy(float),
            "batch_window_ms": (g.loc[ok, "service_ms_p50"].to_numpy(float)
                                if w.batch_window_ms is None else w.batch_window_ms)})
        out = evaluate(grid, method=a.queueing_method)
        g.loc[ok, f"qps_per_replica_{b}"] = out["qps_per_replica"].to_numpy()
        g.loc[ok, f"replicas_{b}"] = out["replicas"].to_numpy() * w.models
        g.loc[ok, f"usd_per_month_{b}"] = out["usd_per_month"].to_numpy() * w.models
        if b == "p50":
            g.loc[ok, "utilization"] = out["utilization"].to_numpy()
    # sized by throughput alone, SLA ignored: what a model that cannot meet the SLA would cost
    cap = g["batch_size"] * 1000 / g["service_ms_p50"]
    replicas = np.ceil(np.round(w.design_qps / cap, 9))
    g["usd_per_month_throughput"] = replicas * g["usd_per_hour"] * HOURS_PER_MONTH


PREDICTED = "predicted"
FLEET_SPREAD_LIMIT = 5.0  # P90 fleet / P50 fleet past which the plan names the driving input
MEASURED = "measured (LoadGen peak)"


def _measured_peaks(g: pd.DataFrame, scenario: Scenario, peaks: pd.DataFrame | None) -> None:
    """Put a LoadGen peak in place of the predicted QPS per replica where one applies."""
    g["qps_per_replica_predicted"] = g["qps_per_replica_p50"]
    g["qps_source"] = PREDICTED
    g["qps_note"] = ""
    if peaks is None or peaks.empty or not len(g):
        return
    w = scenario.workload
    for i in g.index[g["source"] == "measured"]:
        peak, note = _applicable_peak(g.loc[i], peaks, scenario)
        g.loc[i, "qps_note"] = note
        if peak is None:
            continue
        qps = float(peak["loadgen_peak_qps"])
        replicas = np.ceil(np.round(w.design_qps / w.models / qps, 9)) * w.models
        for b in BANDS:  # a measured figure has no projection band
            g.loc[i, f"qps_per_replica_{b}"] = qps
            g.loc[i, f"replicas_{b}"] = replicas
            g.loc[i, f"usd_per_month_{b}"] = replicas * g.loc[i, "usd_per_hour"] * HOURS_PER_MONTH
        g.loc[i, "utilization"] = (w.design_qps / replicas * g.loc[i, "service_ms_p50"] / 1000
                                   / g.loc[i, "batch_size"])
        g.loc[i, "qps_source"] = MEASURED


def _applicable_peak(row: pd.Series, peaks: pd.DataFrame, scenario: Scenario):
    """(the best LoadGen peak that measured this row's configuration under this scenario's
    conditions, or None; a note on what was used or why a peak of the same model did not)."""
    same = peaks[(peaks["model"] == row["model"]) & (peaks["backend"] == row["backend"])
                 & (peaks["dtype"] == row["dtype"])]
    on_this = same["hardware"] == row["hardware"]
    on_this = on_this.where(same["hardware"].notna(), same["machine"] == row["measured_on"])
    same = same[on_this.astype(bool)]
    if same.empty:
        return None, ""
    w, sla = scenario.workload, scenario.sla
    why = []
    if w.arrival != "poisson":
        why.append(f"the scenario's arrivals are {w.arrival}, LoadGen's Server runs are Poisson")
    if w.tokens_in_per_request != row["seq_len"] or w.tokens_out_per_request:
        why.append(f"its requests are {w.tokens_in_per_request} tokens in + "
                   f"{w.tokens_out_per_request} out; the load test sent one "
                   f"{int(row['seq_len'])}-token forward pass per query")
    fit = same[(same["batch_size"] == row["batch_size"]) & (same["seq_len"] == row["seq_len"])
               & (same["loadgen_percentile"] >= sla.percentile - 1e-9)
               & (same["loadgen_latency_bound_ms"] <= sla.latency_ms + 1e-9)]
    if fit.empty:
        p = same.iloc[0]
        why.append(f"measured at max batch {int(p['batch_size'])}, seq {int(p['seq_len'])}, "
                   f"p{p['loadgen_percentile']:g} <= {p['loadgen_latency_bound_ms']:g} ms; this "
                   f"row is batch {int(row['batch_size'])}, the SLA p{sla.percentile:g} <= "
                   f"{sla.latency_ms:g} ms")
    if why:
        return None, "LoadGen peak not used: " + "; ".join(why)
    best = fit.sort_values("loadgen_peak_qps").iloc[-1]
    where = best.get("loadgen_log_dir")
    return best, (f"LoadGen peak {best['loadgen_peak_qps']:g} QPS at "
                  f"p{best['loadgen_percentile']:g} <= {best['loadgen_latency_bound_ms']:g} ms "
                  f"(predicted {row['qps_per_replica_p50']:.1f})"
                  + (f"; logs {best.get('results_dir')}/{where}" if isinstance(where, str)
                     else ""))


def _pack(g: pd.DataFrame, scenario: Scenario) -> None:
    """Several models per scenario: replicas packed onto accelerators by memory and load."""
    w = scenario.workload
    per_model = w.design_qps / w.models
    g["replicas_unpacked"] = g["replicas_p50"]
    for b in BANDS:
        bins = [packed_bins(w.models, mem, per_model / q if q > 0 else math.inf, limit)
                if np.isfinite(q) else np.nan
                for mem, q, limit in zip(g["total_mib"], g[f"qps_per_replica_{b}"],
                                         g["memory_limit_mib"])]
        g[f"replicas_{b}"] = np.asarray(bins, float)
        g[f"usd_per_month_{b}"] = g[f"replicas_{b}"] * g["usd_per_hour"] * HOURS_PER_MONTH


def _verdicts(g: pd.DataFrame, scenario: Scenario) -> None:
    w = scenario.workload
    g["projectable"] = np.isfinite(g["service_ms_p50"].to_numpy(float))
    g["meets_sla"] = g["projectable"] & (g["qps_per_replica_p90"].fillna(0) > 0)
    g["meets_sla_p50"] = g["projectable"] & (g["qps_per_replica_p50"].fillna(0) > 0)
    g["feasible"] = g["meets_sla"] & g["fits_memory"]
    g["usd_per_month"] = g["usd_per_month_p50"]
    with np.errstate(invalid="ignore", divide="ignore"):
        g["usd_per_1m_requests"] = usd_per_1m_requests(g["usd_per_month"].fillna(np.inf),
                                                       w.mean_qps)
        g["usd_per_1m_tokens"] = g["usd_per_1m_requests"] / w.tokens_per_request
    g["latency_ms_alone_p90"] = _alone_quantile(g, scenario.sla.percentile)
    g["memory_verdict"] = [fit_verdict(t, l) for t, l in zip(g["total_mib"],
                                                               g["memory_limit_mib"])]
    g["reason"] = [_reason(r, scenario) for _, r in g.iterrows()]
    with np.errstate(invalid="ignore", divide="ignore"):
        g["fleet_spread"] = g["replicas_p90"] / g["replicas_p50"]
    g["spread_note"] = [_spread_note(r, scenario) for _, r in g.iterrows()]


def _spread_note(r: pd.Series, scenario: Scenario) -> str:
    """Where the fleet at the slow end of the band is more than FLEET_SPREAD_LIMIT times the
    P50 fleet: the input that drives it, named (empty otherwise)."""
    spread = r["fleet_spread"]
    if not (r["feasible"] and np.isfinite(spread) and spread > FLEET_SPREAD_LIMIT):
        return ""
    sla = scenario.sla
    slow, mid = r["service_ms_p90"], r["service_ms_p50"]
    q90, q50 = r["qps_per_replica_p90"], r["qps_per_replica_p50"]
    where = (f"the slow end of its service-time band ({slow:,.1f} ms per batch of "
             f"{int(r['batch_size'])} against {mid:,.1f} at P50)")
    if slow / mid * 2 < spread:  # the replicas fall far faster than the service time grows
        why = (f"leaves little room for queueing under the p{sla.percentile:g} <= "
               f"{sla.latency_ms:g} ms bound: a replica carries {q90:,.3g} requests/s instead "
               f"of {q50:,.3g}")
    else:
        why = f"carries {q90:,.3g} requests/s per replica instead of {q50:,.3g}"
    return (f"P90 fleet {spread:,.0f}x the P50 fleet: {where} {why}; the input that drives it "
            f"is this configuration's service-time band ({r['note']}); measuring it on "
            f"{r['hardware']} narrows it")


def _alone_quantile(g: pd.DataFrame, percentile: float) -> np.ndarray:
    """The SLA percentile of one request's service time with no queue (slow end of the band)."""
    out = np.full(len(g), np.nan)
    ok = g["projectable"].to_numpy()
    if ok.any():
        service = ServiceTime.from_mean_cv(g.loc[ok, "service_ms_p90"].to_numpy(float),
                                           g.loc[ok, "service_cv"].to_numpy(float))
        out[ok] = service_quantile_ms(service, percentile)
    return out


def service_quantile_ms(service: ServiceTime, percentile: float) -> np.ndarray:
    """The percentile of the service time itself (bisection on its survival function)."""
    target = 1 - percentile / 100
    lo = np.zeros(service.mean_ms.shape)
    hi = service.mean_ms * (1 + 10 * np.sqrt(np.maximum(service.scv, 0)) + 1)
    for _ in range(200):
        short = service.sf(hi) > target
        if not short.any():
            break
        hi = np.where(short, hi * 2, hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        above = service.sf(mid) > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return hi


def _reason(r: pd.Series, scenario: Scenario) -> str:
    sla = scenario.sla
    if not r["projectable"]:
        if r.get("source") == NOT_APPLICABLE:
            return str(r["note"])
        return f"latency unknown: {r['note']}"
    if not r["fits_memory"]:
        return r["memory_verdict"]
    if not r["meets_sla"]:
        alone = r["latency_ms_alone_p90"]
        if alone > sla.latency_ms:
            return (f"misses the SLA: p{sla.percentile:g} of one request alone is "
                    f"{alone:,.1f} ms (slow end of the band) > {sla.latency_ms:g} ms")
        return (f"misses the SLA at the slow end of the band (p{sla.percentile:g} <= "
                f"{sla.latency_ms:g} ms holds only at lower latency)")
    return "meets the SLA and fits memory"


BEST_COLUMNS = [
    "scenario", "hardware", "hardware_kind", "model", "role", "backend", "dtype", "batch_size",
    "deploy_runtime", "params", "source", "service_ms_p10", "service_ms_p50", "service_ms_p90",
    "service_cv", "wake_ms", "latency_ms_alone_p90",
    "qps_per_replica_p50", "qps_per_replica_p90", "qps_per_replica_predicted", "qps_source",
    "qps_note", "replicas_p50", "utilization",
    "usd_per_hour", "usd_per_month_p10", "usd_per_month", "usd_per_month_p90",
    "usd_per_1m_requests", "usd_per_1m_tokens", "usd_per_month_throughput", "weight_bytes",
    "total_mib",
    "weights_mib", "activations_mib", "kv_cache_mib", "runtime_mib", "runtime_source",
    "memory_limit_mib",
    "fits_memory", "memory_verdict", "meets_sla", "feasible", "reason", "note",
    "fleet_spread", "spread_note",
]


def best_per_hardware(grid: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, hardware, model): the cheapest feasible configuration, or, where none is
    feasible, the fastest one with the reason it fails."""
    g = grid.assign(_cost=grid["usd_per_month"].fillna(np.inf),
                    _lat=grid["service_ms_p90"].fillna(np.inf))
    g = g.sort_values(["feasible", "_cost", "_lat"], ascending=[False, True, True])
    best = g.groupby(["scenario", "hardware", "model"], sort=False).head(1)
    cols = [c for c in BEST_COLUMNS if c in best.columns]
    return best[cols].sort_values(["scenario", "model", "hardware"]).reset_index(drop=True)


def best_per_model(best_hw: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, model): the cheapest feasible hardware (or the closest miss)."""
    g = best_hw.assign(_cost=best_hw["usd_per_month"].fillna(np.inf),
                       _lat=best_hw["service_ms_p90"].fillna(np.inf))
    g = g.sort_values(["feasible", "_cost", "_lat"], ascending=[False, True, True])
    best = g.groupby(["scenario", "model"], sort=False).head(1)
    return best.drop(columns=["_cost", "_lat"]).reset_index(drop=True)
