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
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import pandas as pd

from contracts.curves import CurvesArg, load_curves
from contracts.defaults import RETENTION_THRESHOLD
from contracts.errors import InputError
from contracts.results import read_table

from .choices import record_choices
from .decision import criteria, decide, weigh
from .edge import edge_section
from .fleet import Assumptions, best_per_hardware, best_per_model, scenario_grid
from .hardware import Catalog, load_catalog
from .measurements import load_results, loadgen_peaks, merge, prepare
from .budget import BudgetChoice
from .budget import choose as choose_budget
from .forecast import Forecasts
from .forecast import build as build_forecasts
from .forecast import record as forecast_record
from .payback import OneTimeCost, RoiInputs, one_time_cost
from .plan_document import (PLAN_KEYS, TRAINER_BATCH_TOKENS, TRAINER_DEFAULTS, Plan, build_document,
                            plain, read_plan, write_plan)
from .plan_roi import (bf16_peak, measured_benefit, outcomes, per_deployment, roi_section,
                       scenario_decisions, teacher_bill, teacher_generation, teacher_tokens_per_s)
from .projection import calibrate, check_memory_efficiency
from .recommend import Candidate, candidates, check_threshold, recommend
from .retention import RetentionBand
from .sanity import measurement_warnings
from .scenarios import Scenario, load_scenarios
from .service import forward_times

log = logging.getLogger(__name__)
# The planner's API: plan() here; the plan record's shape, writer and reader in plan_document.py.
__all__ = ["PLAN_KEYS", "TRAINER_DEFAULTS", "Plan", "plan", "read_plan", "write_plan"]

REACH = 64  # the largest budget considered, in multiples of the longest pilot: the band widens
# with the log of the distance (BENCHMARKS.md measures it at 16x), so far budgets rarely reach
# the threshold at P10 and stay "not confirmed" until a longer run is measured

ResultsArg = Union[pd.DataFrame, str, Path, Sequence[Union[pd.DataFrame, str, Path]]]
ScenarioArg = Union[Scenario, str, Path, Sequence[Union[Scenario, str, Path]]]


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
         retention_threshold: float = RETENTION_THRESHOLD,
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
    bills = {s.name: teacher_bill(grid, s.name, teacher) for s in scenarios}
    crit = [c for s in scenarios for c in criteria(s, bills[s.name]["usd_per_month"])]
    roi = roi_section(chosen or tentative, ranked, bills, scenarios, cost, roi_inputs,
                       students, portfolio, {c.scenario for c in crit if c.verdict == "met"})
    chosen, why_none, tentative = per_deployment(chosen, why_none, tentative, ranked, roi)
    benefit = measured_benefit(chosen, bills, roi)
    if require_benefit:
        crit = weigh(crit, outcomes(roi))
    else:
        benefit = (True, benefit[1])
    decision = decide(crit, chosen.model if chosen else None, why_none, benefit)
    scenario_decisions(roi, crit, chosen)
    doc = build_document(scenarios, decision, chosen, why_none, ranked, teacher, teacher_params,
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
    record_choices(doc, scenarios, df)  # what reports and the console render
    doc = {**{k: doc[k] for k in PLAN_KEYS}, **doc}  # the contract's keys first, in order
    return Plan(plain(doc), grid)


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
    rate = teacher_tokens_per_s(fwd, teacher, hw)
    generation = teacher_generation(inputs, fwd, teacher, hw)

    def cost(params: int, tokens: float) -> OneTimeCost:
        return one_time_cost(inputs, usd_per_hour=hw.usd_per_hour or 0.0,
                             training_tokens=tokens, student_params=params,
                             peak_bf16_flop_s=bf16_peak(hw), teacher_tokens_per_s=rate,
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


# ------------------------------------------------------------------------------ document
