"""The Plan contract's sections (contracts/plan.py assembles them into the two kinds of plan):
each section of plan.json typed, dumping the keys it was given in the order given."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, PrivateAttr, model_serializer, model_validator

Num = Union[int, float]  # as written: an int stays an int, a float a float (bytes unchanged)
Value = Union[bool, int, float]  # a criterion's value: a bill, a latency or a yes/no


class Section(BaseModel):
    """A section with a fixed set of keys: an unknown key is an error. It dumps the keys it was
    given, in the order they were given (the planner's), so what is read is written again."""

    model_config = ConfigDict(extra="forbid")
    _order: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _remember_order(cls, data: Any, handler: Any) -> Any:
        model = handler(data)
        if isinstance(data, dict):
            model._order = tuple(data)
        return model

    @model_serializer(mode="wrap")
    def _in_given_order(self, handler: Any) -> Any:
        out = handler(self)
        rank = {k: i for i, k in enumerate(self._order)}
        return dict(sorted(out.items(), key=lambda kv: rank.get(kv[0], len(rank))))

    def document(self) -> dict:
        """The section as plain data: the keys it was given, in the order given."""
        return self.model_dump(mode="json", exclude_unset=True)


class Row(Section):
    """A record whose typed fields come first; further columns are kept as given."""

    model_config = ConfigDict(extra="allow")


class Criterion(Section):
    name: str
    value: Optional[Value] = None
    threshold: Optional[Value] = None
    verdict: Literal["met", "not met", "unknown"]
    reason: str
    scenario: Optional[str] = None
    counted: Optional[bool] = None


class Unconfirmed(Row):
    """A student whose forecast P50 reaches the threshold but whose P10 does not yet."""

    model: str
    reason: str


class Decision(Section):
    go: bool
    reasons: list[str]
    criteria: list[Criterion]
    retention_unconfirmed: Optional[Unconfirmed] = None


class ScenarioCost(Row):
    """A student's cheapest configuration in one scenario (a candidate's per_scenario)."""

    scenario: str
    hardware: Optional[str] = None
    backend: Optional[str] = None
    dtype: Optional[str] = None
    batch_size: Optional[int] = None
    deploy_runtime: Optional[str] = None
    usd_per_month: Optional[Num] = None
    usd_per_month_p10: Optional[Num] = None
    usd_per_month_p90: Optional[Num] = None
    service_ms_p50: Optional[Num] = None
    source: Optional[str] = None
    feasible: bool = False
    reason: Optional[str] = None


class KdGain(Section):
    """KD's P50 retention over the no-KD baseline's, in points, at the forecast grid's step
    nearest the chosen budget."""

    points: Num
    steps: int


class GridRow(Row):
    """A forecast retention band at one training budget (roi.budget.grid_rows)."""

    steps: int
    retention_p10: Optional[Num] = None
    retention_p50: Optional[Num] = None
    retention_p90: Optional[Num] = None


class Budget(Row):
    """The training budget chosen for a student (roi.forecast): steps, tokens, one-time cost."""

    steps: Optional[int] = None
    tokens: Optional[Num] = None
    source: Optional[str] = None
    reaches_threshold: Optional[bool] = None
    retention_band: Optional[list[Optional[Num]]] = None
    retention_p50: Optional[Num] = None
    one_time_usd: Optional[Num] = None
    grid: list[GridRow] = []
    baseline_grid: list[GridRow] = []
    kd_gain: Optional[KdGain] = None  # none without both grids (and in older plans)


class Student(Row):
    """A student judged against the threshold and the scenarios: the fields both the
    recommended one and the alternatives start with."""

    model: str
    params: int
    compression_ratio: Num
    retention_band: list[Optional[Num]]


class Candidate(Student):
    """An alternative: a student the plan did not recommend, and why."""

    retention_source: Optional[str] = None
    retention_p50: Optional[Num] = None
    retention_steps: Optional[int] = None
    retention_note: Optional[str] = None
    deploy_backend: Optional[str] = None
    deploy_dtype: Optional[str] = None
    qualifies: Optional[bool] = None
    reasons: Optional[list[str]] = None
    usd_per_month: Optional[Num] = None
    per_scenario: list[ScenarioCost] = []
    budget: Optional[Budget] = None
    headline_usd_per_month: Optional[Num] = None  # where the plan's headline answers


class Recommended(Student):
    """The recommended student, costed as deployed (deploy_note): it qualifies."""

    qualifies: ClassVar[bool] = True

    retention_p50: Optional[Num] = None
    retention_steps: Optional[int] = None
    deploy_backend: Optional[str] = None
    deploy_dtype: Optional[str] = None
    retention_source: Optional[str] = None
    retention_note: Optional[str] = None
    usd_per_month: Optional[Num] = None
    per_scenario: list[ScenarioCost] = []
    budget: Optional[Budget] = None
    deploy_note: Optional[str] = None
    headline_usd_per_month: Optional[Num] = None  # where the plan's headline answers


class Teacher(Section):
    model: str
    params: int


class Config(Row):
    """What names one configuration: scenario, hardware, model and how it runs."""

    scenario: str
    hardware: str
    model: str
    backend: Optional[str] = None
    dtype: Optional[str] = None
    batch_size: Optional[int] = None
    deploy_runtime: Optional[str] = None
    source: Optional[str] = None


class CostRow(Config):
    """One configuration's monthly bill (the best per scenario, hardware and model)."""

    role: Optional[str] = None
    qps_source: Optional[str] = None
    usd_per_hour: Optional[Num] = None
    replicas_p50: Optional[Num] = None
    usd_per_month_p10: Optional[Num] = None
    usd_per_month: Optional[Num] = None
    usd_per_month_p90: Optional[Num] = None
    usd_per_1m_requests: Optional[Num] = None
    usd_per_1m_tokens: Optional[Num] = None
    feasible: Optional[bool] = None
    reason: Optional[str] = None
    fleet_spread: Optional[Num] = None
    spread_note: Optional[str] = None


class Cheapest(CostRow):
    """Per (scenario, model): the configuration the planner costs the model at, the cheapest
    meeting the scenario, or (feasible false) the closest miss, with each hardware's reason
    for missing (`misses`)."""

    service_ms_p50: Optional[Num] = None
    misses: list[str] = []


class Band(Section):
    """A range as numbers (fractions: 0.2 is 20%)."""

    low: Num
    high: Num


class SeedFigure(Section):
    """One of the seed's expected ranges in a scenario beside our figure for the planned student:
    where ours lies (`verdict`), and how ours was obtained (`basis`)."""

    scenario: str
    figure: Literal["inference_cost_reduction", "latency_improvement", "data_transfer"]
    student: str
    expected: str
    band: Optional[Band] = None
    value: Optional[Num] = None
    verdict: Optional[Literal["inside", "below", "above"]] = None
    basis: str


class SizingRow(Config):
    """One configuration's sizing: service time, QPS per replica, replicas, memory."""

    service_ms_p10: Optional[Num] = None
    service_ms_p50: Optional[Num] = None
    service_ms_p90: Optional[Num] = None
    qps_per_replica_p50: Optional[Num] = None
    replicas_p50: Optional[Num] = None
    utilization: Optional[Num] = None
    meets_sla: Optional[bool] = None
    memory_verdict: Optional[str] = None


class Percentiles(Row):
    p10: Optional[Num] = None
    p50: Optional[Num] = None
    p90: Optional[Num] = None


class MonteCarlo(Row):
    """The seeded Monte Carlo of savings and payback over the cost bands."""

    draws: Optional[int] = None
    seed: Optional[int] = None
    monthly_savings_usd: Percentiles = Percentiles()
    payback_months: Optional[Percentiles] = None
    probability_savings_positive: Optional[Num] = None


class TornadoRow(Row):
    """One input at its low and high value, the others at base: the net at each."""

    input: str
    low_value: Optional[Num] = None
    high_value: Optional[Num] = None
    net_at_low_usd: Optional[Num] = None
    net_at_high_usd: Optional[Num] = None
    swing_usd: Optional[Num] = None


class CostInput(Row):
    """One input of the one-time cost with where it comes from (a catalog price: its rate)."""

    value: Any = None
    source: Optional[str] = None
    usd_per_hour: Optional[Num] = None


class OneTime(Row):
    """The one-time cost of distilling: labeling, training, engineering, data generation."""

    labeling_usd: Optional[Num] = None
    training_usd: Optional[Num] = None
    engineering_usd: Optional[Num] = None
    total_usd: Optional[Num] = None
    inputs: dict[str, Union[CostInput, Any]] = {}  # by input name


class BestFit(Row):
    """The student one scenario alone would pick (roi.plan_roi.best_fit)."""

    model: str
    params: Optional[int] = None
    compression_ratio: Optional[Num] = None
    usd_per_month: Optional[Num] = None
    retention_qualifies: Optional[bool] = None


class Horizon(Row):
    """Economics over a horizon: the net is keyed by it (`net_12_months_usd`)."""

    monthly_savings_usd: Optional[Num] = None
    payback_months: Optional[Num] = None
    horizon_months: Optional[int] = None

    @property
    def horizon(self) -> int:
        return int(self.horizon_months or 12)

    @property
    def net_usd(self) -> Optional[Num]:
        """The net over the horizon (`net_<horizon>_months_usd`)."""
        return self.net_over(self.horizon)

    def net_over(self, months: int) -> Optional[Num]:
        return (self.model_extra or {}).get(f"net_{months}_months_usd")


class ScenarioRoi(Horizon):
    """One scenario's economics, for its own student (never summed)."""

    scenario: str
    student: Optional[str] = None
    best_fit: Optional[BestFit] = None
    one_time_usd: Optional[Num] = None
    cost_reduction: Optional[Num] = None
    latency_improvement: Optional[Num] = None
    band_drivers: list[str] = []
    decision: Optional[str] = None
    decision_reason: Optional[str] = None
    note: Optional[str] = None


class RoiSection(Horizon):
    """The economics: one-time cost, the teacher's bill, per-scenario ROI and the headline
    (one scenario's, or a declared portfolio's: `scope`)."""

    student: Optional[str] = None
    inputs: dict[str, Any]
    one_time: OneTime
    teacher_bill: dict[str, Any]
    scope: Literal["scenario", "portfolio"]
    student_note: Optional[str] = None
    note: Optional[str] = None
    per_scenario: dict[str, ScenarioRoi] = {}
    scenario: Optional[str] = None
    portfolio: Optional[list[str]] = None
    teacher_usd_per_month: Optional[Num] = None
    student_usd_per_month: Optional[Num] = None
    break_even_requests_per_month: Optional[Num] = None
    assumption: Optional[str] = None
    tornado: list[TornadoRow] = []
    monte_carlo: MonteCarlo = MonteCarlo()


class LocalPeak(Row):
    gflop_s: Optional[Num] = None
    source: Optional[str] = None


class LeaveOneOut(Row):
    """The projection's leave-one-model-out check on one machine and backend."""

    machine: Optional[str] = None
    backend: Optional[str] = None
    median_ape: Optional[Num] = None
    max_ape: Optional[Num] = None
    n_predictions: Optional[int] = None
    goal_median_ape: Optional[Num] = None
    meets_goal: Optional[bool] = None


class AssumedValue(Row):
    """A figure the planner assumes, with why."""

    value: Optional[Num] = None
    source: Optional[str] = None


class Projection(Row):
    """The roofline projection: its method, calibration and leave-one-model-out check."""

    method: str
    local_peak: LocalPeak
    memory_efficiency: AssumedValue
    calibration: list[dict[str, Any]]
    leave_one_out: list[LeaveOneOut]


class HardwareSource(Row):
    """Where one hardware's service times come from: measured, projected or both."""

    hardware: str
    source: str
    measured_rows: Optional[int] = None
    projected_rows: Optional[int] = None
    measured_on: Optional[list[str]] = None


class Machine(Row):
    """A machine the results were measured on: its rows, hardware, backends, results dirs."""

    machine: str
    rows: Optional[int] = None
    hardware: Optional[str] = None
    backends: list[str] = []
    results: list[str] = []


class QpsSources(Row):
    """Which QPS-per-replica figure the chosen configurations used: measured under load (rows),
    predicted (a count), and the rule."""

    measured: list[dict[str, Any]] = []
    predicted: Optional[int] = None
    predicted_two_state: list[dict[str, Any]] = []
    not_used: list[dict[str, Any]] = []
    rule: Optional[str] = None


class Sources(Row):
    machines: list[Machine]
    hardware: list[HardwareSource]
    qps_per_replica: QpsSources
    retention: dict[str, str]
    catalog: str


class EdgeRow(Row):
    """One model on one device (roi.edge.device_row): memory, latency, energy, battery, price."""

    device: str
    model: str
    config: Optional[str] = None
    memory_mib: Optional[Num] = None
    usable_memory_mib: Optional[Num] = None
    fits: Optional[bool] = None
    service_ms_p10: Optional[Num] = None
    service_ms_p50: Optional[Num] = None
    service_ms_p90: Optional[Num] = None
    runs: bool = False
    why_not: Optional[str] = None
    energy_wh_per_1k_p50: Optional[Num] = None
    battery_share_per_1k: Optional[Num] = None
    battery_share_per_day: Optional[Num] = None
    artifact_bytes: Optional[Num] = None
    unit_usd: Optional[Num] = None
    fleet_usd: Optional[Num] = None
    user_owned: Optional[bool] = None
    notes: list[str] = []


class EdgeAnswer(Row):
    """A device scenario's answer (roi.edge.edge_answer): its kind, in words, and what else."""

    kind: str
    text: str
    also: Optional[str] = None


class EdgeScenario(Row):
    """One device scenario's table and answer (roi.edge.scenario_edge)."""

    scenario: str
    devices: Optional[int] = None
    teacher: str
    student: Optional[str] = None
    ownership: str
    rows: list[EdgeRow] = []
    answer: EdgeAnswer


class Edge(Row):
    """The edge economics of the device scenarios (roi.edge.edge_section) and their method."""

    method: dict[str, str] = {}
    scenarios: dict[str, EdgeScenario] = {}
