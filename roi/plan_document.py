"""The plan record (the Plan contract, DESIGN.md; its types in contracts/plan.py): the keys every
plan holds, the trainer section's defaults, the document assembled from the planner's choices,
and plan.yaml / plan.json / plan.schema.json written and read. roi/planner.py makes the choices;
this module only records them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import yaml

from contracts.io import write_json_atomic, write_text_atomic
from contracts.plan import PLAN_VERSION, LLMPlan, MeasuredPlan, parse_plan, plan_schema

from .decision import Decision
from .fleet import Assumptions
from .payback import RoiInputs
from .projection import leave_one_out_report
from .recommend import Candidate
from .service import NOT_APPLICABLE

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
TRAINER_BATCH_TOKENS = 16 * 256  # TrainConfig's default batch_size x block_size
LOO_GOAL = 0.15
# What the recommended student's deploy_backend / deploy_dtype mean (bench's quality gate: issue 7;
# roi.measurements leaves rows that failed it out).
DEPLOY_NOTE = ("costed as deployed: the cheapest measured variant (backend/dtype) that passed "
               "bench's quality gate against fp32; variants that failed it are never costed")


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

    def typed(self) -> MeasuredPlan:
        """The document checked against the contract (InputError naming the field if not)."""
        return parse_plan(self.document, "plan")


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


def build_document(scenarios, decision: Decision, chosen: Optional[Candidate], why_none: str,
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
    return plain(doc)


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


def plain(x: Any) -> Any:
    """YAML/JSON-safe: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_plan(p: Plan | MeasuredPlan | LLMPlan, out_dir: str | Path,
               grid: pd.DataFrame | None = None) -> tuple[Path, Path]:
    """DIR/plan.yaml, DIR/plan.json and DIR/plan.schema.json (each atomically), plus
    DIR/sizing.csv (the full grid: a roi Plan's, or `grid` beside a typed plan). A roi Plan is
    checked against the contract before anything is written; a typed plan already was."""
    out = Path(out_dir)
    typed = p.typed() if isinstance(p, Plan) else p
    grid = p.grid if isinstance(p, Plan) else grid
    doc = typed.document()
    # an LLM-config plan's YAML keeps its own layout (PyYAML's defaults) as before
    style = {} if isinstance(typed, LLMPlan) else {"allow_unicode": True, "width": 100}
    yaml_path = write_text_atomic(out / "plan.yaml", yaml.safe_dump(doc, sort_keys=False, **style))
    json_path = write_json_atomic(out / "plan.json", doc)
    write_json_atomic(out / "plan.schema.json", plan_schema())
    if grid is not None:
        write_text_atomic(out / "sizing.csv", grid.to_csv(index=False))
    return yaml_path, json_path


def read_plan(path: str | Path) -> MeasuredPlan | LLMPlan:
    """A plan.yaml or plan.json back, typed; InputError naming the file and the first wrong
    field (a wrong version, a damaged file)."""
    from contracts.config import read_json_object, read_yaml

    read = read_json_object if Path(path).suffix == ".json" else read_yaml
    return parse_plan(read(path, "plan"), str(path))
