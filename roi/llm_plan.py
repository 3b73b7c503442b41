"""The decision table for "distill our 70B model?" without running it: a teacher and candidate
students described by their configs, served on the scenario's hardware, with retention bands.

    cmp = llm_comparison("config:llama-3-70b", scenario="cloud-batch")
    cmp.summary     # one row per model: cheapest configuration meeting the SLA, cost and
                    # latency bands, savings against the teacher, retention band
    cmp.grid        # every (model, hardware, dtype, tp) projected, with why a row cannot run

Every row is projected (source = projected), never measured; the bands come from the serving
assumptions (roi/data/llm_serving.yaml) and the seed's retention priors (roi/retention.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from contracts.defaults import RETENTION_THRESHOLD
from contracts.errors import InputError
from contracts.llm_arch import LLMSpec, load_config, shipped, shipped_names
from contracts.plan import PLAN_VERSION

from .hardware import Catalog, load_catalog
from .llm_serving import (
    CASES,
    DEFAULT_DTYPES,
    LLMSLA,
    Assumptions,
    Workload,
    cheapest,
    fastest,
    load_assumptions,
    serving_grid,
    sla_for,
)
from .retention import band_for
from .scenarios import Scenario, load_scenario

# The seed's student sizes for a 70B teacher (its FAQ and ROI matrix: 1B-3B on device, 3B-7B
# real-time, 7B-13B batch).
SEED_STUDENT_SIZES = (1e9, 3e9, 7e9, 13e9)
SIZE_TOLERANCE = 1.6  # a shipped model stands for a target size within this factor


def parse_config_spec(spec: str | LLMSpec) -> tuple[str, LLMSpec]:
    """(label, LLMSpec) from `config:TARGET`, a bare shipped name, or an LLMSpec."""
    if isinstance(spec, LLMSpec):
        return f"config:{spec.name}", spec
    kind, sep, target = spec.partition(":")
    if sep and kind == "config" and target:
        return spec, load_config(target)
    if not sep and spec in shipped_names():
        return f"config:{spec}", shipped(spec)
    raise InputError(f"{spec!r} is not a config: model spec; expected config:NAME (shipped: "
                     f"{', '.join(shipped_names())}), config:FILE.yaml or config:config.json")


def default_students(teacher: LLMSpec, sizes: Sequence[float] = SEED_STUDENT_SIZES
                     ) -> list[tuple[str, LLMSpec]]:
    """A shipped model per target size, smaller than the teacher: from the teacher's family
    where one lies within SIZE_TOLERANCE of the size (same tokenizer), else from any family."""
    pool = [shipped(n) for n in shipped_names()]
    pool = [s for s in pool if s.params < teacher.params * 0.8]
    chosen: list[LLMSpec] = []
    for size in sizes:
        near = [s for s in pool if abs(math.log(s.params / size)) <= math.log(SIZE_TOLERANCE)
                and s not in chosen]
        same = [s for s in near if s.family == teacher.family]
        best = min(same or near, key=lambda s: abs(math.log(s.params / size)), default=None)
        if best is not None:
            chosen.append(best)
    return [(f"config:{s.name}", s) for s in sorted(chosen, key=lambda s: s.params)]


@dataclass
class LLMComparison:
    """The projected decision table (see the module docstring)."""

    scenario: Scenario
    sla: LLMSLA
    workload: Workload
    grid: pd.DataFrame
    summary: pd.DataFrame
    assumptions: Assumptions
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for plan.yaml / a report (NaN becomes None)."""
        a = self.assumptions
        bands = {n: {"pessimistic": getattr(a, n).pessimistic,
                     "optimistic": getattr(a, n).optimistic, "source": getattr(a, n).source}
                 for n in ("prefill_compute", "decode_compute", "decode_bandwidth",
                           "allreduce_latency_us", "link_efficiency")}
        return {"scenario": self.scenario.name, "sla": self.sla.label(),
                "workload": vars(self.workload), "source": "projected",
                "assumptions": bands, "notes": list(self.notes),
                "models": _records(self.summary)}


def llm_comparison(teacher: str | LLMSpec, students: Sequence[str | LLMSpec] | None = None,
                   scenario: str | Scenario = "cloud-batch", *, catalog: Catalog | None = None,
                   hardware: Sequence[str] | None = None, dtypes: Sequence[str] = DEFAULT_DTYPES,
                   sla_preset: str | None = None, sla_bounds: dict[str, float] | None = None,
                   assumptions: Assumptions | None = None,
                   measured_retention: dict[str, float] | None = None) -> LLMComparison:
    """Project teacher and students on the scenario's candidate hardware (or `hardware`),
    choose each model's cheapest configuration meeting the SLA, and compare it with the
    teacher's. Students default to the seed's sizes (`default_students`)."""
    catalog = catalog or load_catalog()
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario, catalog)
    a = assumptions or load_assumptions()
    t_label, t_spec = parse_config_spec(teacher)
    studs = ([parse_config_spec(s) for s in students] if students is not None
             else default_students(t_spec))
    studs = [(lbl, s) for lbl, s in studs if lbl != t_label]
    if not studs:
        raise InputError(f"no candidate student smaller than {t_label} among the shipped "
                         f"configs: name students as config:FILE")
    workload = Workload.from_scenario(sc)
    sla = sla_for(sc, sla_preset, a, **(sla_bounds or {}))
    hw = [catalog.get(n) for n in (hardware or sc.candidate_hardware)]
    models = [(t_label, t_spec)] + studs
    grid = serving_grid(models, hw, workload, sla, dtypes, a, sc.constraints.memory_limit_gib)
    roles = {t_label: "teacher", **{lbl: "student" for lbl, _ in studs}}
    grid.insert(1, "role", grid["model"].map(roles))
    best = cheapest(grid).merge(fastest(grid), on="model", how="left")
    summary = _summarize(best, t_label, t_spec, dict(models), measured_retention)
    notes = _notes(t_spec, studs, summary)
    return LLMComparison(sc, sla, workload, grid, summary, a, notes)


def _summarize(best: pd.DataFrame, t_label: str, t_spec: LLMSpec, specs: dict[str, LLMSpec],
               measured: dict[str, float] | None) -> pd.DataFrame:
    best = best.copy()
    ratio = t_spec.params / best["params"].astype(float)
    bands = [band_for(m, r, measured) for m, r in zip(best["model"], ratio)]
    best["compression_ratio"] = ratio
    best["retention_low"] = [b.low for b in bands]
    best["retention_high"] = [b.high for b in bands]
    best["retention_source"] = [b.source + (f" ({b.note})" if b.note else "") for b in bands]
    best["same_family"] = [specs[m].family == t_spec.family for m in best["model"]]
    teacher = best[best["model"] == t_label].iloc[0]
    for case in CASES:
        sfx = "" if case == "mid" else f"_{case}"
        if f"usd_per_month{sfx}" not in best:
            continue
        cost_t = teacher.get(f"usd_per_month{sfx}")
        lat_t = teacher.get(f"fastest_e2e_ms{sfx}")
        with np.errstate(divide="ignore", invalid="ignore"):
            best[f"cost_reduction{sfx}"] = 1 - best[f"usd_per_month{sfx}"] / cost_t
            # latency as one user sees it: each model's fastest configuration at batch 1
            best[f"latency_reduction{sfx}"] = 1 - best[f"fastest_e2e_ms{sfx}"] / lat_t
    return best


def _notes(t_spec: LLMSpec, studs: list[tuple[str, LLMSpec]], summary: pd.DataFrame
           ) -> list[str]:
    notes = ["every figure is projected from architecture numbers and published hardware "
             "figures (no weights were loaded, nothing was run); bands span the serving "
             "assumptions' pessimistic and optimistic ends"]
    other = [lbl for lbl, s in studs if s.family != t_spec.family]
    if other:
        notes.append(f"{', '.join(other)}: another family than the teacher ({t_spec.family}), "
                     f"so another tokenizer: logit distillation needs a shared vocabulary "
                     f"(sequence-level distillation on generated text does not)")
    missed = summary.loc[~summary["meets_sla"].eq(True), "model"].tolist()
    if missed:
        notes.append(f"no configuration meets the SLA for: {', '.join(missed)} (their row "
                     f"shows the closest one and why)")
    return notes


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                        v.item() if isinstance(v, np.generic) else v) for k, v in rec.items()})
    return out


# ------------------------------------------------------------------------------ the plan

def _outcome(summary: pd.DataFrame, student: str):
    """What `student` changes in one scenario's comparison against the teacher."""
    from .decision import changes

    t = summary[summary["role"] == "teacher"].iloc[0]
    rows = summary[summary["model"] == student]
    s = rows.iloc[0] if len(rows) else None
    meets = s is not None and bool(s["meets_sla"])
    return changes(float(t["usd_per_month"]), bool(t["meets_sla"]),
                   float(s["usd_per_month"]) if meets else None, meets)


def llm_plan(teacher: str, students: Sequence[str] | None, scenarios: Sequence[str], *,
             catalog: Catalog | None = None, retention_threshold: float = RETENTION_THRESHOLD,
             sla_preset: str | None = None, dtypes: Sequence[str] = DEFAULT_DTYPES) -> dict:
    """The plan for a teacher that is only a config: per scenario the projected comparison,
    the seed's five criteria (the teacher's bill from its cheapest configuration meeting the
    SLA), the recommended student (cheapest whose retention band's low end reaches the
    threshold and that meets the SLA) and the decision; a criterion counts only in a scenario
    whose outcome that student changes (roi.decision.weigh). Plain data for plan.yaml /
    plan.json."""
    from .decision import criteria, decide, weigh
    from .recommend import check_threshold

    check_threshold(retention_threshold)
    catalog = catalog or load_catalog()
    per_scenario, all_criteria, choices, summaries = [], [], {}, {}
    for name in scenarios:
        cmp = llm_comparison(teacher, students, name, catalog=catalog, sla_preset=sla_preset,
                             dtypes=dtypes)
        s = summaries[name] = cmp.summary
        t = s[s["role"] == "teacher"].iloc[0]
        bill = float(t["usd_per_month"]) if bool(t["meets_sla"]) else None
        all_criteria += criteria(cmp.scenario, bill)
        ok = s[(s["role"] == "student") & s["meets_sla"].eq(True)
               & (s["retention_low"] >= retention_threshold)]
        ok = ok.sort_values("usd_per_month")
        choices[name] = None if ok.empty else str(ok.iloc[0]["model"])
        per_scenario.append({**cmp.to_dict(), "recommended": choices[name]})
    picks = [c for c in choices.values() if c]
    chosen = max(set(picks), key=picks.count) if picks else None
    why = ("" if chosen else f"no student meets the SLA with a retention band whose low end "
           f"reaches {retention_threshold:.0%}")
    if chosen:
        all_criteria = weigh(all_criteria, {n: _outcome(s, chosen) for n, s in summaries.items()})
    decision = decide(all_criteria, chosen, why)
    return {
        "kind": "llm-config",
        "version": PLAN_VERSION,
        "teacher": teacher,
        "decision": {"go": decision.go, "reasons": decision.reasons,
                     "criteria": [c.record() for c in decision.criteria]},
        "recommended": {"model": chosen, "per_scenario": choices},
        "retention_threshold": retention_threshold,
        "scenarios": per_scenario,
        # a config has no weights: nothing here can be trained by the bundled trainer
        "trainer": {"teacher": teacher, "note": "config: teachers have no weights; distill "
                    "with the real checkpoint (hf:DIR) and this plan's student size"},
    }

