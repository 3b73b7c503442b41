"""Cost of a fleet: replicas to carry the design rate, and what they cost per month, per 1M
requests and per 1M tokens. All functions take numpy arrays and broadcast, so a whole
(scenario × hardware × model × batch) grid is costed in one call (`evaluate`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.errors import InputError

from .loadcheck import two_state_max_qps
from .sizing import Method, ServiceTime, max_qps_per_replica

HOURS_PER_MONTH = 730  # 8760 h / 12, the convention of cloud price calculators
SECONDS_PER_HOUR = 3600
ARRIVALS = ("poisson", "offline", "single-stream")


def replicas_needed(qps: np.ndarray | float, qps_per_replica: np.ndarray | float) -> np.ndarray:
    """ceil(qps / qps_per_replica), as floats: inf where a replica cannot meet the SLA at all
    (qps_per_replica 0); 0 where there is no traffic."""
    qps, per = np.asarray(qps, float), np.asarray(qps_per_replica, float)
    _non_negative("qps", qps)
    _non_negative("qps_per_replica", per)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(qps > 0, qps / per, 0.0)
    # 1000 / 50 must be 20, not 21 from a ratio of 20.000000000000004
    return np.where(np.isfinite(ratio), np.ceil(np.round(ratio, 9)), np.inf)


def monthly_cost_usd(replicas: np.ndarray | float, usd_per_hour: np.ndarray | float,
                     hours_per_month: float = HOURS_PER_MONTH) -> np.ndarray:
    """Replicas × hourly price × hours in a month; inf replicas cost inf."""
    replicas, price = np.asarray(replicas, float), np.asarray(usd_per_hour, float)
    _non_negative("usd_per_hour", price)
    _non_negative("replicas", replicas)
    with np.errstate(invalid="ignore"):
        return np.where(replicas == 0, 0.0, replicas * price * hours_per_month)


def usd_per_1m_requests(usd_per_month: np.ndarray | float, mean_qps: np.ndarray | float,
                        hours_per_month: float = HOURS_PER_MONTH) -> np.ndarray:
    """The month's bill spread over the requests actually served (mean rate, not peak)."""
    mean_qps = np.asarray(mean_qps, float)
    _non_negative("mean_qps", mean_qps)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_month = mean_qps * SECONDS_PER_HOUR * hours_per_month
        return np.where(per_month > 0, np.asarray(usd_per_month) / per_month * 1e6, np.nan)


def usd_per_1m_tokens(usd_per_1m_req: np.ndarray | float,
                      tokens_per_request: np.ndarray | float) -> np.ndarray:
    """Per 1M tokens, counting prompt and generated tokens alike (in + out per request)."""
    tokens = np.asarray(tokens_per_request, float)
    if np.any(~np.isfinite(tokens) | (tokens <= 0)):
        raise InputError(f"tokens_per_request must be > 0; got {float(np.min(tokens))}")
    return np.asarray(usd_per_1m_req, float) / tokens


def fleet_cost(qps: np.ndarray | float, qps_per_replica: np.ndarray | float,
               usd_per_hour: np.ndarray | float, *, mean_qps: np.ndarray | float | None = None,
               tokens_per_request: np.ndarray | float | None = None,
               hours_per_month: float = HOURS_PER_MONTH) -> dict[str, np.ndarray]:
    """Replicas for the design rate `qps` and their cost; per-request figures use `mean_qps`
    (default: qps, i.e. traffic flat at its peak)."""
    replicas = replicas_needed(qps, qps_per_replica)
    month = monthly_cost_usd(replicas, usd_per_hour, hours_per_month)
    per_req = usd_per_1m_requests(month, qps if mean_qps is None else mean_qps,
                                  hours_per_month)
    out = {"replicas": replicas, "usd_per_month": month, "usd_per_1m_requests": per_req}
    if tokens_per_request is not None:
        out["usd_per_1m_tokens"] = usd_per_1m_tokens(per_req, tokens_per_request)
    return out


GRID_COLUMNS = {
    "service_ms_mean": "mean latency of one batch, ms",
    "service_ms_cv": "coefficient of variation of that latency",
    "batch_size": "requests per batch",
    "sla_percentile": "e.g. 99",
    "sla_latency_ms": "bound on the response time at that percentile, ms",
    "design_qps": "peak requests per second to absorb",
    "usd_per_hour": "price of one replica (one accelerator) per hour",
}
GRID_DEFAULTS = {"mean_qps": None, "tokens_per_request": None, "servers": 1,
                 "batch_window_ms": np.inf, "arrival": "poisson", "wake_ms": 0.0}


def evaluate(grid: pd.DataFrame, method: Method = "cramer-lundberg",
             hours_per_month: float = HOURS_PER_MONTH) -> pd.DataFrame:
    """Size and cost every row of `grid` (one row per scenario × hardware × model × batch).

    Required columns: GRID_COLUMNS; optional: mean_qps (default design_qps),
    tokens_per_request, servers (1), batch_window_ms (inf), arrival (poisson, offline or
    single-stream), wake_ms (0: what a batch that finds the server idle pays on top of
    service_ms_mean; > 0 sizes with the two-state service time, roi.loadcheck). Adds
    qps_per_replica, utilization (busy fraction of a server at the design rate), replicas,
    usd_per_month, usd_per_1m_requests, usd_per_1m_tokens (when tokens are given) and
    meets_sla."""
    missing = [c for c in GRID_COLUMNS if c not in grid.columns]
    if missing:
        raise InputError(f"sizing grid lacks column(s) {', '.join(missing)}; needs "
                         f"{', '.join(GRID_COLUMNS)}")
    g = {c: grid[c].to_numpy() for c in grid.columns}
    for col, default in GRID_DEFAULTS.items():
        if col not in g:
            g[col] = g["design_qps"] if col == "mean_qps" else np.full(len(grid), default)
    per_replica = _qps_per_replica(g, method)
    cost = fleet_cost(g["design_qps"], per_replica, g["usd_per_hour"], mean_qps=g["mean_qps"],
                      tokens_per_request=g["tokens_per_request"]
                      if "tokens_per_request" in grid.columns else None,
                      hours_per_month=hours_per_month)
    out = grid.copy()
    out["qps_per_replica"] = per_replica
    with np.errstate(divide="ignore", invalid="ignore"):  # busy fraction of each server
        busy = g["design_qps"] / cost["replicas"] * g["service_ms_mean"] / 1000
        out["utilization"] = busy / (g["batch_size"] * g["servers"])
    for key, values in cost.items():
        out[key] = values
    out["meets_sla"] = per_replica > 0
    return out


def _qps_per_replica(g: dict[str, np.ndarray], method: Method) -> np.ndarray:
    """Poisson rows through the queueing model; offline and single-stream rows by throughput,
    provided one batch (offline) or one request (single-stream) meets the SLA on its own."""
    arrival = g["arrival"].astype(str)
    bad = sorted(set(arrival) - set(ARRIVALS))
    if bad:
        raise InputError(f"arrival must be one of {', '.join(ARRIVALS)}; got {bad[0]!r}")
    service = ServiceTime.from_mean_cv(g["service_ms_mean"].astype(float),
                                       g["service_ms_cv"].astype(float))
    batch, servers = g["batch_size"].astype(float), g["servers"].astype(int)
    if np.any(batch < 1) or np.any(batch != np.floor(batch)):
        raise InputError("batch_size must be a positive integer")
    target = 1 - g["sla_percentile"].astype(float) / 100
    alone_ok = service.sf(g["sla_latency_ms"].astype(float)) <= target
    throughput = np.where(alone_ok, servers * batch * 1000 / service.mean_ms, 0.0)
    online = arrival == "poisson"
    out = throughput.copy()
    wake = g["wake_ms"].astype(float)
    if np.any(np.isnan(wake) | (wake < 0)):
        raise InputError(f"wake_ms must be >= 0; got {float(np.nanmin(wake))}")
    for two_state in (False, True):
        rows = online & ((wake > 0) == two_state)
        if rows.any():
            out[rows] = _online_qps(g, service, rows, batch, servers, wake, two_state, method)
    return out


def _online_qps(g, service: ServiceTime, rows: np.ndarray, batch, servers, wake,
                two_state: bool, method: Method) -> np.ndarray:
    sub = ServiceTime(service.weight[rows], service.shift_ms[rows], service.rate_per_ms[rows])

    def size(svc: ServiceTime) -> np.ndarray:
        return max_qps_per_replica(
            svc, g["sla_percentile"][rows].astype(float),
            g["sla_latency_ms"][rows].astype(float), servers=servers[rows],
            batch_size=batch[rows], batch_window_ms=g["batch_window_ms"][rows].astype(float),
            method=method)

    if not two_state:
        return size(sub)
    # c servers: each idles a fraction 1 - rho of the time (exact for one, as the planner uses)
    return two_state_max_qps(sub, wake[rows], batch[rows] * servers[rows], size)


def _non_negative(name: str, x: np.ndarray) -> None:
    if np.any(np.isnan(x) | (x < 0)):
        got = float(np.nanmin(x)) if np.any(x < 0) else "NaN"
        raise InputError(f"{name} must be >= 0; got {got}")
