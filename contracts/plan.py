"""The Plan contract (DESIGN.md "Contracts"): the plan `roi plan` writes to plan.json / plan.yaml,
typed. Two kinds: the measured plan (`MeasuredPlan`: results from bench, costed per scenario and
hardware) and the plan of a teacher known only by its config (`LLMPlan`, `kind: llm-config`:
projections only). `parse_plan` reads either from plain data; `plan_schema` is the JSON Schema
written beside plan.json (plan.schema.json).

The sections are in contracts/plan_sections.py (re-exported here). A model dumps only the fields
it was given, in the order given (`document`), so a plan read and written again is the same
bytes. Rows with many columns (cost, sizing, the LLM comparison's bands) type the columns the
readers use and keep the others as they came (`extra="allow"`)."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, Discriminator, Tag, ValidationError
from typing_extensions import Annotated

from .errors import InputError
from .plan_records import (Assumptions, Calibration, FailedFit, Forecast, ForecastCurve,
                           PilotCompute, ScenarioDetail, Seed, Trainer)
from .plan_sections import (AssumedValue, Band, BestFit, Budget, Candidate, Cheapest, Config,
                            CostInput, CostRow, Criterion, Decision, Edge, EdgeAnswer, EdgeRow,
                            EdgeScenario, GridRow, HardwareSource, Horizon, KdGain, LeaveOneOut,
                            LocalPeak, Machine, MonteCarlo, Num, OneTime, Percentiles,
                            Projection, QpsSources, Recommended, RoiSection, Row, ScenarioCost,
                            ScenarioRoi, Section, SeedFigure, SizingRow, Sources, Student,
                            Teacher, TornadoRow, Unconfirmed)
from .scenario import SLA, Constraints, Workload

PLAN_VERSION = 1
__all__ = ["AssumedValue", "Assumptions", "Calibration", "CostInput", "FailedFit", "GridRow",
           "Machine", "PilotCompute", "QpsSources", "Trainer", "SLA", "Constraints", "Workload",
           "Band", "BestFit", "Budget", "Candidate", "Cheapest", "Config", "CostRow",
           "Criterion", "Decision", "Edge", "EdgeAnswer", "EdgeRow", "EdgeScenario", "Forecast",
           "ForecastCurve", "HardwareSource", "Horizon", "KdGain", "LeaveOneOut", "LocalPeak",
           "MonteCarlo", "Num", "OneTime", "Percentiles", "Projection", "Recommended",
           "RoiSection", "Row", "ScenarioCost", "ScenarioDetail", "ScenarioRoi", "Section", "Seed",
           "SeedFigure", "SizingRow", "Sources", "Student", "Teacher", "TornadoRow",
           "Unconfirmed", "LLMModelRow", "LLMPlan", "LLMRecommended", "LLMScenario",
           "EfficiencyBand", "MeasuredPlan", "PLAN_VERSION", "parse_plan", "plan_schema"]


class MeasuredPlan(Section):
    """The plan of measured models (roi plan --results)."""

    version: int
    scenarios: list[str]
    decision: Decision
    recommended: Optional[Recommended]
    alternatives: list[Candidate]
    teacher: Teacher
    trainer: Trainer
    cost: list[CostRow]
    sizing: list[SizingRow]
    roi: RoiSection
    projection: Projection
    sources: Sources
    forecast: Forecast
    retention_threshold: Optional[Num] = None
    retention_metric: Optional[str] = None  # what retention measures, where not next-token
    assumptions: Optional[Assumptions] = None
    scenario_details: Optional[list[ScenarioDetail]] = None
    datagen_note: Optional[str] = None
    no_recommendation_reason: Optional[str] = None
    trainer_note: Optional[str] = None
    edge: Optional[Edge] = None
    warnings: Optional[list[str]] = None
    cheapest: Optional[list[Cheapest]] = None  # absent from plans written before it
    seed_figures: Optional[list[SeedFigure]] = None  # likewise

    @property
    def kind(self) -> str:
        return "measured"

    @property
    def go(self) -> bool:
        return self.decision.go


class LLMRecommended(Section):
    model: Optional[str]
    per_scenario: dict[str, Optional[str]]


class LLMModelRow(Row):
    """One model's cheapest configuration in the projected comparison (bands as columns)."""

    model: str
    role: Literal["teacher", "student"]
    params: Num
    hardware: Optional[str] = None
    dtype: Optional[str] = None
    tp: Optional[int] = None
    source: Optional[str] = None
    reason: Optional[str] = None
    meets_sla: Optional[bool] = None
    usd_per_month: Optional[Num] = None
    usd_per_month_optimistic: Optional[Num] = None
    usd_per_month_pessimistic: Optional[Num] = None
    cost_reduction: Optional[Num] = None


class EfficiencyBand(Row):
    """One serving assumption's band (roi/data/llm_serving.yaml), with its source."""

    pessimistic: Optional[Num] = None
    optimistic: Optional[Num] = None
    source: Optional[str] = None


class LLMScenario(Section):
    """One scenario's projected comparison (roi.llm_plan.LLMComparison.to_dict)."""

    scenario: str
    sla: str
    workload: dict[str, Any]
    source: str
    assumptions: dict[str, EfficiencyBand]
    notes: list[str]
    models: list[LLMModelRow]
    recommended: Optional[str] = None

    def row(self, model: Optional[str]) -> Optional[LLMModelRow]:
        """The model's row (its cheapest configuration), if the comparison has one."""
        return next((m for m in self.models if m.model == model), None)


class LLMPlan(Section):
    """The plan of a teacher known by its config (roi plan --teacher config:...). Files of the
    previous version carry no `version` key: they read as version 1."""

    kind: Literal["llm-config"]
    version: int = PLAN_VERSION
    teacher: str
    decision: Decision
    recommended: LLMRecommended
    retention_threshold: Num
    scenarios: list[LLMScenario]
    trainer: Trainer

    @property
    def go(self) -> bool:
        return self.decision.go


def _kind(data: Any) -> str:
    if isinstance(data, dict):
        return data.get("kind", "measured")
    return getattr(data, "kind", "measured")


PlanDocument = Annotated[Union[Annotated[MeasuredPlan, Tag("measured")],
                               Annotated[LLMPlan, Tag("llm-config")]], Discriminator(_kind)]


class _Holder(BaseModel):
    plan: PlanDocument


def parse_plan(data: Any, where: str = "plan") -> MeasuredPlan | LLMPlan:
    """The typed plan of plain data (a plan.json read back); InputError naming `where` and the
    first field that is wrong: a wrong version, an unknown kind, a missing or mistyped key."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: not a plan (a mapping with version {PLAN_VERSION} expected)")
    version = data.get("version", PLAN_VERSION if data.get("kind") == "llm-config" else None)
    if version != PLAN_VERSION:
        raise InputError(f"{where}: not a plan (version {PLAN_VERSION} expected; "
                         f"version: {version!r})")
    try:
        return _Holder(plan=data).plan
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"][1:] if p not in ("measured", "llm-config"))
        raise InputError(f"{where}: damaged plan: {field or 'kind'}: {err['msg']}") from None


def plan_schema() -> dict:
    """The JSON Schema of plan.json (either kind), written beside it as plan.schema.json."""
    schema = _Holder.model_json_schema()
    plan = schema["properties"]["plan"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **plan,
            "title": f"roi plan, version {PLAN_VERSION}", "$defs": schema.get("$defs", {})}


if __name__ == "__main__":  # python -m contracts.plan > contracts/data/plan.schema.json
    import json

    print(json.dumps(plan_schema(), indent=2))
