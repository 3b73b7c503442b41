"""What a report section is made of and the blocks every section builds: the Inputs (plan,
results, metrics, the student's re-bench), a Table of display strings, a Figure or the note
saying why there is none, and the two lookups more than one section reads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pandas as pd

from contracts.distill_result import DistillMetrics
from contracts.plan import (Budget, Candidate, Cheapest, KdGain, MeasuredPlan, Recommended,
                            RoiSection, SeedFigure)
from roi.choices import cheapest, kd_gain, scenario_cost, seed_figures
from roi.scenarios import SeedRanges

from . import figure_kit as kit
from . import fmt
from .document import Figure, Table, Text

Figures = dict[str, bytes]


@dataclass(frozen=True)
class Inputs:
    """What a report is made of. plan: the typed plan (contracts.plan; plan.json read back)."""

    plan: MeasuredPlan
    results: pd.DataFrame | None = None
    metrics: dict | None = None
    student_results: pd.DataFrame | None = None
    origin: dict[str, str] = field(default_factory=dict)  # input -> where it was read from
    replan: MeasuredPlan | None = None  # the plan again with the run's own result (roi run)

    @functools.cached_property
    def distilled(self) -> DistillMetrics | None:
        """metrics.json typed (contracts.distill_result); None before a distillation ran."""
        return DistillMetrics.model_validate(self.metrics) if self.metrics else None

    @property
    def teacher(self) -> str:
        return self.plan.teacher.model

    @property
    def recommended(self) -> Recommended | None:
        return self.plan.recommended

    @property
    def planned(self) -> str:
        """The student the trainer section names (recommended, or the closest candidate)."""
        return str(self.plan.trainer.student or "")

    @property
    def trained(self) -> str:
        """The student actually distilled (metrics.json's settings) when it is one of the
        plan's candidates, else the planned one."""
        done = self.distilled.trained if self.distilled else None
        known = {c.model for c in self.candidates}
        return str(done) if done in known else self.planned

    @property
    def candidates(self) -> list[Recommended | Candidate]:
        """The recommended student, then the alternatives."""
        return ([self.recommended] if self.recommended else []) + self.plan.alternatives

    def student(self, model: str) -> Recommended | Candidate | None:
        """The candidate named `model`, if the plan has one."""
        return next((c for c in self.candidates if c.model == model), None)

    @functools.cached_property
    def cheapest(self) -> list[Cheapest]:
        """The configuration each model is costed at per scenario: the plan's (a plan written
        before it was stored: derived from its cost rows as the planner does, roi.choices)."""
        if self.plan.cheapest is not None:
            return self.plan.cheapest
        plan = self.plan
        return [Cheapest.model_validate(r) for r in
                cheapest([r.document() for r in plan.cost], [r.document() for r in plan.sizing],
                         plan.scenarios)]

    def seed_figures(self, student: str) -> list[SeedFigure]:
        """The seed's ranges beside our figures for `student`: the plan's for the student it
        planned; for another student (trained instead) or a plan written before they were
        stored, computed as the planner does (roi.choices) from the plan and this results
        table."""
        if self.plan.seed_figures is not None and student == self.planned:
            return [f for f in self.plan.seed_figures if f.student == student]
        seeds = [(d.name, SeedRanges(**d.seed.document()) if d.seed else None)
                 for d in self.plan.scenario_details or []]
        rec = self.student(student)
        rows = seed_figures(seeds, [c.document() for c in self.cheapest], self.results,
                            self.teacher, student, rec.document() if rec else {})
        return [SeedFigure.model_validate(r) for r in rows]

    def headline_cost(self, c: Recommended | Candidate) -> float | None:
        """The candidate's monthly cost where the plan's headline answers: stored (an older
        plan: computed as the planner does, roi.choices)."""
        if "headline_usd_per_month" in c.model_fields_set:
            return c.headline_usd_per_month
        return scenario_cost(c.document(), self.plan.roi.document())

    @staticmethod
    def kd_gain(budget: Budget | None) -> KdGain | None:
        """KD's gain over the baseline at the chosen budget: stored (an older plan: computed as
        the planner does); None without both forecast grids."""
        if budget is None or "kd_gain" in budget.model_fields_set:
            return budget.kd_gain if budget else None
        gain = kd_gain(budget.document())
        return None if gain is None else KdGain(points=gain[0], steps=gain[1])

    @property
    def models(self) -> list[str]:
        """Teacher first, then students from the largest down."""
        students = sorted(self.candidates, key=lambda c: -c.params)
        return [self.teacher] + [c.model for c in students]

    @property
    def colors(self) -> dict[str, str]:
        rec = self.recommended.model if self.recommended else self.trained
        return kit.model_colors(self.models, self.teacher, rec)


def table(rows: list[dict], caption: str = "") -> Table:
    """A Table of display strings; values that are not text yet go through fmt.text."""
    df = pd.DataFrame(rows)
    return Table(df.map(lambda v: v if isinstance(v, str) and v else fmt.text(v)), caption)


def figure(figures: Figures, name: str, png: bytes | None, caption: str, method: str,
            missing: str) -> Figure | Text:
    """The Figure block when there is a PNG, else a note saying why there is none."""
    if png is None:
        why = kit.missing() or missing
        return Text(f"No {caption[0].lower() + caption[1:]} figure: {why}", "note")
    figures[name] = png
    return Figure(name, caption, method)


def answers_for(roi: RoiSection) -> str:
    """What the plan's headline ROI figures are: one scenario's, or a declared portfolio's."""
    if roi.scope == "portfolio":
        return ("portfolio: " + ", ".join(roi.portfolio or []) + " (declared deployed "
                "together: totals across them)")
    if not roi.scenario:
        return "no scenario (no savings figure)" if roi.per_scenario else fmt.DASH
    others = len(roi.per_scenario) - 1
    return roi.scenario + (f" alone, where the student saves most; the other {others} scenario"
                           f"{'s' if others > 1 else ''} are separate answers (Decision "
                           f"framework)" if others > 0 else "")
