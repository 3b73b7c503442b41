"""LoadGen runs against the planner's sizing model: the figures `roi loadtest` sets beside each
measured server run (bench/loadgen.py hands this module to run_one as its predictor), so a
row holds what the M/G/1 model (roi.loadcheck, roi.sizing) predicted next to what LoadGen
measured. A check of measurement against prediction: above both bench and the planner."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.loadgen import LoadtestSettings, single_call_row
from contracts.results import load_samples
from roi.loadcheck import predicted_peak_qps, predicted_quantile_ms
from roi.sizing import ServiceTime


def predictions(s: LoadtestSettings, out: Path, after_idle_ms: np.ndarray | None = None
                ) -> dict:
    """The planner's figures for this server run (roi.loadcheck), from bench's single-call row
    of the same configuration in OUT's table (raw samples where kept): the response-time
    percentile at the target QPS, and the highest QPS LoadGen should call VALID. With the
    backend's service times after idle gaps, both are two-state (the back-to-back-only figures
    are kept beside them). Empty where there is no such row, or the SUT batches (the M/G/1
    model is for one sample at a time)."""
    if s.scenario != "server" or s.max_batch != 1 or s.workers != 1:
        return {}
    base = single_call_row(s, out)
    if base is None:
        return {}
    raw = load_samples(out, base["row_id"]).get("latency_ns")
    service = (ServiceTime.from_samples(raw / 1e6) if raw is not None and raw.size else
               ServiceTime.from_mean_cv(base["latency_ms_mean"], base.get("latency_ms_cv") or 0))
    pct = s.claimed_percentile
    run = dict(min_duration_s=s.min_duration_ms / 1e3, min_queries=s.queries)
    idle = (ServiceTime.from_samples(after_idle_ms)
            if after_idle_ms is not None and after_idle_ms.size else None)
    peak = predicted_peak_qps(service, pct, s.latency_ms, after_idle=idle, **run)
    out_ = {"predicted_latency_ms_at_target": predicted_quantile_ms(service, s.qps, pct, idle),
            "predicted_utilization": s.qps * float(service.mean_ms) / 1000,
            "predicted_peak_qps": peak.qps, "predicted_peak_percentile": peak.percentile,
            "predicted_from_row": base["row_id"],
            "predicted_model": "two-state" if idle is not None else "back-to-back"}
    if idle is not None:
        flat = predicted_peak_qps(service, pct, s.latency_ms, **run)
        out_.update({"service_after_idle_ms_mean": float(idle.mean_ms),
                     "predicted_latency_ms_at_target_back_to_back":
                         predicted_quantile_ms(service, s.qps, pct),
                     "predicted_peak_qps_back_to_back": flat.qps})
    return out_


def predicted_under_load(s: LoadtestSettings, ms: np.ndarray) -> dict:
    """The sizing model's response-time percentile from the service times the SUT measured
    during the run (server, one sample at a time); empty otherwise."""
    if s.scenario == "server" and s.max_batch == 1 and s.workers == 1 and ms.min() > 0:
        return {"predicted_latency_ms_under_load": predicted_quantile_ms(
            ServiceTime.from_samples(ms), s.qps, s.claimed_percentile)}
    return {}
