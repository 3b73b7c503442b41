"""Choices the plan stores so that reports and the console only render them (DESIGN.md, the Plan
contract): the configuration each model is costed at per scenario (`cheapest`), and the seed's
expected ranges, as numbers, beside our figures for the planned student (`seed_figures`).

Each candidate also gets its monthly cost where the headline answers (`scenario_cost`) and its
budget's KD gain (`kd_gain`). The planner records them all (`record_choices`); a plan written
before these fields existed is completed by the same functions when it is rendered
(reports.inputs), so there is one copy.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import pandas as pd

from contracts.numbers import number

from .fleet import best_per_model
from .plan_document import plain
from .readout import ok_results, reduction
from .scenarios import SeedRanges

COST_BASIS = ("1 − student / teacher monthly cost, each on its cheapest configuration meeting "
              "the scenario (projected or measured, P50)")
NO_COST_BASIS = ("the teacher or the student could not be costed (or the teacher costs nothing "
                 "here)")
TRANSFER_BASIS = ("weight bytes to ship (teacher vs student, smallest dtype measured); request "
                  "traffic is not modelled")


def cheapest(cost: list[dict], sizing: list[dict], scenarios: list[str]) -> list[dict]:
    """Per (scenario, model), in the plan's scenario order then by model: the configuration the
    planner costs the model at (roi.fleet.best_per_model: the cheapest feasible, ties to the
    faster at P90, else the closest miss, with every hardware's reason in `misses`), with its
    sizing row's `service_ms_p50`. cost and sizing: the plan's rows."""
    if not cost:
        return []
    key = ["scenario", "hardware", "model"]
    times = pd.DataFrame(sizing, columns=[*key, "service_ms_p50", "service_ms_p90"])
    df = pd.DataFrame(cost).merge(times, on=key, how="left")
    misses = {k: list(dict.fromkeys(g["reason"].fillna("").astype(str)))
              for k, g in df.groupby(["scenario", "model"], sort=False)}
    order = {s: i for i, s in enumerate(scenarios)}
    best = best_per_model(df).drop(columns="service_ms_p90").to_dict("records")
    best.sort(key=lambda r: (order.get(r["scenario"], len(order)), r["model"]))
    return [plain({**r, "misses": [] if r["feasible"] else misses[r["scenario"], r["model"]]})
            for r in best]


def local_latency_ratio(results: pd.DataFrame | None, teacher: str, student: str,
                        rec: dict) -> tuple[float | None, str]:
    """1 - student/teacher median latency measured here, at the student's deploy runtime (rec:
    the student's plan entry), smallest batch: a like-for-like measured figure."""
    df = ok_results(results)
    if df.empty:
        return None, "no results table"
    for backend, dtype in ((rec.get("deploy_backend"), rec.get("deploy_dtype")), (None, None)):
        sub = df if backend is None else df[(df["backend"] == backend) & (df["dtype"] == dtype)]
        t, s = sub[sub["model"] == teacher], sub[sub["model"] == student]
        both = t.merge(s, on=["backend", "dtype", "batch_size", "seq_len"], suffixes=("_t", "_s"))
        if len(both):
            row = both.sort_values(["batch_size", "seq_len"]).iloc[0]
            return (reduction(row["latency_s"], row["latency_t"]),
                    (f"measured here: {row['backend']}/{row['dtype']}, batch "
                    f"{int(row['batch_size'])}, {int(row['seq_len'])} tokens, p50"))
    return None, "teacher and student share no measured configuration"


def weights_ratio(results: pd.DataFrame | None, teacher: str, student: str) -> float | None:
    """1 - student/teacher weight bytes (the smallest dtype measured of each)."""
    df = ok_results(results)
    if df.empty or "weight_bytes" not in df:
        return None
    w = df.groupby("model")["weight_bytes"].min()
    return reduction(w.get(student), w.get(teacher))


def band_position(value: Optional[float], band: Optional[tuple[float, float]]) -> Optional[str]:
    """Where a figure lies against a (low, high) range: inside, below or above; None without
    both."""
    if value is None or band is None:
        return None
    return "inside" if band[0] <= value <= band[1] else ("below" if value < band[0] else "above")


def _seed_ranges(seed: Optional[SeedRanges]) -> dict[str, tuple[str, Any]]:
    """figure -> (the seed's words, its range as fractions); ("", None) without a seed row."""
    if seed is None:
        return dict.fromkeys(("inference_cost_reduction", "latency_improvement",
                              "data_transfer"), ("", None))
    return {"inference_cost_reduction": (seed.inference_cost_reduction, seed.cost_reduction),
            "latency_improvement": (seed.latency_improvement, seed.latency_reduction),
            "data_transfer": (seed.data_transfer, seed.data_transfer_reduction)}


def seed_figures(seeds: Iterable[tuple[str, Optional[SeedRanges]]], best: list[dict],
                 results: pd.DataFrame | None, teacher: str, student: str,
                 rec: dict) -> list[dict]:
    """Per scenario (name, its seed row or None): the seed's inference cost reduction, latency
    improvement and data transfer ranges (as fractions) beside ours for `student` (rec: its
    plan entry): the cost from `best` (cheapest rows), latency and weight bytes from the
    results table."""
    faster, how = local_latency_ratio(results, teacher, student, rec)
    lighter = weights_ratio(results, teacher, student)
    rows = []
    for name, seed in seeds:
        cost = {r["model"]: number(r.get("usd_per_month")) if r.get("feasible") else None
                for r in best if r["scenario"] == name}
        saved = reduction(cost.get(student), cost.get(teacher))
        ours = {"inference_cost_reduction": (saved, COST_BASIS if saved is not None
                                             else NO_COST_BASIS),
                "latency_improvement": (faster, how), "data_transfer": (lighter, TRANSFER_BASIS)}
        for figure, (expected, band) in _seed_ranges(seed).items():
            value, basis = ours[figure]
            rows.append({"scenario": name, "figure": figure, "student": student,
                         "expected": expected,
                         "band": None if band is None else {"low": band[0], "high": band[1]},
                         "value": value, "verdict": band_position(value, band), "basis": basis})
    return rows


def scenario_cost(c: dict, roi: dict) -> float | None:
    """A candidate's monthly cost where the plan's headline answers: the headline scenario's
    alone, or (portfolio, or an old plan) summed over the scenarios."""
    name = roi.get("scenario") if roi.get("scope") == "scenario" else None
    if not name:
        return number(c.get("usd_per_month"))
    entry = next((p for p in c.get("per_scenario") or [] if p.get("scenario") == name), {})
    return number(entry.get("usd_per_month")) if entry.get("feasible") else None


def kd_gain(budget: dict) -> tuple[float, int] | None:
    """KD's P50 retention over the baseline's, in points, at the grid step nearest the chosen
    budget (from the plan's grids), and that step; None where the grids do not say."""
    kd, ce, steps = budget.get("grid") or [], budget.get("baseline_grid") or [], budget.get("steps")
    if not kd or not ce or steps is None:
        return None
    at = {r["steps"]: r for r in ce}
    kd_at = {r["steps"]: r for r in kd}
    near = min(kd_at, key=lambda s: abs(s - steps))
    if near not in at:
        return None
    return 100 * (kd_at[near]["retention_p50"] - at[near]["retention_p50"]), near


def _candidates(doc: dict) -> list[dict]:
    return ([doc["recommended"]] if doc.get("recommended") else []) + doc["alternatives"]


def record_choices(doc: dict, scenarios: Iterable[Any], results: pd.DataFrame | None) -> None:
    """Store in the plan document what reports and the console render: `cheapest` and
    `seed_figures` (for the student the trainer section names), from its cost and sizing rows,
    its scenarios (roi.scenarios.Scenario) and the results table it was planned from; and on
    each candidate its headline cost and its budget's KD gain."""
    best = cheapest(doc["cost"], doc["sizing"], doc["scenarios"])
    student = doc["trainer"]["student"]
    rec = next((c for c in _candidates(doc) if c["model"] == student), {})
    doc["cheapest"] = best
    doc["seed_figures"] = seed_figures([(s.name, s.seed) for s in scenarios], best, results,
                                       doc["teacher"]["model"], student, rec)
    for c in _candidates(doc):
        c["headline_usd_per_month"] = scenario_cost(c, doc["roi"])
        if c.get("budget"):
            gain = kd_gain(c["budget"])
            c["budget"]["kd_gain"] = None if gain is None else {"points": gain[0],
                                                                "steps": gain[1]}
