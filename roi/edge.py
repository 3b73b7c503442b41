"""Edge economics: what decides a deployment on devices rather than on rented servers.

For each device scenario (deployment: device), each candidate device and each model:

- fits: the model's memory (roi.memory.memory_need: weights + activations + KV cache + runtime;
  the runtime overhead is what the measured process held beyond weights and activations at its
  peak RSS where bench measured it, else roi.memory.DEFAULT_RUNTIME_MIB) within the usable
  memory: the scenario's memory limit, capped at the device's own memory;
- latency: one request's service time with its projection band (the rows the sizing uses:
  measured where the device was measured, else projected by roi.projection), and whether the
  SLA percentile of one request alone holds at the band's slow end;
- energy per 1,000 inferences (one inference = one request of the scenario): the catalog power
  figure x the P50 service time x 1,000, in Wh. Active time only (idle draw between requests is
  not counted); a power figure is a top power mode or a measured peak, so it is an upper estimate;
- battery share (battery-powered devices): that energy / the battery capacity, per 1,000
  inferences and per day at the scenario's requests per device;
- artifact download size: the weight bytes of the configuration shipped, as measured by bench
  (initializer bytes of the exported ONNX for ORT rows, parameter bytes for torch rows), else
  params x bytes per parameter of the dtype; the row says which;
- device fleet cost: unit price x the scenario's `devices`. A user-owned device (a phone) is the
  users' purchase, not the deployment's capital cost; a board the deployment buys is capex.

A device without a price or power figure is kept, names the missing figure, and is not costed on
that axis (None, never $0). The answer per scenario compares the cheapest device class (by unit
price) on which the student runs (fits and meets the SLA) with the teacher's.
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

import pandas as pd

from .hardware import Catalog, Hardware
from .memory import GIB, MIB, fit_verdict
from .scenarios import Scenario

BANDS = ("p10", "p50", "p90")
RUNS_AT_ALL = "runs at all"
CHEAPER = "runs on the cheaper device class"
NO_CHANGE = "no change"
MEASURED_BYTES = "measured by bench (ONNX initializer bytes, or parameter bytes for torch)"
METHOD = {
    "memory": "weights + activations + KV cache + runtime overhead (measured: peak RSS - "
              "weights - activations, where bench measured it; else an assumed 200 MiB), "
              "against the scenario's memory limit capped at the device's memory",
    "latency": "one request's service time (prefill of tokens in + decode of tokens out), "
               "P50 with the projection's P10-P90 band; the SLA holds where the SLA percentile "
               "of one request alone is within the bound at the band's slow end",
    "energy": "power_w x P50 service time x 1,000 inferences / 3,600 = Wh per 1,000 "
              "inferences (active time only, at the catalog's power figure: an upper estimate)",
    "battery": "energy per 1,000 inferences / battery_wh; per day at the scenario's requests "
               "per device",
    "artifact": "weight bytes of the shipped configuration: " + MEASURED_BYTES + ", else "
                "params x bytes per parameter of the dtype",
    "cost": "unit_usd x devices: capex for boards the deployment buys; for user-owned devices "
            "(phones) the users' outlay, not the deployment's",
    "answer": "the cheapest device class (unit price) on which the student fits and meets the "
              "SLA, against the teacher's",
}


def usable_memory_mib(limit_gib: Optional[float], device_gib: Optional[float]) -> float:
    """The scenario's limit capped at the device's memory; inf where neither is given."""
    caps = [g * GIB / MIB for g in (limit_gib, device_gib) if _finite(g)]
    return min(caps, default=math.inf)


def energy_wh_per_1k(power_w: Optional[float], service_ms: Any) -> Optional[float]:
    """Energy of 1,000 inferences in Wh: power_w x service_ms / 1000 s x 1000 / 3600."""
    if not _finite(power_w) or not _finite(service_ms):
        return None
    return float(power_w) * float(service_ms) / 3600


def weight_sources(results: pd.DataFrame) -> dict[tuple, str]:
    """(model, backend, dtype) -> where its weight bytes come from (roi.measurements says)."""
    if "weight_bytes_source" not in results.columns:
        return {}
    rows = results.drop_duplicates(["model", "backend", "dtype"])
    return {(r.model, r.backend, r.dtype): (MEASURED_BYTES if r.weight_bytes_source == "measured"
                                            else str(r.weight_bytes_source))
            for r in rows.itertuples()}


def device_row(row: dict, hw: Hardware, scenario: Scenario,
               weight_source: Optional[str] = None) -> dict:
    """One model on one device: fits, latency, energy, battery, artifact and fleet cost."""
    limit = usable_memory_mib(scenario.constraints.memory_limit_gib, hw.figure("memory_gib"))
    total = float(row["total_mib"])
    fits, meets = total <= limit, bool(row["meets_sla"])
    power, battery, price = (hw.figure(k) for k in ("power_w", "battery_wh", "unit_usd"))
    energy = {b: energy_wh_per_1k(power, row.get(f"service_ms_{b}")) for b in BANDS}
    share = energy["p50"] / battery if battery and energy["p50"] is not None else None
    per_day = None if share is None else share * scenario.workload.daily_requests / 1000
    devices = scenario.devices
    return {
        "scenario": scenario.name, "device": hw.name, "description": hw.description,
        "model": row["model"], "role": row["role"],
        "config": f"{row['backend']}/{row['dtype']}", "deploy_runtime": row.get("deploy_runtime"),
        "source": row.get("source"), "memory_mib": total,
        "runtime_mib": row.get("runtime_mib"), "runtime_source": row.get("runtime_source"),
        "usable_memory_mib": limit if math.isfinite(limit) else None, "fits": fits,
        **{f"service_ms_{b}": row.get(f"service_ms_{b}") for b in BANDS},
        "latency_ms_at_sla_percentile": row.get("latency_ms_alone_p90"), "meets_sla": meets,
        "runs": fits and meets, "why_not": None if fits and meets else _why_not(row, fits, limit),
        "power_w": power, **{f"energy_wh_per_1k_{b}": energy[b] for b in BANDS},
        "battery_wh": battery, "battery_share_per_1k": share, "battery_share_per_day": per_day,
        "artifact_bytes": row.get("weight_bytes"),
        "artifact_source": weight_source or "the results' weight_bytes",
        "unit_usd": price, "user_owned": hw.user_owned,
        "fleet_usd": price * devices if price is not None and devices else None,
        "missing": [name for key, name in (("unit_usd", "price"), ("power_w", "power"))
                    if hw.figure(key) is None],
        "notes": _notes(hw)}


def _why_not(row: dict, fits: bool, limit: float) -> str:
    if not _finite(row.get("service_ms_p50")):
        return str(row.get("reason") or "latency unknown")
    if not fits:
        return fit_verdict(float(row["total_mib"]), limit) + " (runtime included)"
    return str(row.get("reason") or "misses the SLA")


def _notes(hw: Hardware) -> list[str]:
    notes = []
    if hw.figure("unit_usd") is None:
        notes.append("no price figure: not costed (add unit_usd with --hardware FILE)")
    if hw.figure("power_w") is None:
        notes.append("no power figure: energy and battery not computed (add power_w)")
    elif hw.user_owned and hw.figure("battery_wh") is None:
        notes.append("no battery figure: battery share not computed (add battery_wh)")
    return notes


def scenario_edge(scenario: Scenario, best_hw: pd.DataFrame, catalog: Catalog, teacher: str,
                  student: Optional[str], sources: Optional[dict] = None) -> dict:
    """The device table of one device scenario and its answer."""
    sources = sources or {}
    mine = best_hw[best_hw["scenario"] == scenario.name]
    order = {h: i for i, h in enumerate(scenario.candidate_hardware)}
    records = sorted(mine.to_dict("records"), key=lambda r: (order.get(r["hardware"], 0),
                                                              r["model"] != teacher))
    rows = [device_row(r, catalog.get(r["hardware"]), scenario,
                       sources.get((r["model"], r["backend"], r["dtype"])))
            for r in records]
    owned = {r["user_owned"] for r in rows}
    return {"scenario": scenario.name, "devices": scenario.devices, "teacher": teacher,
            "student": student,
            "ownership": ("users' own devices (not capex)" if owned == {True} else
                          "bought by the deployment (capex)" if owned == {False} else "mixed"),
            "rows": rows, "answer": edge_answer(rows, teacher, student, scenario.devices)}


def _runs(rows: list[dict], model: Optional[str]) -> tuple[list[dict], Optional[dict]]:
    """The rows where `model` runs, and the cheapest priced one (None where none is priced)."""
    ok = [r for r in rows if r["model"] == model and r["runs"]]
    priced = [r for r in ok if r["unit_usd"] is not None]
    return ok, min(priced, key=lambda r: r["unit_usd"], default=None)


def edge_answer(rows: list[dict], teacher: str, student: Optional[str],
                devices: Optional[int]) -> dict:
    """'runs on the cheaper device class', 'runs at all' or 'no change', with the dollars
    where prices (and a unit count) are given."""
    t_ok, t_best = _runs(rows, teacher)
    s_ok, s_best = _runs(rows, student)
    out: dict[str, Any] = {"student_device": _name(s_best or next(iter(s_ok), None)),
                           "teacher_device": _name(t_best or next(iter(t_ok), None)),
                           "saves_usd_per_device": None, "saves_usd": None, "devices": devices}
    if student is None or not s_ok:
        who = f"{student} runs on no candidate device" if student else "no student is costed"
        where = f"; the teacher runs on {_names(t_ok)}" if t_ok else (
            "; nor does the teacher" if student else "")
        return {**out, "kind": NO_CHANGE, "text": f"no change: {who}{where}"}
    if not t_ok:
        why = "; ".join(f"{r['device']}: {_brief(r['why_not'])}" for r in rows
                        if r["model"] == teacher)
        dev = s_best or s_ok[0]
        return {**out, "kind": RUNS_AT_ALL,
                "text": f"runs at all: the teacher runs on no candidate device ({why}); "
                        f"{student} runs on {dev['device']}{_price_text(dev, devices)}"}
    if s_best and t_best and s_best["unit_usd"] < t_best["unit_usd"]:
        per = t_best["unit_usd"] - s_best["unit_usd"]
        total = per * devices if devices else None
        whose = " (the users' outlay, not capex)" if s_best["user_owned"] else " of capex"
        text = (f"runs on the cheaper device class ({s_best['device']} instead of "
                f"{t_best['device']}): saves ${per:,.0f} per device"
                + (f", ${total:,.0f} for {devices:,} devices{whose}" if total is not None
                   else " (no unit count: give the scenario devices: N)"))
        return {**out, "kind": CHEAPER, "text": text, "saves_usd_per_device": per,
                "saves_usd": total}
    if s_best is None or t_best is None:
        text = (f"no change in dollars: no price figure to compare device classes (the student "
                f"runs on {_names(s_ok)}, the teacher on {_names(t_ok)})")
    else:
        text = (f"no change: the teacher already runs on {t_best['device']}"
                f"{_price_text(t_best, devices)}, the cheapest class the student runs on")
    return {**out, "kind": NO_CHANGE, "text": text}


def side_by_side(rows: list[dict], teacher: str, student: Optional[str],
                 device: Optional[str]) -> Optional[str]:
    """Energy and download of student vs teacher on one device, in words (None if unknown)."""
    pick = {r["model"]: r for r in rows if r["device"] == device}
    s, t = pick.get(student), pick.get(teacher)
    if s is None or t is None:
        return None
    parts = []
    es, et = s["energy_wh_per_1k_p50"], t["energy_wh_per_1k_p50"]
    if es is not None and not t["runs"]:
        parts.append(f"{es:.3g} Wh per 1,000 inferences (the teacher does not run there)")
    elif es is not None and et is not None and et > 0:
        parts.append(f"{es:.3g} Wh per 1,000 inferences vs the teacher's {et:.3g} "
                     f"({es / et - 1:+.0%})")
    if _finite(s["artifact_bytes"]) and _finite(t["artifact_bytes"]):
        parts.append(f"a {_mb(s['artifact_bytes'])} download vs {_mb(t['artifact_bytes'])}")
    return f"on {device}, {student}: " + "; ".join(parts) if parts else None


def edge_section(scenarios: list[Scenario], best_hw: pd.DataFrame, catalog: Catalog,
                 teacher: str, student: Optional[str],
                 results: Optional[pd.DataFrame] = None) -> Optional[dict]:
    """The plan's `edge` key: per device scenario, its table and answer; None where no
    scenario deploys to devices."""
    device = [s for s in scenarios if s.deployment == "device"]
    if not device:
        return None
    sources = weight_sources(results) if results is not None else {}
    out = {}
    for s in device:
        e = scenario_edge(s, best_hw, catalog, teacher, student, sources)
        dev = e["answer"]["student_device"] or e["answer"]["teacher_device"]
        e["answer"]["also"] = side_by_side(e["rows"], teacher, student, dev)
        out[s.name] = e
    return {"method": METHOD, "scenarios": out}


def _price_text(row: dict, devices: Optional[int]) -> str:
    price = row["unit_usd"]
    if price is None:
        return " (no price figure: not costed)"
    owned = ", the users' own" if row["user_owned"] else ""
    whose = ": the users' outlay, not capex" if row["user_owned"] else " of capex"
    fleet = f"; ${price * devices:,.0f} for {devices:,} devices{whose}" if devices else ""
    return f" (${price:,.0f} each{owned}{fleet})"


def _brief(why: str) -> str:
    """A reason without its parenthesised detail (the table row keeps the whole of it)."""
    while True:
        short = re.sub(r"\s*\([^()]*\)", "", why)
        if short == why:
            return short
        why = short


def _name(row: Optional[dict]) -> Optional[str]:
    return None if row is None else row["device"]


def _names(rows: list[dict]) -> str:
    return ", ".join(dict.fromkeys(r["device"] for r in rows)) or "none"


def _mb(n: Any) -> str:
    return f"{float(n) / 1e6:,.1f} MB"


def _finite(x: Any) -> bool:
    try:
        return x is not None and not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
