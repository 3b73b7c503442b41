"""The plan's records of what it was asked and what it chose beside the choices themselves
(contracts/plan_sections.py): the scenarios as planned, the retention forecast, the trainer
section and the costing's assumptions, typed so reports read attributes. Each dumps the keys it
was given, in the order given (plan.json unchanged); further keys are kept as they came."""

from __future__ import annotations

from typing import Any, Optional, Union

from .plan_sections import Num, Row, Section
from .scenario import SLA, Constraints, Workload


class Calibration(Row):
    """How far a forecast law errs (roi.curvefit.Calibration): sigma(r) = sqrt(noise² +
    (kappa·ln r)²) in `units`, from `backtests` pairs; `source` says where kappa comes from."""

    kappa: Optional[Num] = None
    noise: Optional[Num] = None
    backtests: Optional[Num] = None
    source: Optional[str] = None
    units: Optional[str] = None


class PilotCompute(Row):
    """What the pilots cost (FLOPs) beside the distillation they plan (`share` of it)."""

    pilot_flops: Optional[Num] = None
    basis: Optional[str] = None
    planned_distillation_flops: Optional[Num] = None
    share: Optional[Num] = None


class FailedFit(Row):
    """A student's curve in one mode that could not be forecast, and why."""

    model: str
    mode: str
    reason: str


class ForecastCurve(Row):
    """One student's fitted retention curve in one mode (kd, or the ce baseline): the steps
    where its P10 and P50 reach the threshold (None: not within the budgets considered), its P50
    at the largest budget, and (P10, P50, P90) at the budgets the plan was asked about."""

    model: str
    mode: str
    steps_to_threshold_p10: Optional[int] = None
    steps_to_threshold_p50: Optional[int] = None
    p50_at_max_steps: Optional[Num] = None
    at_steps: dict[str, list[Optional[Num]]] = {}
    points: list[dict[str, Any]] = []  # the pilot points the curve was fitted to


class Forecast(Row):
    """The retention forecast by training budget (none without pilot curves: `source` says)."""

    source: str
    max_steps: Optional[int] = None
    curves: list[ForecastCurve] = []
    failed: list[FailedFit] = []
    threshold: Optional[Num] = None
    method: Optional[str] = None
    longest_pilot_steps: Optional[Num] = None
    batch_tokens: Optional[Num] = None
    calibration: dict[str, Calibration] = {}  # per mode (kd, ce): the retention band's
    pilot_compute: PilotCompute = PilotCompute()

    def curve(self, model: str, mode: str = "kd") -> Optional[ForecastCurve]:
        return next((c for c in self.curves if c.model == model and c.mode == mode), None)


class Seed(Section):
    """The seed's ROI-matrix row for a scenario, verbatim (roi.scenarios.SeedRanges; its
    ranges as numbers are in the plan's `seed_figures`)."""

    scenario: str
    inference_cost_reduction: str
    latency_improvement: str
    data_transfer: str
    best_fit_model_size: str


class ScenarioDetail(Row):
    """The scenario as planned (roi.scenarios.Scenario); `seed` holds the seed's ranges."""

    name: str
    title: Optional[str] = None
    description: Optional[str] = None
    basis: Optional[str] = None
    deployment: Optional[str] = None
    workload: Optional[Workload] = None
    sla: Optional[SLA] = None
    constraints: Optional[Constraints] = None
    seed: Optional[Seed] = None


class Trainer(Row):
    """The trainer section (distill.config.TrainConfig's settings, which `roi distill`
    validates): the fields the readers use typed, the other settings kept as given."""

    teacher: Optional[str] = None
    student: Optional[str] = None
    steps: Optional[Num] = None
    note: Optional[str] = None  # the planner's prose (a config: teacher has no weights)


class Assumptions(Row):
    """The costing's inputs that are in neither the results nor the catalog (roi.fleet)."""

    device_amortization_months: Optional[Num] = None
    runtime_mib: Union[Num, str, None] = None  # a figure, or where it comes from
    memory_efficiency: Optional[Num] = None
    queueing_method: Optional[str] = None
    hours_per_month: Optional[Num] = None
