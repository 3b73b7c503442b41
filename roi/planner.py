"""`roi plan`: from results tables and scenarios to the distillation plan.

(The module is planner.py, not plan.py, so that `roi.plan` can be the function: a submodule
named plan would replace it as an attribute of the package as soon as anything imported it.)

    results ──► calibration (roi.projection) ──► service times per hardware (roi.service)
        ──► sizing and cost per scenario (roi.fleet) ──► retention + recommendation
        ──► decision (roi.decision) ──► ROI (roi.payback) ──► plan.yaml / plan.json

Everything is checked before anything is written; `write_plan` writes both files atomically.
The plan's top-level keys are a contract with the trainer (roi distill reads `decision` and
`trainer`) and the reports: see PLAN_KEYS.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import pandas as pd
import yaml

from contracts.curves import CurvesArg, finite, load_curves
from contracts.errors import InputError
from contracts.io import write_json_atomic, write_text_atomic
from contracts.results import read_table

from .datagen_cost import DataGenCost, generation_cost, teacher_generation_rates
from .decision import Criterion, Decision, Outcome, changes, criteria, decide, weigh
from .edge import edge_section
from .fleet import Assumptions, best_per_hardware, best_per_model, scenario_grid
from .hardware import Catalog, load_catalog
from .measurements import load_results, loadgen_peaks, merge, prepare
from .budget import BudgetChoice
from .budget import choose as choose_budget
from .forecast import Forecasts
from .forecast import build as build_forecasts
from .forecast import record as forecast_record
from .payback import (
    Bands,
    OneTimeCost,
    Roi,
    RoiInputs,
    monte_carlo,
    one_time_cost,
    record_inputs,
    tornado,
)
from .projection import calibrate, check_memory_efficiency, leave_one_out_report
from .recommend import DEFAULT_THRESHOLD, Candidate, candidates, check_threshold, recommend
from .retention import RetentionBand
from .sanity import measurement_warnings
from .scenarios import Scenario, load_scenarios
from .service import NOT_APPLICABLE, forward_times

log = logging.getLogger(__name__)

PLAN_VERSION = 1
PLAN_KEYS = ("version", "scenarios", "decision", "recommended", "alternatives", "teacher",
             "trainer", "cost", "sizing", "roi", "projection", "sources", "forecast")
# The trainer section: fields of distill.config.TrainConfig only (roi distill validates them).
# Measured (BENCHMARKS.md, 10x student, 600 steps): T=1, α=0.9, lr 3e-3 beat the no-KD
# baseline by 1.4 points where T=2, α=0.5, lr 1e-3 lost to it by 1.0.
# wsd schedule with a short warm-up: a run of N steps is a longer run up to its decay, so pilots
# (roi pilot) measure whole runs of several budgets in one (distill.pilot). The student starts
# cut out of the teacher (distill.prune): the 10x student reached after 400 steps what a random
# init reached after ~1,300, without the random init's plateau (BENCHMARKS.md).
TRAINER_DEFAULTS = {"mode": "kd", "init": "teacher-pruned", "temperature": 1.0, "alpha": 0.9,
                    "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 20, "schedule": "wsd",
                    "decay_fraction": 0.2, "steps": 1500}
REACH = 64  # the largest budget considered, in multiples of the longest pilot: the band widens
# with the log of the distance (BENCHMARKS.md measures it at 16x), so far budgets rarely reach
# the threshold at P10 and stay "not confirmed" until a longer run is measured
TRAINER_BATCH_TOKENS = 16 * 256  # TrainConfig's default batch_size x block_size
LOO_GOAL = 0.15
# What the recommended student's deploy_backend / deploy_dtype mean (bench's quality gate: issue 7;
# roi.measurements leaves rows that failed it out).
DEPLOY_NOTE = ("costed as deployed: the cheapest measured variant (backend/dtype) that passed "
               "bench's quality gate against fp32; variants that failed it are never costed")

ResultsArg = Union[pd.DataFrame, str, Path, Sequence[Union[pd.DataFrame, str, Path]]]
ScenarioArg = Union[Scenario, str, Path, Sequence[Union[Scenario, str, Path]]]


@dataclass(frozen=True)
class Plan:
    """The plan as data (`document`: the contract's keys) plus the full sizing grid."""

    document: dict
    grid: pd.DataFrame = field(repr=False)

    @property
    def go(self) -> bool:
        return bool(self.document["decision"]["go"])

    @property
    def recommended(self) -> Optional[dict]:
        return self.document["recommended"]

    def to_dict(self) -> dict:
        return self.document


# ------------------------------------------------------------------------------ inputs


def resolve_catalog(hardware: Catalog | str | Path | Iterable | None) -> Catalog:
    if isinstance(hardware, Catalog):
        return hardware
    return load_catalog(hardware)


def resolve_scenarios(scenario: ScenarioArg, catalog: Catalog) -> list[Scenario]:
    items = [scenario] if isinstance(scenario, (Scenario, str, Path)) else list(scenario)
    if not items:
        raise InputError("scenario: give at least one scenario (a preset name or a YAML file)")
    out: list[Scenario] = []
    for item in items:
        if isinstance(item, Scenario):
            item.check_hardware(catalog)
            out.append(item)
        else:
            out.extend(load_scenarios(item, catalog))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"scenario: {', '.join(dupes)} given more than once")
    return out


def resolve_results(results: ResultsArg, catalog: Catalog) -> pd.DataFrame:
    items = [results] if isinstance(results, (pd.DataFrame, str, Path)) else list(results)
    paths = [i for i in items if not isinstance(i, pd.DataFrame)]
    prepared = {"machine", "cv_source", "flops_source"}  # what roi.measurements.prepare adds
    frames = [i if prepared <= set(i.columns) else prepare(i, catalog, i.attrs.get("where",
                                                                               "results"))
              for i in items if isinstance(i, pd.DataFrame)]
    if paths:
        frames.append(load_results(paths, catalog))
    if not frames:
        raise InputError("results: give at least one results table")
    return merge(frames)


def resolve_peaks(results: ResultsArg, catalog: Catalog) -> pd.DataFrame:
    """LoadGen peaks (roi loadtest --find-peak rows) of every results table given."""
    items = [results] if isinstance(results, (pd.DataFrame, str, Path)) else list(results)
    frames = [loadgen_peaks(i if isinstance(i, pd.DataFrame) else read_table(i), catalog,
                            str(i) if not isinstance(i, pd.DataFrame) else "results")
              for i in items]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _teacher_and_students(results: pd.DataFrame) -> tuple[tuple[str, int], dict[str, int]]:
    teachers = results[results["role"] == "teacher"]
    names = sorted(teachers["model"].unique())
    if not names:
        raise InputError("results: role: no ok row has role teacher; allowed roles teacher, "
                         "student; a plan compares students against one teacher")
    if len(names) > 1:
        raise InputError(f"results: role: {len(names)} teacher models ({', '.join(names)}); "
                         f"allowed: exactly one teacher per plan")
    students = results[results["role"] == "student"].groupby("model")["params"].first()
    teacher_params = int(teachers["params"].iloc[0])
    return (names[0], teacher_params), {m: int(p) for m, p in students.items()}


# ------------------------------------------------------------------------------ the plan


def plan(results: ResultsArg, scenario: ScenarioArg, *,
         hardware: Catalog | str | Path | Iterable | None = None,
         retention_threshold: float = DEFAULT_THRESHOLD,
         measured_retention: dict[str, float] | None = None,
         local_peak_gflops: float | None = None,
         assumptions: Assumptions = Assumptions(),
         roi_inputs: RoiInputs = RoiInputs(),
         require_benefit: bool = True,
         pilot: CurvesArg | None = None,
         max_steps: int | None = None,
         report_steps: Sequence[int] = (),
         portfolio: bool = False) -> Plan:
    """The distillation plan for `results` (DataFrame(s) or results files) under `scenario`
    (Scenario(s), preset names or YAML files). Raises InputError on bad input.

    require_benefit=False gives the seed's framework alone: go when a criterion holds and a
    student qualifies, even if our figures show the student saves nothing. Otherwise a criterion
    counts only in a scenario whose outcome the student changes (roi.decision.weigh).

    pilot: pilot curves (roi pilot's pilot.csv, a distillation's metrics.json, or a DataFrame
    of the contracts.curves contract): retention is forecast from them per training budget and the
    budget becomes a decision (the fewest steps, up to max_steps [default: REACH x the longest
    pilot], whose P10 reaches the threshold). report_steps: budgets whose forecast the plan
    records too (roi run's own).

    Every scenario gets its own ROI (roi.per_scenario). The headline figures answer for one
    scenario, the one where the student saves most (roi.scenario), unless portfolio=True says
    the scenarios are deployed together: then they are the total across them, labelled so."""
    check_threshold(retention_threshold)
    check_memory_efficiency(assumptions.memory_efficiency)
    if local_peak_gflops is not None and not (local_peak_gflops > 0):
        raise InputError(f"local peak must be > 0 GFLOP/s; got {local_peak_gflops}")
    catalog = resolve_catalog(hardware)
    scenarios = resolve_scenarios(scenario, catalog)
    training_hw = catalog.get(roi_inputs.training_hardware)
    df = resolve_results(results, catalog)
    (teacher, teacher_params), students = _teacher_and_students(df)

    peaks = {"fp32": local_peak_gflops * 1e9} if local_peak_gflops else None
    fits = calibrate(df, peaks)
    names = list(dict.fromkeys([h for s in scenarios for h in s.candidate_hardware]
                               + [training_hw.name]))
    fwd = forward_times(df, fits, [catalog.get(n) for n in names],
                        assumptions.memory_efficiency)
    peaks = resolve_peaks(results, catalog)
    grid = pd.concat([scenario_grid(s, fwd, catalog, assumptions, peaks) for s in scenarios],
                     ignore_index=True)
    best_hw = best_per_hardware(grid)
    best_model = best_per_model(best_hw)

    forecasts = read_forecasts(pilot, teacher)
    limit = _max_steps(forecasts, max_steps)
    cost = _one_time_fn(roi_inputs, fwd, teacher, training_hw)
    budgets = _budget_fn(forecasts, retention_threshold, limit, cost)
    ranked = candidates(best_model, students, teacher_params, retention_threshold,
                        measured_retention, budgets, roi_inputs.horizon_months)
    chosen, why_none = recommend(ranked)
    tentative = None if chosen is not None else unconfirmed(ranked, roi_inputs.horizon_months)
    bills = {s.name: _teacher_bill(grid, s.name, teacher) for s in scenarios}
    crit = [c for s in scenarios for c in criteria(s, bills[s.name]["usd_per_month"])]
    roi = _roi_section(chosen or tentative, ranked, bills, scenarios, cost, roi_inputs,
                       students, portfolio, {c.scenario for c in crit if c.verdict == "met"})
    chosen, why_none, tentative = _per_deployment(chosen, why_none, tentative, ranked, roi)
    benefit = _benefit(chosen, bills, roi)
    if require_benefit:
        crit = weigh(crit, _outcomes(roi))
    else:
        benefit = (True, benefit[1])
    decision = decide(crit, chosen.model if chosen else None, why_none, benefit)
    _scenario_decisions(roi, crit, chosen)
    doc = _document(scenarios, decision, chosen, why_none, ranked, teacher, teacher_params,
                    best_hw, roi, fits, df, fwd, grid, retention_threshold, assumptions,
                    roi_inputs, local_peak_gflops)
    if tentative is not None:
        doc["decision"]["retention_unconfirmed"] = _unconfirmed_record(tentative, limit)
        doc["decision"]["reasons"].insert(1, doc["decision"]["retention_unconfirmed"]["reason"])
        doc["trainer"]["student"] = tentative.model
    doc["forecast"] = _forecast_section(forecasts, retention_threshold, limit, report_steps)
    if forecasts is not None:
        doc["forecast"]["pilot_compute"] = _pilot_compute(forecasts, chosen or tentative)
    doc["trainer"].update(_trainer_budget(forecasts, chosen or tentative
                                          or next(iter(ranked), None)))
    edge = edge_section(scenarios, best_hw, catalog, teacher, roi.get("student"), df)
    if edge is not None:  # device scenarios only
        doc["edge"] = edge
    warnings = measurement_warnings(df)
    if warnings:  # measurements from a busy machine (roi.sanity), each named once
        doc["warnings"] = warnings
    doc = {**{k: doc[k] for k in PLAN_KEYS}, **doc}  # the contract's keys first, in order
    return Plan(_plain(doc), grid)


# ------------------------------------------------------------------------------ budgets


def read_forecasts(pilot: CurvesArg | None, teacher: str) -> Optional[Forecasts]:
    """Forecasts from pilot curves (None without any), refused when they were measured with
    another teacher than the plan's."""
    if pilot is None:
        return None
    table = load_curves(pilot)
    if table.empty:
        return None
    other = sorted(set(table["teacher"].dropna().astype(str)) - {teacher})
    if other:
        raise InputError(f"pilot curves: measured with teacher {other[0]}, but the results' "
                         f"teacher is {teacher}: pilots must distill the plan's teacher")
    return build_forecasts(table)


def _max_steps(fc: Optional[Forecasts], given: Optional[int]) -> int:
    if given is not None:
        if not (isinstance(given, int) and given > 0):
            raise InputError(f"max_steps must be a positive number of steps; got {given!r}")
        return given
    if fc is None:
        return int(TRAINER_DEFAULTS["steps"])
    return int(REACH * max(fc.longest_steps, 1))


def _one_time_fn(inputs: RoiInputs, fwd: pd.DataFrame, teacher: str, hw):
    """(student params, training tokens) -> the one-time cost on the training hardware."""
    rate = _teacher_tokens_per_s(fwd, teacher, hw)
    generation = _generation(inputs, fwd, teacher, hw)

    def cost(params: int, tokens: float) -> OneTimeCost:
        return one_time_cost(inputs, usd_per_hour=hw.usd_per_hour or 0.0,
                             training_tokens=tokens, student_params=params,
                             peak_bf16_flop_s=_bf16_peak(hw), teacher_tokens_per_s=rate,
                             generation=generation)
    return cost


def _budget_fn(fc: Optional[Forecasts], threshold: float, max_steps: int, cost):
    """Per student: its budget (roi.budget.choose) from its KD forecast, or the prior."""
    batch = fc.batch_tokens if fc is not None else float(TRAINER_BATCH_TOKENS)
    default = int(TRAINER_DEFAULTS["steps"])

    def budget(spec: str, params: int, prior: RetentionBand) -> BudgetChoice:
        kd = fc.get(spec, "kd") if fc is not None else None
        why = fc.why_not(spec, "kd") if fc is not None else "no pilot curves given"
        return choose_budget(kd, prior, params, threshold, max_steps=max_steps,
                             default_steps=default, batch_tokens=batch, cost=cost,
                             baseline=fc.get(spec, "ce") if fc is not None else None,
                             why_no_forecast=why, piloted=bool(fc and fc.curves))
    return budget


def _forecast_section(fc: Optional[Forecasts], threshold: float, max_steps: int,
                      report_steps: Sequence[int]) -> dict:
    if fc is None:
        return {"source": "none: no pilot curves (roi pilot, or roi plan --pilot); retention "
                "is the prior, whatever the training budget", "max_steps": max_steps}
    return forecast_record(fc, threshold, max_steps, tuple(int(s) for s in report_steps))


def unconfirmed(ranked: list[Candidate], horizon_months: int) -> Optional[Candidate]:
    """Where no student qualifies only because its forecast P10 stays under the threshold while
    its P50 reaches it (costed on every scenario, nothing else failing): the cheapest such
    student over the horizon, whose longer run would settle it. None otherwise."""
    open_ = [c for c in ranked if c.budget is not None and c.budget.source == "forecast"
             and c.budget.steps_p50 and math.isfinite(c.usd_per_month)
             and all(r.startswith("retention") for r in c.reasons)]
    return min(open_, key=lambda c: c.horizon_usd(horizon_months), default=None)


def _unconfirmed_record(c: Candidate, max_steps: int) -> dict:
    b = c.budget
    return {"model": c.model, "steps_p50": b.steps_p50, "max_steps": max_steps,
            "retention_band": b.band.as_list(), "retention_p50": b.band.mid,
            "reason": (f"retention not confirmed: {c.model}'s forecast P50 reaches the threshold "
                       f"at {b.steps_p50:,} steps, but its P10 stays under it within "
                       f"{max_steps:,} steps ({b.band.low:.1%}-{b.band.high:.1%} at "
                       f"{b.steps_p50:,}); a longer pilot, or distilling it, narrows the band")}


def _pilot_compute(fc: Forecasts, chosen: Optional[Candidate]) -> dict:
    """What the pilots cost beside the distillation they plan (KD and its baseline), in the
    same count: 6 x student params per token trained, + 2 x teacher params per KD token."""
    out = {"pilot_flops": fc.pilot_flops, "basis": "6 x params x tokens per student step, "
           "+ 2 x teacher params x tokens for KD (the teacher's forward; the pilots share one "
           "teacher-logit cache, so theirs is counted once)"}
    if chosen is None or chosen.budget is None or not fc.teacher_params:
        return out
    tokens = chosen.budget.tokens
    planned = (12 * chosen.params + 2 * fc.teacher_params) * tokens
    out.update({"planned_distillation_flops": planned,
                "share": fc.pilot_flops / planned if planned else None})
    return out


def _trainer_budget(fc: Optional[Forecasts], trainee: Optional[Candidate]) -> dict:
    """The trainer section's budget (the chosen student's steps) and the pilots' recipe, so the
    full run is the run the forecast is for."""
    out: dict = {}
    if fc is not None and fc.settings:
        out.update({k: v for k, v in fc.settings.items() if k != "teacher" and v is not None})
    if trainee is not None and trainee.budget is not None:
        out["steps"] = int(trainee.budget.steps)
    return out


def _teacher_bill(grid: pd.DataFrame, scenario: str, teacher: str) -> dict:
    """The teacher's monthly cost (P50 with its P10-P90 band): the cheapest configuration that
    meets the scenario; where none does, the cheapest that fits memory sized by throughput
    alone (SLA ignored), said so."""
    t = grid[(grid["scenario"] == scenario) & (grid["model"] == teacher)]
    ok = t[t["feasible"]]
    if len(ok):
        row = ok.sort_values("usd_per_month").iloc[0]
        return {"usd_per_month": float(row["usd_per_month"]),
                "usd_per_month_p10": float(row["usd_per_month_p10"]),
                "usd_per_month_p90": float(row["usd_per_month_p90"]),
                "basis": "cheapest configuration meeting the SLA", "config": _brief(row)}
    fit = t[t["fits_memory"] & t["projectable"]]
    if len(fit):
        row = fit.sort_values("usd_per_month_throughput").iloc[0]
        cost = float(row["usd_per_month_throughput"])
        return {"usd_per_month": cost, "usd_per_month_p10": cost, "usd_per_month_p90": cost,
                "basis": "the teacher meets the SLA on no candidate hardware: costed by "
                "throughput alone (SLA ignored)", "config": _brief(row)}
    return {"usd_per_month": None, "usd_per_month_p10": None, "usd_per_month_p90": None,
            "basis": "the teacher fits or projects on no candidate hardware", "config": None}


def _brief(row: pd.Series) -> dict:
    return {"hardware": row["hardware"], "backend": row["backend"], "dtype": row["dtype"],
            "batch_size": int(row["batch_size"]), "source": row["source"],
            "service_ms_p50": finite(row.get("service_ms_p50")),
            "spread_note": str(row.get("spread_note") or "")}


def _roi_section(chosen: Optional[Candidate], ranked, bills, scenarios, cost,
                 inputs: RoiInputs, students, portfolio: bool = False,
                 criteria_met: frozenset | set = frozenset()) -> dict:
    """The ROI of each scenario (per_scenario) and the headline: the scenario where the student
    saves most (among those where a criterion holds and the student changes the outcome, if
    any), or with `portfolio` the total across scenarios (scope says which)."""
    target = chosen or next((c for c in ranked if math.isfinite(c.usd_per_month)), None)
    if target is None and not portfolio:  # one answer per deployment: costed somewhere will do
        target = next((c for c in ranked if any(p["feasible"] for p in c.per_scenario)), None)
    one = _one_time(target, students, cost)
    base = {"student": target.model if target else None, "inputs": record_inputs(inputs),
            "one_time": one.record(), "teacher_bill": bills,
            "scope": "portfolio" if portfolio else "scenario"}
    if chosen is None and target is not None:
        base["student_note"] = ("no student qualifies: the figures are for the closest "
                                "candidate, for comparison only")
    if target is None:
        base["note"] = "no savings figure: no student is costed on every scenario"
        return base
    who = {}  # scenario -> (the student its economics are for, that student's one-time cost)
    base["per_scenario"] = {}
    for s in scenarios:
        fit = _best_fit(ranked, s.name, inputs.horizon_months)
        mine = target
        if not portfolio and fit and fit["retention_qualifies"]:  # one answer per deployment
            mine = next(c for c in ranked if c.model == fit["model"])
        once = one if mine is target else _one_time(mine, students, cost)
        who[s.name] = (mine, once)
        entry = next((p for p in mine.per_scenario if p["scenario"] == s.name), None)
        base["per_scenario"][s.name] = {**_scenario_roi(s, bills[s.name], entry, once, inputs),
                                        "student": mine.model, "best_fit": fit}
    if portfolio:
        return _portfolio_roi(base, scenarios, bills, target, one, inputs)
    return _scenario_headline(base, scenarios, bills, who, inputs, criteria_met)


def _per_deployment(chosen, why_none, tentative, ranked, roi: dict):
    """One answer per deployment: the recommended student is the headline scenario's own
    (roi.student), where it qualifies on retention, though it may meet other scenarios nowhere
    (their own rows say so); those scenario reasons are not reasons against it here. With a
    portfolio, or where the headline's student does not qualify on retention, the ranking's
    choice stands."""
    if roi.get("scope") == "portfolio" or not roi.get("student"):
        return chosen, why_none, tentative
    pick = next((c for c in ranked if c.model == roi["student"]), None)
    if pick is None or not pick.retention_ok or (chosen is not None and chosen.model == pick.model):
        return chosen, why_none, tentative
    return replace(pick, qualifies=True, reasons=()), "", None


def _best_fit(ranked: list[Candidate], scenario: str, months: int) -> Optional[dict]:
    """The student this scenario alone would pick: among the students that qualify on retention
    (none: among all, marked not qualifying), the one meeting the scenario at the lowest cost
    over the horizon (monthly cost here x months + its own one-time cost); a tie goes to the
    higher retention. None where no student meets the scenario."""
    retained = [c for c in ranked if c.retention_ok] or list(ranked)
    best, key = None, None
    for c in retained:
        entry = next((p for p in c.per_scenario if p["scenario"] == scenario), None)
        if entry is None or not entry["feasible"]:
            continue
        once = c.budget.one_time.total_usd if c.budget is not None else 0.0
        k = (entry["usd_per_month"] * months + once, -c.retention.low)
        if key is None or k < key:
            best, key = (c, entry), k
    if best is None:
        return None
    c, entry = best
    return {"model": c.model, "params": int(c.params),
            "compression_ratio": round(c.compression_ratio, 4),
            "usd_per_month": entry["usd_per_month"], "horizon_usd": key[0],
            "config": _entry_brief(entry), "retention_qualifies": c.retention_ok}


def _one_time(target: Optional[Candidate], students, cost) -> OneTimeCost:
    if target is not None and target.budget is not None:
        return target.budget.one_time
    params = target.params if target else min(students.values(), default=0)
    return cost(params, float(TRAINER_DEFAULTS["steps"] * TRAINER_BATCH_TOKENS))


def _requests_per_month(s: Scenario) -> float:
    return s.workload.daily_requests * 730 / 24


def _scenario_roi(s: Scenario, bill: dict, entry: Optional[dict], one: OneTimeCost,
                  inputs: RoiInputs) -> dict:
    """One scenario's economics on its own: teacher and student monthly cost, savings, the
    one-time cost, payback and net over the horizon; and whether the student changes its
    outcome (roi.decision.changes)."""
    feasible = bool(entry and entry["feasible"])
    teacher = bill["usd_per_month"]
    student = entry["usd_per_month"] if feasible else None
    teacher_meets = bill["basis"] == "cheapest configuration meeting the SLA"
    outcome = changes(teacher, teacher_meets, student, feasible)
    rec: dict = {"scenario": s.name, "deployment": s.deployment, "student_feasible": feasible,
                 "teacher_meets_sla": teacher_meets,
                 "student_config": _entry_brief(entry) if feasible else None,
                 "teacher_config": bill["config"], "changes_outcome": outcome.changes,
                 "outcome": outcome.why, "one_time_usd": one.total_usd}
    rec["latency_improvement"] = _latency_improvement(bill["config"], rec["student_config"])
    # what widens this scenario's savings band: a fleet whose P90 is > 5x its P50 (roi.fleet)
    rec["band_drivers"] = [f"{who} on {c['hardware']}: {c['spread_note']}"
                           for who, c in (("teacher", bill["config"]),
                                          ("student", rec["student_config"]))
                           if c and c.get("spread_note")]
    if teacher is None or not feasible:
        rec["note"] = ("no savings figure: " + ("the teacher could not be costed"
                       if teacher is None else "the student meets this scenario nowhere"))
        return rec
    roi = Roi(one, float(teacher), float(student), _requests_per_month(s),
              inputs.horizon_months)
    figures = {k: v for k, v in roi.record().items() if k != "one_time"}
    return {**rec, **figures, "cost_reduction": (roi.monthly_savings_usd / teacher
                                                 if teacher > 0 else None)}


def _entry_brief(entry: dict) -> dict:
    return {k: entry.get(k) for k in ("hardware", "backend", "dtype", "batch_size", "source",
                                      "service_ms_p50", "spread_note")}


def _latency_improvement(teacher: Optional[dict], student: Optional[dict]) -> Optional[float]:
    """1 - student / teacher service time of one batch (P50), each on the configuration it is
    costed on (the seed's "latency improvement", at the deployment rather than on one
    machine)."""
    t = (teacher or {}).get("service_ms_p50")
    st = (student or {}).get("service_ms_p50")
    return 1 - st / t if t and st is not None else None


def _scenario_headline(base: dict, scenarios, bills, who: dict, inputs: RoiInputs,
                       criteria_met=frozenset()) -> dict:
    """The headline of one deployment: the scenario with the largest monthly savings among
    those where distilling is the answer (a criterion holds and the student changes the
    outcome), else among those the student meets (first in order on a tie). Its student (that
    scenario's own, `who`) is the headline's, and the plan's recommendation."""
    per = base["per_scenario"]
    costed = [s for s in scenarios if per[s.name].get("monthly_savings_usd") is not None]
    if not costed:
        notes = {per[s.name].get("note") for s in scenarios}
        return {**base, "scenario": None, "note": "; ".join(sorted(n for n in notes if n))}
    answers = [s for s in costed if s.name in criteria_met and per[s.name]["changes_outcome"]]
    best = max(answers or costed, key=lambda s: per[s.name]["monthly_savings_usd"])
    r = per[best.name]
    target, one = who[best.name]
    roi = Roi(one, r["teacher_usd_per_month"], r["student_usd_per_month"],
              r["requests_per_month"], inputs.horizon_months)
    why = ("the only scenario" if len(scenarios) == 1 else
           ("the scenario where distilling answers a criterion and saves most" if answers else
            "the scenario where the student saves most") + "; each deployment is a separate "
           "answer (per_scenario): totals across them only with portfolio")
    return {**base, "student": target.model, "one_time": one.record(), "scenario": best.name,
            "scenario_basis": why, **_headline(roi, _bands([best], bills, target), inputs)}


def _portfolio_roi(base: dict, scenarios, bills, target: Candidate, one: OneTimeCost,
                   inputs: RoiInputs) -> dict:
    """The total across scenarios that the user declared one portfolio (deployed together)."""
    per = base["per_scenario"]
    missing = [s.name for s in scenarios if per[s.name].get("monthly_savings_usd") is None]
    base = {**base, "scenario": None, "portfolio": [s.name for s in scenarios]}
    if missing:
        base["note"] = (f"no portfolio total: no savings figure for {', '.join(missing)} "
                        f"({'; '.join(per[n]['note'] for n in missing)})")
        return base
    roi = Roi(one, float(sum(per[s.name]["teacher_usd_per_month"] for s in scenarios)),
              float(sum(per[s.name]["student_usd_per_month"] for s in scenarios)),
              float(sum(per[s.name]["requests_per_month"] for s in scenarios)),
              inputs.horizon_months)
    return {**base, "scenario_basis": "portfolio: the scenarios are deployed together "
            "(portfolio: true), so the headline is their total, one student for all",
            **_headline(roi, _bands(scenarios, bills, target), inputs)}


def _headline(roi: Roi, bands: Bands, inputs: RoiInputs) -> dict:
    return {**roi.record(), "assumption": "the student is deployed on its cheapest feasible "
            "configuration per scenario; costs scale with request volume",
            "tornado": tornado(roi, bands),
            "monte_carlo": monte_carlo(roi, bands, inputs.monte_carlo_draws, inputs.seed),
            "cost_bands": {"teacher_usd_per_month": list(bands.teacher),
                           "student_usd_per_month": list(bands.student)}}


def _outcomes(roi: dict) -> dict[str, Outcome]:
    """What the ROI's student changes in each scenario (for roi.decision.weigh)."""
    return {name: Outcome(r["changes_outcome"], r["outcome"])
            for name, r in (roi.get("per_scenario") or {}).items()}


def _scenario_decisions(roi: dict, crit: list[Criterion], chosen: Optional[Candidate]) -> None:
    """Each scenario's own verdict, beside its ROI: go where the recommended student exists and
    a criterion counts there."""
    for name, r in (roi.get("per_scenario") or {}).items():
        mine = [c for c in crit if c.scenario == name]
        counted = [c.name for c in mine if c.counts]
        if chosen is None:
            go, why = False, "no student qualifies"
        elif not any(c.verdict == "met" for c in mine):
            go, why = False, "none of the seed's five criteria holds here"
        elif not counted:
            go, why = False, f"the student changes nothing here: {r['outcome']}"
        else:
            go, why = True, f"{', '.join(counted)}; {r['outcome']}"
        r["decision"], r["decision_reason"] = ("go" if go else "no-go"), why


def _bands(scenarios, bills, target: Candidate) -> Bands:
    """P10/P50/P90 of the two monthly costs, summed over `scenarios` (the grid's cost bands)."""
    per = {p["scenario"]: p for p in target.per_scenario}

    def total(rows, key) -> float:
        return float(sum(r[key] if r.get(key) is not None else r["usd_per_month"] for r in rows))

    teacher = [bills[s.name] for s in scenarios]
    student = [per[s.name] for s in scenarios]
    return Bands(tuple(total(teacher, k) for k in ("usd_per_month_p10", "usd_per_month",
                                                   "usd_per_month_p90")),
                 tuple(total(student, k) for k in ("usd_per_month_p10", "usd_per_month",
                                                   "usd_per_month_p90")))


def _generation(inputs: RoiInputs, fwd: pd.DataFrame, teacher: str, hw) -> DataGenCost:
    """Teacher-generated training data (issue 9): priced on the training hardware at the
    teacher's generation rates there, or through an API."""
    prefill, decode, source = teacher_generation_rates(fwd, teacher, hw.name)
    return generation_cost(inputs.datagen, hardware=hw.name, usd_per_hour=hw.usd_per_hour or 0.0,
                           prefill_tokens_per_s=prefill, decode_tokens_per_s=decode,
                           rate_source=source)


def _bf16_peak(hw) -> Optional[float]:
    v = hw.figure("peak_bf16_tflops")
    return v * 1e12 if v else None


def _teacher_tokens_per_s(fwd: pd.DataFrame, teacher: str, hw) -> Optional[float]:
    rows = fwd[(fwd["hardware"] == hw.name) & (fwd["model"] == teacher)]
    rows = rows[np.isfinite(rows["fwd_ms_p50"].astype(float))]
    if rows.empty:
        return None
    tps = rows["batch_size"] * rows["seq_len"] / (rows["fwd_ms_p50"] / 1e3)
    return float(tps.max())


def _benefit(chosen: Optional[Candidate], bills: dict, roi: dict) -> tuple[bool, str]:
    """Does the recommended student change anything we measured? It saves money, or it meets a
    scenario where the teacher meets the SLA nowhere."""
    if chosen is None:
        return False, ""
    rescued = [s for s, b in bills.items() if b["basis"] != "cheapest configuration meeting "
               "the SLA"]
    if rescued:
        return True, (f"the teacher cannot meet {', '.join(rescued)} on any candidate "
                      f"hardware; the student can")
    saving = roi.get("monthly_savings_usd")
    if saving is None:
        return True, ""
    where = _headline_label(roi)
    if saving > 0:
        return True, (f"ROI: saves ${saving:,.0f}/month ({where}); pays back the "
                      f"${roi['one_time']['total_usd']:,.0f} one-time cost in "
                      f"{roi['payback_months']:.1f} months")
    return False, (f"no measured benefit: the teacher already meets every scenario and the "
                   f"student saves nothing ({where}: ${roi['teacher_usd_per_month']:,.0f}/month "
                   f"against the student's ${roi['student_usd_per_month']:,.0f})")


def _headline_label(roi: dict) -> str:
    """What the headline figures answer for: one scenario, or the declared portfolio."""
    if roi.get("scope") == "portfolio":
        return f"portfolio of {len(roi.get('portfolio') or [])} scenarios"
    return str(roi.get("scenario"))


# ------------------------------------------------------------------------------ document

COST_COLUMNS = ["scenario", "hardware", "model", "role", "backend", "dtype", "batch_size",
                "deploy_runtime", "source", "qps_source", "usd_per_hour", "replicas_p50", "usd_per_month_p10",
                "usd_per_month", "usd_per_month_p90", "usd_per_1m_requests", "usd_per_1m_tokens",
                "feasible", "reason", "fleet_spread", "spread_note"]
SIZING_COLUMNS = ["scenario", "hardware", "model", "backend", "dtype", "batch_size",
                  "deploy_runtime", "source",
                  "service_ms_p10", "service_ms_p50", "service_ms_p90", "service_cv",
                  "wake_ms", "qps_per_replica_p50", "qps_per_replica_p90",
                  "qps_per_replica_predicted", "qps_source", "qps_note", "replicas_p50",
                  "utilization", "meets_sla",
                  "weights_mib", "activations_mib", "kv_cache_mib", "runtime_mib", "total_mib",
                  "memory_limit_mib", "fits_memory", "memory_verdict", "note"]


def _document(scenarios, decision: Decision, chosen: Optional[Candidate], why_none: str,
              ranked: list[Candidate], teacher: str, teacher_params: int,
              best_hw: pd.DataFrame, roi: dict, fits, df: pd.DataFrame, fwd: pd.DataFrame,
              grid: pd.DataFrame, threshold: float, assumptions: Assumptions,
              roi_inputs: RoiInputs, local_peak_gflops: Optional[float]) -> dict:
    trainee = chosen or next(iter(ranked), None)
    doc: dict[str, Any] = {
        "version": PLAN_VERSION,
        "scenarios": [s.name for s in scenarios],
        "decision": decision.record(),
        "recommended": _recommended(chosen),
        "alternatives": [c.record() for c in ranked if chosen is None or c.model != chosen.model],
        "teacher": {"model": teacher, "params": int(teacher_params)},
        "trainer": {"teacher": teacher, "student": trainee.model if trainee else teacher,
                    **TRAINER_DEFAULTS, **_datagen_trainer(roi_inputs)},
        "cost": _records(best_hw, COST_COLUMNS),
        "sizing": _records(best_hw, SIZING_COLUMNS),
        "roi": roi,
        "projection": _projection(fits, local_peak_gflops, assumptions),
        "sources": _sources(df, fwd, scenarios, ranked, best_hw),
        "retention_threshold": threshold,
        "assumptions": assumptions.record(),
        "scenario_details": [s.model_dump(mode="json") for s in scenarios],
    }
    if roi_inputs.datagen.active:
        doc["datagen_note"] = ("the trainer trains on teacher-generated data (sequence-level "
                               "KD): run roi generate, then roi distill --set "
                               "generated_data=DIR")
    if chosen is None:
        doc["no_recommendation_reason"] = f"no student meets these constraints: {why_none}"
        doc["trainer_note"] = ("no student qualifies, so the plan is no-go; the trainer section "
                               "names the closest candidate for a forced run")
    return _plain(doc)


def _datagen_trainer(inputs: RoiInputs) -> dict:
    """Trainer settings of a plan priced with generated data: train on it (the directory is
    known only once roi generate has run)."""
    if not inputs.datagen.active:
        return {}
    return {"data_mode": "generated", "generated_data": None}


def _recommended(c: Optional[Candidate]) -> Optional[dict]:
    if c is None:
        return None
    r = c.record()
    keep = ("model", "params", "compression_ratio", "retention_band", "retention_p50",
            "retention_steps", "deploy_backend", "deploy_dtype", "retention_source",
            "retention_note", "usd_per_month", "per_scenario", "budget")
    return {**{k: r[k] for k in keep}, "deploy_note": DEPLOY_NOTE}


def _records(df: pd.DataFrame, cols: list[str]) -> list[dict]:
    return df[[c for c in cols if c in df.columns]].to_dict(orient="records")


def _projection(fits, local_peak_gflops, assumptions: Assumptions) -> dict:
    loo = leave_one_out_report(fits)
    for row in loo:
        row["goal_median_ape"] = LOO_GOAL
        row["meets_goal"] = row["median_ape"] <= LOO_GOAL
    return {
        "method": "time = overhead + max(FLOPs / (peak x compute efficiency(params)), weight "
                  "bytes / (bandwidth x memory efficiency)); fitted per (machine, backend, "
                  "dtype) on mean latency; P10-P90 band from leave-one-model-out errors",
        "local_peak": {"gflop_s": local_peak_gflops, "source": "given" if local_peak_gflops
                       else "best rate achieved by a measured row (a lower bound of the true "
                       "peak: compute efficiencies, and so projections, come out optimistic)"},
        "memory_efficiency": {"value": assumptions.memory_efficiency,
                              "source": "assumption (compute-bound local runs cannot "
                              "calibrate it)"},
        "calibration": [f.record() for f in fits],
        "leave_one_out": loo,
    }


def _qps_sources(best_hw: pd.DataFrame) -> dict:
    """Which QPS-per-replica figure each chosen configuration used: a LoadGen peak measured
    under load where one applies (measured beats predicted), else the sizing model's."""
    cols = ["scenario", "hardware", "model", "backend", "dtype", "batch_size",
            "qps_per_replica_p50", "qps_per_replica_predicted", "qps_source", "qps_note"]
    if "qps_source" not in best_hw.columns:
        return {"measured": [], "predicted": int(len(best_hw)), "not_used": []}
    measured = best_hw["qps_source"] != "predicted"
    noted = ~measured & (best_hw["qps_note"].astype(str) != "")
    wake = best_hw["wake_ms"] if "wake_ms" in best_hw.columns else pd.Series(0.0, best_hw.index)
    two_state = ~measured & (wake.fillna(0) > 0)
    return {"measured": _records(best_hw[measured], cols),
            "predicted": int((~measured).sum()),
            "predicted_two_state": _records(best_hw[two_state], cols + ["wake_ms"]),
            "not_used": _records(best_hw[noted], cols),
            "rule": "a LoadGen peak (roi loadtest --find-peak) of the same configuration on "
                    "the same machine, at the scenario's percentile and a bound no looser than "
                    "its latency, for requests of one forward pass of the measured length, "
                    "replaces the predicted QPS per replica; elsewhere the M/G/1 sizing's, "
                    "two-state where bench timed calls after idle gaps (a batch that finds "
                    "the server idle pays wake_ms more; back to back otherwise)"}


def _sources(df: pd.DataFrame, fwd: pd.DataFrame, scenarios, ranked,
             best_hw: pd.DataFrame) -> dict:
    machines = (df.groupby("machine")
                .agg(rows=("model", "size"), hardware=("hardware", "first"),
                     backends=("backend", lambda x: sorted(set(x))),
                     results=("results_dir", lambda x: sorted(set(map(str, x)))))
                .reset_index().to_dict(orient="records"))
    wanted = {h for s in scenarios for h in s.candidate_hardware}
    per_hw = []
    for hw, g in fwd[fwd["hardware"].isin(wanted)].groupby("hardware", sort=True):
        measured = g[g["source"] == "measured"]
        skipped = int((g["source"] == NOT_APPLICABLE).sum())
        g = g[g["source"] != NOT_APPLICABLE]
        per_hw.append({"hardware": hw,
                       "source": "measured" if len(measured) == len(g) else
                       "projected" if measured.empty else "measured and projected",
                       "measured_rows": int(len(measured)), "projected_rows": int(len(g) -
                                                                                  len(measured)),
                       "not_applicable_rows": skipped,
                       "measured_on": sorted(set(measured["measured_on"].dropna())),
                       "projected_from": sorted({n.split(";")[0] for n in
                                                 g.loc[g["source"] == "projected", "note"]})})
    return {"machines": machines, "hardware": per_hw,
            "qps_per_replica": _qps_sources(best_hw),
            "retention": {c.model: c.retention.source for c in ranked},
            "catalog": "roi/data/hardware.yaml (+ --hardware files); every figure with its "
                       "source and date (roi hardware)"}


def _plain(x: Any) -> Any:
    """YAML/JSON-safe: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_plan(p: Plan, out_dir: str | Path) -> tuple[Path, Path]:
    """DIR/plan.yaml and DIR/plan.json (atomically), plus DIR/sizing.csv (the full grid)."""
    out = Path(out_dir)
    doc = p.to_dict()
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    yaml_path = write_text_atomic(out / "plan.yaml", text)
    json_path = write_json_atomic(out / "plan.json", doc)
    write_text_atomic(out / "sizing.csv", p.grid.to_csv(index=False))
    return yaml_path, json_path


def read_plan(path: str | Path) -> dict:
    """A plan.yaml or plan.json back as data."""
    from contracts.config import read_yaml

    data = read_yaml(path, "plan")  # JSON is YAML
    if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
        raise InputError(f"{path}: not a plan (version {PLAN_VERSION} expected)")
    return data
